#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "common/quantity.h"
#include "injector/fault_registry.h"
#include "reports/report_writer.h"
#include "runner/drill.h"
#include "scenarios/scenario_loader.h"

namespace chaosdrill::cli {
namespace {

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

std::string Seconds(int64_t ns) { return DurationToString(absl::Milliseconds(ns / 1'000'000)); }

void PrintSummary(const reports::RunRecord& r) {
  const reports::AnalysisResult& a = r.analysis;
  std::printf("\n%s: %s (exit %d)%s%s\n", r.scenario_name.c_str(),
              r.exit_status == reports::ExitStatus::kPassed ? "PASSED" : "FAILED",
              static_cast<int>(r.exit_status), r.exit_reason.empty() ? "" : " — ",
              r.exit_reason.c_str());
  for (size_t i = 0; i < a.faults.size(); ++i) {
    const reports::FaultResult& f = a.faults[i];
    const reports::FaultEvent* e = nullptr;
    for (const auto& ev : r.faults) {
      if (ev.name == f.name) e = &ev;
    }
    std::string rto = !f.impact     ? "no impact"
                      : f.recovered ? absl::StrCat("RTO ", Seconds(f.rto_ns))
                                    : "unrecovered";
    std::printf("  fault %-20s %-16s %-28s %s, %llu failed requests\n", f.name.c_str(),
                e ? e->kind.c_str() : "", e ? e->target.c_str() : "", rto.c_str(),
                static_cast<unsigned long long>(f.failed_requests));
  }
  if (a.rpo) {
    std::printf("  RPO: %llu of %llu acknowledged writes lost (%s)\n",
                static_cast<unsigned long long>(a.rpo->lost),
                static_cast<unsigned long long>(a.rpo->acknowledged),
                Seconds(a.rpo->rpo_ns).c_str());
  }
  std::printf("  availability %.4f over %llu requests, p50 %s, p99 %s\n", a.availability,
              static_cast<unsigned long long>(a.requests), Seconds(a.p50_ns).c_str(),
              Seconds(a.p99_ns).c_str());
  for (const auto& v : a.slos) {
    std::printf("  SLO %-22s %-5s target %-8s measured %s\n", v.name.c_str(),
                v.pass ? "ok" : "FAIL", v.target.c_str(), v.measured.c_str());
  }
}

}  // namespace

int RunDrillCommand(int argc, char** argv) {
  CLI::App app{
      "Run drills: drive open-loop load at the scenario's target, check the steady state,\n"
      "inject the faults on schedule through the agent, and measure RTO, RPO, availability\n"
      "and latency against the scenario's SLOs. Every fault is reverted at its duration, on\n"
      "abort, on Ctrl-C/SIGTERM and on error; the run record is written whatever happens.\n\n"
      "Examples:\n"
      "  chaosdrill run scenarios/library/replica-kill.yaml\n"
      "  chaosdrill run --dry-run --report-dir /tmp/out drills/*.yaml\n\n"
      "Exit: 0 all SLOs met, 1 an SLO failed (or the baseline did not hold), 2 invalid\n"
      "scenario or outside its guard window, 3 aborted, 4 infrastructure error.",
      argv[0]};
  std::vector<std::string> files;
  std::string report_dir, progress = "auto", events;
  bool dry_run = false, force = false;
  app.add_option("FILE", files, "Scenario YAML files, run one after another")->required();
  app.add_option("--report-dir", report_dir,
                 "Write records and reports here (default: report.dir)");
  app.add_option("--progress", progress,
                 "auto (live line on a terminal), plain (a line a second), none (no "
                 "progress or event lines; the local agent logs only errors)")
      ->check(CLI::IsMember({"auto", "plain", "none"}));
  app.add_option("--events", events, "Append every event as a JSON line to this file");
  app.add_flag("--dry-run", dry_run, "Validate, start agents, run preflight; change nothing");
  app.add_flag("--force", force, "Run even outside the scenario's guard window");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;

  auto catalog = injector::FaultRegistry::Global().Catalog();
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  runner::DrillOptions options{.report_dir = report_dir,
                               .dry_run = dry_run,
                               .force = force,
                               .progress = progress == "plain"  ? runner::ProgressMode::kPlain
                                           : progress == "none" ? runner::ProgressMode::kNone
                                                                : runner::ProgressMode::kAuto,
                               .events_file = events,
                               .interrupted = &g_interrupted};
  int worst = kExitOk;
  for (const std::string& file : files) {
    auto loaded = scenarios::LoadScenarioFile(file, catalog);
    if (!loaded.ok()) {
      for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
      worst = std::max(worst, kExitUsage);
      continue;
    }
    reports::RunRecord record = runner::RunDrill(*loaded.scenario, options);
    if (dry_run) {
      for (const reports::Event& e : record.events) {
        if (e.type == "resolve") {
          std::printf("%s: %s%s%s\n", file.c_str(), e.fault.c_str(), e.fault.empty() ? "" : ": ",
                      e.message.c_str());
        }
      }
      std::printf("%s: %s\n", file.c_str(),
                  record.exit_status == reports::ExitStatus::kPassed ? "dry run ok"
                                                                     : record.exit_reason.c_str());
    } else {
      // The drill wrote the JSON record (during the drill and finished at the end); the
      // scenario's other formats are rendered from it here.
      std::vector<std::string> formats;
      for (scenarios::ReportFormat f : loaded.scenario->report.formats) {
        if (f != scenarios::ReportFormat::kJson) {
          formats.emplace_back(scenarios::ReportFormatName(f));
        }
      }
      std::string dir = runner::ReportDir(*loaded.scenario, options);
      auto paths = reports::WriteReports(record, formats, dir);
      PrintSummary(record);
      std::printf("  report: %s\n",
                  runner::RecordPath(*loaded.scenario, options, record.run_id).c_str());
      if (paths.ok()) {
        for (const std::string& p : *paths) std::printf("  report: %s\n", p.c_str());
      } else {
        std::fprintf(stderr, "run: writing reports: %s\n",
                     std::string(paths.status().message()).c_str());
        worst = std::max(worst, kExitInfra);
      }
    }
    worst = std::max(worst, static_cast<int>(record.exit_status));
    if (g_interrupted.load()) break;
  }
  return worst;
}

}  // namespace chaosdrill::cli
