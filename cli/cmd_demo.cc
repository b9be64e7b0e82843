// `chaosdrill demo`: what `make demo` does, from an installed binary. The default drill
// (scenarios/library/demo.yaml) is compiled into the binary (cli/embed_file.cmake), so no
// source tree is needed: it starts the reference service, kills a replica, slows the
// gateway, slows the session store's replication link and kills its primary, and prints
// the verdict with RTO per fault, RPO, and where the HTML report is.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "common/quantity.h"
#include "injector/fault_registry.h"
#include "reports/report_writer.h"
#include "runner/drill.h"
#include "scenarios/scenario_loader.h"

namespace chaosdrill::cli {

extern const char kDemoScenario[];  // generated from scenarios/library/demo.yaml

namespace {

constexpr char kDemoFile[] = "demo.yaml (built in)";

std::atomic<bool> g_demo_interrupted{false};
void OnDemoSignal(int) { g_demo_interrupted.store(true); }

std::string Ms(int64_t ns) { return DurationToString(absl::Milliseconds(ns / 1'000'000)); }

// The first of `names` not found on PATH, or "".
std::string MissingProgram(const std::vector<std::string>& names) {
  const char* path_env = std::getenv("PATH");
  std::vector<std::string> dirs = absl::StrSplit(path_env ? path_env : "/usr/bin:/bin", ':');
  for (const std::string& name : names) {
    bool found = false;
    for (const std::string& dir : dirs) {
      if (!dir.empty() && access((dir + "/" + name).c_str(), X_OK) == 0) found = true;
    }
    if (!found) return name;
  }
  return "";
}

// The demo's scenario with every time multiplied by `scale` (a shorter run for tests).
scenarios::Scenario Scaled(const scenarios::Scenario& s, double scale) {
  scenarios::Scenario out = s;
  out.phases.baseline = s.phases.baseline * scale;
  out.phases.observe = s.phases.observe * scale;
  out.phases.hold = s.phases.hold * scale;
  for (scenarios::ScenarioFault& f : out.faults) {
    f.at = f.at * scale;
    if (f.spec.duration) f.spec.duration = *f.spec.duration * scale;
  }
  return out;
}

void PrintVerdict(const reports::RunRecord& r) {
  const reports::AnalysisResult& a = r.analysis;
  const bool passed = r.exit_status == reports::ExitStatus::kPassed;
  std::printf("\nVerdict: %s (exit %d)%s%s\n", passed ? "PASSED" : "FAILED",
              static_cast<int>(r.exit_status), r.exit_reason.empty() ? "" : " — ",
              r.exit_reason.c_str());
  for (const reports::FaultResult& f : a.faults) {
    std::string kind;
    for (const auto& e : r.faults) {
      if (e.name == f.name) kind = e.kind;
    }
    std::string rto = !f.impact     ? "no impact on clients (RTO 0)"
                      : f.recovered ? absl::StrCat("RTO ", Ms(f.rto_ns))
                                    : "not recovered before the end of the drill";
    std::printf("  %-20s %-14s %s, %llu failed requests\n", f.name.c_str(), kind.c_str(),
                rto.c_str(), static_cast<unsigned long long>(f.failed_requests));
  }
  if (a.rpo) {
    std::printf("  RPO: %llu of %llu acknowledged session writes lost (%s of writes)\n",
                static_cast<unsigned long long>(a.rpo->lost),
                static_cast<unsigned long long>(a.rpo->acknowledged), Ms(a.rpo->rpo_ns).c_str());
  }
  std::printf("  availability %.4f over %llu requests; latency p50 %s, p99 %s\n", a.availability,
              static_cast<unsigned long long>(a.requests), Ms(a.p50_ns).c_str(),
              Ms(a.p99_ns).c_str());
  for (const auto& v : a.slos) {
    std::printf("  SLO %-22s %-4s target %-8s measured %s\n", v.name.c_str(),
                v.pass ? "ok" : "FAIL", v.target.c_str(), v.measured.c_str());
  }
}

}  // namespace

int DemoCommand(int argc, char** argv) {
  CLI::App app{
      "Run the default drill against the built-in reference inference service, as `make demo`\n"
      "does: 3 model replicas behind a health-checking gateway, Redis with sentinels, 100 rps\n"
      "of load and 20 session writes/s; a replica is killed, 150 ms of latency is added in\n"
      "front of the gateway, the session store's replication link is slowed and its primary\n"
      "killed (async replication: the unreplicated writes are lost). About a minute; no\n"
      "root needed (redis-server and redis-sentinel must be installed). Prints the verdict\n"
      "with RTO per fault and RPO, and the path of the HTML report.\n\n"
      "The drill is scenarios/library/demo.yaml, built into this binary: print it with\n"
      "--print-scenario, edit it, and run your copy with `chaosdrill run FILE`.\n\n"
      "Exit: 0 all SLOs met, 1 an SLO failed (the report still shows why), 3 aborted,\n"
      "4 infrastructure error (e.g. Redis missing).",
      argv[0]};
  std::string report_dir, progress = "auto";
  bool print_scenario = false;
  double time_scale = 1.0;
  app.add_option("--report-dir", report_dir,
                 "Write the run record and reports here (default: reports/out)");
  app.add_option("--progress", progress,
                 "auto (live line on a terminal), plain (a line a second), none")
      ->check(CLI::IsMember({"auto", "plain", "none"}));
  app.add_flag("--print-scenario", print_scenario, "Print the built-in drill's YAML and exit");
  // For tests: the same drill with every phase and fault time multiplied by this.
  app.add_option("--time-scale", time_scale)->check(CLI::Range(0.1, 1.0))->group("");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;

  if (print_scenario) {
    std::fputs(kDemoScenario, stdout);
    return kExitOk;
  }
  auto loaded = scenarios::LoadScenario(kDemoScenario, kDemoFile,
                                        injector::FaultRegistry::Global().Catalog());
  if (!loaded.ok()) {
    // Only possible if the build embedded a scenario its own registry does not accept.
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return kExitUsage;
  }
  if (std::string missing = MissingProgram({"redis-server", "redis-sentinel"}); !missing.empty()) {
    std::fprintf(stderr,
                 "chaosdrill demo: %s is not on PATH; the reference service keeps its sessions "
                 "in Redis.\nInstall it (Debian/Ubuntu: apt-get install redis-server "
                 "redis-sentinel; from a source tree: scripts/install-deps.sh).\n",
                 missing.c_str());
    return kExitInfra;
  }
  scenarios::Scenario scenario = Scaled(*loaded.scenario, time_scale);

  struct sigaction sa {};
  sa.sa_handler = OnDemoSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  runner::DrillOptions options{.report_dir = report_dir,
                               .progress = progress == "plain"  ? runner::ProgressMode::kPlain
                                           : progress == "none" ? runner::ProgressMode::kNone
                                                                : runner::ProgressMode::kAuto,
                               .interrupted = &g_demo_interrupted};
  std::printf("chaosdrill demo: %s\n", scenario.metadata.description.c_str());
  std::fflush(stdout);
  reports::RunRecord record = runner::RunDrill(scenario, options);

  std::vector<std::string> formats = {"json"};
  for (scenarios::ReportFormat f : scenario.report.formats) {
    formats.emplace_back(scenarios::ReportFormatName(f));
  }
  const std::string dir = runner::ReportDir(scenario, options);
  auto paths = reports::WriteReports(record, formats, dir);
  PrintVerdict(record);
  int rc = static_cast<int>(record.exit_status);
  if (!paths.ok()) {
    std::fprintf(stderr, "chaosdrill demo: writing reports: %s\n",
                 std::string(paths.status().message()).c_str());
    return std::max(rc, kExitInfra);
  }
  std::string html;
  for (const std::string& p : *paths) {
    std::printf("  report: %s\n", p.c_str());
    if (p.size() > 5 && p.substr(p.size() - 5) == ".html") html = p;
  }
  if (!html.empty()) {
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(html, ec);
    std::printf("\nOpen the HTML report: file://%s\n", (ec ? html : abs.string()).c_str());
  }
  return rc;
}

}  // namespace chaosdrill::cli
