// Drill-level tests of `chaosdrill run` (runner/drill.h): the guard, the steady state,
// injection failures, reverts on schedule, on abort and on SIGINT, the record kept on disk
// while the drill runs, dry runs, the progress output, and the blast radius of overlapping
// faults. Drills run with short phases against a small OIP server inside the test (an
// endpoint target) or against the real reference service (skipped without Redis). Faults
// act on processes this test owns (a paused `sleep`) or on the reference replicas; the
// witnesses are /proc states, the record and the events stream.
#include "runner/drill.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "injector/fault_registry.h"
#include "reports/gpu_info.h"
#include "reports/run_record_json.h"
#include "runner/guard.h"
#include "scenarios/scenario_loader.h"
#include "tests/test_support.h"

namespace chaosdrill::runner {
namespace {

namespace fs = std::filesystem;
using chaosdrill::testing::ChaosdrillBinary;
using chaosdrill::testing::MonoNs;
using chaosdrill::testing::ReadAll;
using chaosdrill::testing::RunnerProcess;
using chaosdrill::testing::SkipUnless;
using chaosdrill::testing::TempDir;
using reports::ExitStatus;

// The state letter of /proc/PID/stat ('T' stopped), or 0 when the process is gone.
char ProcState(pid_t pid) {
  std::string stat = ReadAll(absl::StrCat("/proc/", pid, "/stat"));
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return 0;
  return stat[paren + 2];
}

// Polls `pred` every 5 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// A minimal OIP server: one model "m" with input "x" FP32 [-1, 4]. It answers every
// inference with OK, or every `fail_every`-th with UNAVAILABLE; it remembers the last input
// shape.
class FakeOip final : public inference::GRPCInferenceService::Service {
 public:
  std::atomic<int> fail_every{0};  // fail every Nth inference with UNAVAILABLE; 0: none
  std::atomic<int> delay_ms{0};    // answer after this long
  std::atomic<uint64_t> infers{0};
  std::mutex mu;
  std::vector<int64_t> last_shape;

  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* r) override {
    r->set_live(true);
    return grpc::Status::OK;
  }
  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* r) override {
    r->set_ready(true);
    return grpc::Status::OK;
  }
  grpc::Status ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest* req,
                             inference::ModelMetadataResponse* r) override {
    if (req->name() != "m") return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such model");
    r->set_name("m");
    auto* in = r->add_inputs();
    in->set_name("x");
    in->set_datatype("FP32");
    in->add_shape(-1);
    in->add_shape(4);
    auto* out = r->add_outputs();
    out->set_name("y");
    out->set_datatype("FP32");
    out->add_shape(-1);
    out->add_shape(1);
    return grpc::Status::OK;
  }
  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest* req,
                          inference::ModelInferResponse* r) override {
    const uint64_t n = ++infers;
    if (int d = delay_ms.load(); d > 0) absl::SleepFor(absl::Milliseconds(d));
    if (req->inputs_size() > 0) {
      std::lock_guard lock(mu);
      last_shape.assign(req->inputs(0).shape().begin(), req->inputs(0).shape().end());
    }
    if (int every = fail_every.load(); every > 0 && n % every == 0) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "failing on purpose");
    }
    r->set_model_name("m");
    auto* out = r->add_outputs();
    out->set_name("y");
    out->set_datatype("FP32");
    out->add_shape(1);
    out->add_shape(1);
    out->mutable_contents()->add_fp32_contents(0.5f);
    return grpc::Status::OK;
  }
};

struct OipServer {
  FakeOip service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  OipServer() {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service);
    server = b.BuildAndStart();
  }
  ~OipServer() { server->Shutdown(std::chrono::system_clock::now()); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
};

// A process of our own to pause: /bin/sleep, killed and reaped on destruction.
struct Sleeper {
  pid_t pid = -1;
  Sleeper() {
    pid = fork();
    if (pid == 0) {
      execl("/bin/sleep", "sleep", "120", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Sleeper() {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
};

std::string EndpointScenario(const std::string& name, const std::string& address,
                             const std::string& extra, const std::string& phases) {
  return absl::StrCat(
      "apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: ", name,
      "}\ntarget:\n  endpoint: {address: \"", address,
      "\", model: m}\nload: {rate: 100/s, timeout: 1s, golden_every: 0, good_latency: 500ms}\n"
      "steady_state: {success_ratio: 0.95}\nphases: ",
      phases, "\n", extra);
}

std::shared_ptr<const scenarios::Scenario> Load(const std::string& yaml) {
  injector::RegisterBuiltinFaults();
  auto loaded =
      scenarios::LoadScenario(yaml, "test.yaml", injector::FaultRegistry::Global().Catalog());
  std::string errors;
  for (const auto& e : loaded.errors) absl::StrAppend(&errors, e.ToString(), "\n");
  INFO(yaml << "\n" << errors);
  REQUIRE(loaded.ok());
  return loaded.scenario;
}

DrillOptions Options(const TempDir& dir, ProgressMode progress = ProgressMode::kNone) {
  DrillOptions o;
  o.report_dir = dir.path() + "/reports";
  o.chaosdrill_binary = ChaosdrillBinary();
  o.progress = progress;
  o.events_file = dir.path() + "/events.jsonl";
  return o;
}

const reports::Event* FindEvent(const reports::RunRecord& r, const std::string& type,
                                const std::string& fault = "") {
  for (const auto& e : r.events) {
    if (e.type == type && (fault.empty() || e.fault == fault)) return &e;
  }
  return nullptr;
}

std::vector<nlohmann::json> ReadEvents(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

std::optional<nlohmann::json> FindEventLine(const std::string& path, const std::string& type) {
  for (auto& j : ReadEvents(path)) {
    if (j.value("type", "") == type) return j;
  }
  return std::nullopt;
}

// Processes whose command line mentions `needle` (the test's directory), other than us.
std::vector<std::string> ProcessesMentioning(const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (std::stoi(name) == getpid()) continue;
    std::string cmdline = ReadAll(entry.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(needle) != std::string::npos) out.push_back(name + ": " + cmdline);
  }
  return out;
}

// The children of `pid` (from /proc/*/stat's ppid).
std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadAll(entry.path() / "stat");
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(stat.substr(paren + 2), ' ');
    if (f.size() > 2 && std::stoi(f[1]) == pid) out.push_back(std::stoi(name));
  }
  return out;
}

pid_t ProcessGroupOf(pid_t pid) {
  std::string stat = ReadAll(absl::StrCat("/proc/", pid, "/stat"));
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::vector<std::string> f = absl::StrSplit(stat.substr(paren + 2), ' ');
  return f.size() > 2 ? std::stoi(f[2]) : -1;
}

// The one JSON record in `dir` (the drill names it <run_id>.json).
std::optional<std::string> RecordIn(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".json") return entry.path().string();
  }
  return std::nullopt;
}

bool HaveRedis() {
  return access("/usr/bin/redis-server", X_OK) == 0 && access("/usr/bin/redis-sentinel", X_OK) == 0;
}

// ---------------------------------------------------------------------------------------
// The guard.

scenarios::Guard Window(int start_h, int start_m, int end_h, int end_m,
                        std::vector<scenarios::Weekday> days = {}) {
  return {.start_minute = start_h * 60 + start_m,
          .end_minute = end_h * 60 + end_m,
          .days = std::move(days),
          .timezone = "UTC"};
}

absl::Time Utc(int y, int mo, int d, int h, int mi) {
  return absl::FromCivil(absl::CivilMinute(y, mo, d, h, mi), absl::UTCTimeZone());
}

TEST_CASE("guard: a plain window and its days", "[runner][drill][guard]") {
  using W = scenarios::Weekday;
  // 2026-11-20 is a Friday.
  auto g = Window(9, 0, 17, 0, {W::kMon, W::kFri});
  CHECK(CheckGuard(g, Utc(2026, 11, 20, 9, 0)).ok());
  CHECK(CheckGuard(g, Utc(2026, 11, 20, 16, 59)).ok());
  CHECK_FALSE(CheckGuard(g, Utc(2026, 11, 20, 17, 0)).ok());
  CHECK_FALSE(CheckGuard(g, Utc(2026, 11, 20, 8, 59)).ok());
  CHECK_FALSE(CheckGuard(g, Utc(2026, 11, 21, 10, 0)).ok());  // Saturday
  absl::Status refused = CheckGuard(g, Utc(2026, 11, 21, 10, 0));
  CHECK(refused.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(refused.message()), Catch::Contains("09:00-17:00") &&
                                                 Catch::Contains("--force") &&
                                                 Catch::Contains("Sat 10:00"));
  CHECK(CheckGuard(Window(0, 0, 0, 0), Utc(2026, 11, 21, 3, 0)).ok());  // all day
  scenarios::Guard bad = g;
  bad.timezone = "Mars/Olympus";
  CHECK(CheckGuard(bad, Utc(2026, 11, 20, 10, 0)).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("guard: a window past midnight belongs to the day it started", "[runner][drill][guard]") {
  using W = scenarios::Weekday;
  auto fri_night = Window(22, 0, 2, 0, {W::kFri});
  CHECK(CheckGuard(fri_night, Utc(2026, 11, 20, 23, 0)).ok());        // Fri 23:00
  CHECK(CheckGuard(fri_night, Utc(2026, 11, 21, 1, 30)).ok());        // Sat 01:30, opened Friday
  CHECK_FALSE(CheckGuard(fri_night, Utc(2026, 11, 21, 2, 0)).ok());   // Sat 02:00: closed
  CHECK_FALSE(CheckGuard(fri_night, Utc(2026, 11, 21, 23, 0)).ok());  // Sat 23:00: Saturday's
  CHECK_FALSE(CheckGuard(fri_night, Utc(2026, 11, 20, 1, 0)).ok());   // Fri 01:00: Thursday's
  CHECK_FALSE(CheckGuard(fri_night, Utc(2026, 11, 20, 12, 0)).ok());  // outside the hours
  // In another zone: Friday 22:30 in Tokyo is 13:30 UTC.
  auto tokyo = fri_night;
  tokyo.timezone = "Asia/Tokyo";
  CHECK(CheckGuard(tokyo, Utc(2026, 11, 20, 13, 30)).ok());
  CHECK(CheckGuard(tokyo, Utc(2026, 11, 20, 16, 30)).ok());  // Sat 01:30 in Tokyo
  CHECK_FALSE(CheckGuard(tokyo, Utc(2026, 11, 20, 12, 30)).ok());
}

TEST_CASE("guard: a drill outside its window is refused (exit 2) unless forced",
          "[runner][drill][guard]") {
  OipServer server;
  TempDir dir;
  // A window that closed an hour ago and opens again in 22 hours.
  absl::CivilMinute now = absl::ToCivilMinute(absl::Now(), absl::UTCTimeZone());
  int start = (now.hour() * 60 + now.minute() + 60) % 1440;
  int end = (start + 60) % 1440;
  std::string guard = absl::StrFormat("guard: {window: \"%02d:%02d-%02d:%02d\"}\n", start / 60,
                                      start % 60, end / 60, end % 60);
  auto sc = Load(EndpointScenario("guarded", server.address(), guard,
                                  "{baseline: 2s, observe: 1s, hold: 500ms}"));
  DrillOptions o = Options(dir);
  reports::RunRecord refused = RunDrill(*sc, o);
  CHECK(refused.exit_status == ExitStatus::kInvalid);
  CHECK_THAT(refused.exit_reason, Catch::Contains("guard window") && Catch::Contains("--force"));
  CHECK(server.service.infers.load() == 0);  // nothing ran
  CHECK(refused.requests.empty());
  // The refusal is on record too.
  auto path = RecordIn(o.report_dir);
  REQUIRE(path);
  auto back = reports::ReadRunRecord(*path);
  REQUIRE(back.ok());
  CHECK(back->exit_status == ExitStatus::kInvalid);
  CHECK_FALSE(back->in_progress);

  o.force = true;
  reports::RunRecord forced = RunDrill(*sc, o);
  INFO(forced.exit_reason);
  CHECK(forced.exit_status == ExitStatus::kPassed);
  CHECK(server.service.infers.load() > 100);
}

// ---------------------------------------------------------------------------------------
// Endpoint targets.

TEST_CASE("endpoint: the request takes the model's shape, -1 dimensions as 1",
          "[runner][drill][endpoint]") {
  OipServer server;
  TempDir dir;
  auto sc = Load(
      EndpointScenario("shape", server.address(), "", "{baseline: 2s, observe: 1s, hold: 500ms}"));
  reports::RunRecord r = RunDrill(*sc, Options(dir));
  INFO(r.exit_reason);
  CHECK(r.exit_status == ExitStatus::kPassed);
  std::lock_guard lock(server.service.mu);
  CHECK(server.service.last_shape == std::vector<int64_t>{1, 4});
  CHECK_THAT(r.target, Catch::Contains("[1,4]"));
}

TEST_CASE("endpoint: a missing TLS file is exit 2 naming the file", "[runner][drill][endpoint]") {
  OipServer server;
  TempDir dir;
  std::string ca = dir.path() + "/no-such-ca.pem";
  std::string yaml =
      EndpointScenario("tls", server.address(), "", "{baseline: 2s, observe: 1s, hold: 500ms}");
  yaml = std::regex_replace(
      yaml, std::regex("model: m\\}"),
      absl::StrCat("model: m, tls: {ca: \"", ca, "\", server_name: inference.example}}"));
  auto sc = Load(yaml);
  reports::RunRecord r = RunDrill(*sc, Options(dir));
  CHECK(r.exit_status == ExitStatus::kInvalid);
  CHECK_THAT(r.exit_reason, Catch::Contains(ca) && Catch::Contains("target.endpoint.tls.ca"));
  CHECK(server.service.infers.load() == 0);
}

// ---------------------------------------------------------------------------------------
// The timeline.

TEST_CASE("a steady state that does not hold stops the drill before any fault (exit 1)",
          "[runner][drill]") {
  OipServer server;
  server.service.fail_every = 2;  // half the requests fail
  Sleeper sleeper;
  TempDir dir;
  auto sc = Load(EndpointScenario(
      "unsteady", server.address(),
      absl::StrCat("faults:\n  - {name: hang, kind: process.pause, at: 2s, duration: 1s, "
                   "target: {agent: local}, pid: ",
                   sleeper.pid, "}\n"),
      "{baseline: 2s, observe: 2s, hold: 500ms}"));
  reports::RunRecord r = RunDrill(*sc, Options(dir));
  CHECK(r.exit_status == ExitStatus::kSloFailed);
  CHECK_THAT(r.exit_reason, Catch::Contains("steady-state hypothesis failed before any fault") &&
                                Catch::Contains("good ratio 0.5") &&
                                Catch::Contains("below 0.9500"));
  CHECK(r.faults.empty());  // never injected
  CHECK(FindEvent(r, "inject") == nullptr);
  CHECK(ProcState(sleeper.pid) != 'T');
}

TEST_CASE("the steady state checks p50: a slow median fails the baseline (exit 1)",
          "[runner][drill]") {
  OipServer server;
  server.service.delay_ms = 20;
  TempDir dir;
  std::string yaml = EndpointScenario("slow-median", server.address(), "",
                                      "{baseline: 2s, observe: 1s, hold: 500ms}");
  yaml = std::regex_replace(yaml, std::regex("steady_state: \\{success_ratio: 0.95\\}"),
                            "steady_state: {success_ratio: 0.95, p50: 5ms}");
  auto sc = Load(yaml);
  REQUIRE(sc->steady_state.p50.has_value());
  reports::RunRecord r = RunDrill(*sc, Options(dir));
  CHECK(r.exit_status == ExitStatus::kSloFailed);
  CHECK_THAT(r.exit_reason, Catch::Contains("steady-state hypothesis failed") &&
                                Catch::Contains("p50") && Catch::Contains("above 5ms"));
}

TEST_CASE("a fault that cannot be injected ends the drill as an infrastructure error (exit 4)",
          "[runner][drill]") {
  OipServer server;
  TempDir dir;
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);  // a pid that no longer exists
  auto sc = Load(EndpointScenario(
      "inject-fails", server.address(),
      absl::StrCat("faults:\n  - {name: hang, kind: process.pause, at: 2s, duration: 1s, "
                   "target: {agent: local}, pid: ",
                   gone, "}\n"),
      "{baseline: 2s, observe: 2s, hold: 500ms}"));
  reports::RunRecord r = RunDrill(*sc, Options(dir));
  CHECK(r.exit_status == ExitStatus::kInfraError);
  REQUIRE(r.faults.size() == 1);
  CHECK(r.faults[0].inject_failed);
  CHECK_FALSE(r.faults[0].error.empty());
  CHECK(FindEvent(r, "inject_failed", "hang") != nullptr);
  INFO(r.exit_reason);
  CHECK_THAT(r.exit_reason, Catch::Contains("hang"));
}

TEST_CASE("a fault is held for its duration from its confirmed injection and then reverted",
          "[runner][drill]") {
  OipServer server;
  Sleeper sleeper;
  TempDir dir;
  auto sc = Load(EndpointScenario(
      "revert-on-time", server.address(),
      absl::StrCat("faults:\n  - {name: hang, kind: process.pause, at: 2s, duration: 1500ms, "
                   "target: {agent: local}, pid: ",
                   sleeper.pid, "}\n"),
      "{baseline: 2s, observe: 3s, hold: 500ms}"));
  // Witness: the sleeper is stopped during the fault and running after it.
  std::atomic<bool> stop{false};
  std::atomic<bool> seen_stopped{false};
  std::thread watch([&] {
    while (!stop.load()) {
      if (ProcState(sleeper.pid) == 'T') seen_stopped = true;
      absl::SleepFor(absl::Milliseconds(5));
    }
  });
  reports::RunRecord r = RunDrill(*sc, Options(dir));
  stop = true;
  watch.join();
  INFO(r.exit_reason);
  CHECK(r.exit_status == ExitStatus::kPassed);
  REQUIRE(r.faults.size() == 1);
  const reports::FaultEvent& f = r.faults[0];
  REQUIRE(f.reverted_ns.has_value());
  const reports::Event* revert = FindEvent(r, "revert", "hang");
  REQUIRE(revert != nullptr);
  // The revert is due at t_i + duration (the agent's confirmation plus 1.5 s), not at
  // at + duration: the injection's own latency must not shorten the fault.
  constexpr int64_t kDuration = 1'500'000'000;
  const int64_t held = *f.reverted_ns - f.injected_ns;
  std::printf(
      "revert on time: scheduled %.1f ms, injected (confirmed) %.1f ms (+%.1f), revert "
      "confirmed %.1f ms, event %.1f ms: held %.1f ms for a %.0f ms fault (%+.1f ms)\n",
      f.scheduled_ns / 1e6, f.injected_ns / 1e6, (f.injected_ns - f.scheduled_ns) / 1e6,
      *f.reverted_ns / 1e6, revert->t_ns / 1e6, held / 1e6, kDuration / 1e6,
      (held - kDuration) / 1e6);
  CHECK(held >= kDuration);
  // Late only by the loop's wake-up and the revert call itself (SIGCONT and the agent's
  // check that the process runs): milliseconds; 50 ms absorbs a loaded 2-core machine.
  CHECK(held - kDuration <= 50'000'000);
  CHECK(revert->t_ns >= f.injected_ns + kDuration);
  CHECK(seen_stopped.load());
  CHECK(ProcState(sleeper.pid) != 'T');
  // The environment names this host's GPUs as reports::GpuEnvironment() reads them.
  INFO("environment.gpu: " << r.environment.gpu);
  CHECK(r.environment.gpu == reports::GpuEnvironment());
  CHECK_FALSE(r.environment.gpu.empty());
}

TEST_CASE("a dry run resolves targets, asks the endpoint for metadata, and changes nothing",
          "[runner][drill][dry-run]") {
  OipServer server;
  Sleeper sleeper;
  TempDir dir;
  auto sc = Load(EndpointScenario(
      "dry", server.address(),
      absl::StrCat("faults:\n  - {name: hang, kind: process.pause, at: 2s, duration: 1s, "
                   "target: {agent: local}, pid: ",
                   sleeper.pid, "}\n"),
      "{baseline: 2s, observe: 2s, hold: 500ms}"));
  DrillOptions o = Options(dir);
  o.dry_run = true;
  std::atomic<bool> stop{false};
  std::atomic<bool> seen_stopped{false};
  std::thread watch([&] {
    while (!stop.load()) {
      if (ProcState(sleeper.pid) == 'T') seen_stopped = true;
      absl::SleepFor(absl::Milliseconds(5));
    }
  });
  reports::RunRecord r = RunDrill(*sc, o);
  stop = true;
  watch.join();
  INFO(r.exit_reason);
  CHECK(r.exit_status == ExitStatus::kPassed);
  const reports::Event* resolved = FindEvent(r, "resolve", "hang");
  REQUIRE(resolved != nullptr);
  CHECK_THAT(resolved->message, Catch::Contains("process.pause on agent local"));
  const reports::Event* endpoint = FindEvent(r, "resolve");
  bool asked = false;
  for (const auto& e : r.events) {
    if (e.type == "resolve" && e.message.find("[1,4]") != std::string::npos) asked = true;
  }
  CHECK(asked);  // the model's metadata was fetched
  (void)endpoint;
  CHECK_FALSE(seen_stopped.load());
  CHECK(server.service.infers.load() == 0);
  CHECK_FALSE(fs::exists(o.report_dir));  // no record, no reports
}

TEST_CASE("a dry run says that reference roles resolve only once the service runs",
          "[runner][drill][dry-run]") {
  TempDir dir;
  auto sc = Load(
      "apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: dry-ref}\n"
      "target: {reference: {replicas: 2}}\nload: {rate: 50/s}\n"
      "phases: {baseline: 2s, observe: 4s, hold: 1s}\n"
      "faults:\n  - {name: kill-one, kind: process.kill, at: 3s, target: {role: "
      "\"replica[1]\"}}\n");
  DrillOptions o = Options(dir);
  o.dry_run = true;
  reports::RunRecord r = RunDrill(*sc, o);
  INFO(r.exit_reason);
  CHECK(r.exit_status == ExitStatus::kPassed);
  const reports::Event* e = FindEvent(r, "resolve", "kill-one");
  REQUIRE(e != nullptr);
  CHECK_THAT(e->message, Catch::Contains("replica[1]") &&
                             Catch::Contains("resolved when the reference service runs"));
  CHECK(ProcessesMentioning(dir.path()).empty());  // nothing was started
}

// ---------------------------------------------------------------------------------------
// The record on disk, signals, progress (the real CLI as a child).

TEST_CASE("record JSON: in_progress and read_back_corrupt round-trip, status must agree",
          "[runner][drill][record]") {
  reports::RunRecord r;
  r.run_id = "x";
  r.in_progress = true;
  r.read_back_corrupt["s-0"] = {3, 7};
  nlohmann::json j = reports::ToJson(r);
  CHECK(j["exit"]["status"] == "running");
  auto back = reports::FromJson(j);
  REQUIRE(back.ok());
  CHECK(*back == r);
  j["in_progress"] = false;  // "running" but not in progress: refused
  auto bad = reports::FromJson(j);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("exit.status"));
  r.in_progress = false;
  r.read_back_corrupt.clear();
  j = reports::ToJson(r);
  CHECK_FALSE(j.contains("in_progress"));  // older readers see the same keys as before
  CHECK_FALSE(j.contains("read_back_corrupt"));
  CHECK(j["exit"]["status"] == "passed");
}

TEST_CASE("the record is on disk while the drill runs and survives a SIGKILLed runner",
          "[runner][drill][record]") {
  OipServer server;
  TempDir dir;
  std::string yaml =
      EndpointScenario("killed", server.address(), "", "{baseline: 3s, observe: 8s, hold: 1s}");
  std::string file = dir.Write("killed.yaml", yaml);
  const std::string reports_dir = dir.path() + "/reports";
  RunnerProcess runner(dir.path(), {file, "--report-dir", reports_dir, "--progress", "none"});
  // An in-progress record appears within the first seconds and grows.
  std::optional<reports::RunRecord> live;
  REQUIRE(WaitFor(
      [&] {
        auto path = RecordIn(reports_dir);
        if (!path) return false;
        auto r = reports::ReadRunRecord(*path);
        if (!r.ok() || r->requests.size() < 100) return false;
        live = *r;
        return true;
      },
      absl::Seconds(20)));
  CHECK(live->in_progress);
  CHECK_THAT(live->exit_reason, Catch::Contains("in progress"));
  auto raw = nlohmann::json::parse(ReadAll(*RecordIn(reports_dir)));
  CHECK(raw["exit"]["status"] == "running");
  CHECK(raw["in_progress"] == true);

  // The agent runs in its own process group (a terminal's Ctrl-C does not reach it).
  std::vector<pid_t> children = ChildrenOf(runner.pid());
  REQUIRE_FALSE(children.empty());
  for (pid_t c : children) CHECK(ProcessGroupOf(c) != ProcessGroupOf(runner.pid()));

  kill(runner.pid(), SIGKILL);
  CHECK(runner.Wait(absl::Seconds(5)) == 128 + SIGKILL);
  auto path = RecordIn(reports_dir);
  REQUIRE(path);
  auto after = reports::ReadRunRecord(*path);
  REQUIRE(after.ok());
  CHECK(after->in_progress);
  CHECK(after->requests.size() >= live->requests.size());
  INFO(after->requests.size() << " requests in the record of the killed runner");
  // The agent died with the runner (PR_SET_PDEATHSIG).
  CHECK(WaitFor([&] { return ProcessesMentioning(dir.path()).empty(); }, absl::Seconds(10)));
  for (const auto& p : ProcessesMentioning(dir.path())) UNSCOPED_INFO(p);
}

TEST_CASE("SIGINT mid-fault reverts it, stops everything, writes the record, exit 3",
          "[runner][drill][signal]") {
  OipServer server;
  Sleeper sleeper;
  TempDir dir;
  std::string yaml = EndpointScenario(
      "interrupted", server.address(),
      absl::StrCat("faults:\n  - {name: hang, kind: process.pause, at: 3s, duration: 20s, "
                   "target: {agent: local}, pid: ",
                   sleeper.pid, "}\n"),
      "{baseline: 3s, observe: 25s, hold: 1s}");
  std::string file = dir.Write("interrupted.yaml", yaml);
  const std::string reports_dir = dir.path() + "/reports";
  const std::string events = dir.path() + "/events.jsonl";
  RunnerProcess runner(
      dir.path(), {file, "--report-dir", reports_dir, "--progress", "plain", "--events", events});
  REQUIRE(WaitFor([&] { return FindEventLine(events, "inject").has_value(); }, absl::Seconds(20)));
  REQUIRE(WaitFor([&] { return ProcState(sleeper.pid) == 'T'; }, absl::Seconds(2)));
  // Ctrl-C on a terminal signals the foreground process group: the runner's.
  kill(-runner.pid(), SIGINT);
  const int64_t sent = MonoNs();
  int rc = runner.Wait(absl::Seconds(20));
  INFO("runner exited " << (MonoNs() - sent) / 1e6 << " ms after SIGINT\n" << runner.err());
  CHECK(rc == 3);
  CHECK(ProcState(sleeper.pid) != 'T');  // the fault is off
  auto path = RecordIn(reports_dir);
  REQUIRE(path);
  auto r = reports::ReadRunRecord(*path);
  REQUIRE(r.ok());
  CHECK_FALSE(r->in_progress);
  CHECK(r->exit_status == ExitStatus::kAborted);
  CHECK_THAT(r->exit_reason, Catch::Contains("interrupted by a signal"));
  REQUIRE(r->faults.size() == 1);
  CHECK(r->faults[0].reverted_ns.has_value());
  CHECK_THAT(runner.out(), Catch::Contains("report: " + *path));
  // No process of the drill is left.
  CHECK(WaitFor([&] { return ProcessesMentioning(dir.path()).empty(); }, absl::Seconds(5)));
  for (const auto& p : ProcessesMentioning(dir.path())) UNSCOPED_INFO(p);
}

TEST_CASE("progress: plain prints a line a second, none prints nothing",
          "[runner][drill][progress]") {
  OipServer server;
  TempDir dir;
  std::string file = dir.Write("p.yaml", EndpointScenario("progress", server.address(), "",
                                                          "{baseline: 3s, observe: 3s, hold: 1s}"));
  std::regex progress_line("^(baseline|faults|recovery|stopping) +[0-9.]+s/[0-9]+s +rps ");
  auto count_progress = [&](const std::string& err) {
    int n = 0;
    std::istringstream in(err);
    for (std::string line; std::getline(in, line);) n += std::regex_search(line, progress_line);
    return n;
  };
  {
    RunnerProcess runner(dir.path(),
                         {file, "--report-dir", dir.path() + "/plain", "--progress", "plain"});
    CHECK(runner.Wait(absl::Seconds(30)) == 0);
    std::string err = runner.err();
    INFO(err);
    int n = count_progress(err);
    // 6 s of drill: a line each second, and the final one.
    CHECK(n >= 5);
    CHECK(n <= 9);
    CHECK(err.find('\r') == std::string::npos);
    CHECK(err.find("\033[") == std::string::npos);
  }
  {
    RunnerProcess runner(dir.path(),
                         {file, "--report-dir", dir.path() + "/none", "--progress", "none"});
    CHECK(runner.Wait(absl::Seconds(30)) == 0);
    std::string err = runner.err();
    INFO(err);
    CHECK(count_progress(err) == 0);
    // No event lines ("[   2.00s] phase: ...") either.
    CHECK_FALSE(std::regex_search(err, std::regex("(^|\n)\\[ *[0-9.]+s\\] ")));
    CHECK_THAT(runner.out(), Catch::Contains("PASSED"));
  }
}

TEST_CASE("the local agent logs only errors under --progress none and no info lines under plain",
          "[runner][drill][progress]") {
  OipServer server;
  Sleeper sleeper;
  TempDir dir;
  // A fault through the local agent: at info level it logs "applied" and "reverted".
  std::string file = dir.Write(
      "agent-log.yaml",
      EndpointScenario("agent-log", server.address(),
                       absl::StrCat("faults:\n  - {name: hang, kind: process.pause, at: 1s, "
                                    "duration: 500ms, target: {agent: local}, pid: ",
                                    sleeper.pid, "}\n"),
                       "{baseline: 1s, observe: 2s, hold: 500ms}"));
  const std::regex any_log(R"((^|\n)\d{4}-\d\d-\d\dT[0-9:.]+Z [DIWE] )");
  const std::regex info_log(R"((^|\n)\d{4}-\d\d-\d\dT[0-9:.]+Z [DI] )");
  auto run = [&](const std::string& progress, const std::vector<std::string>& env) {
    RunnerProcess runner(
        dir.path(), {file, "--report-dir", dir.path() + "/" + progress, "--progress", progress}, "",
        env);
    CHECK(runner.Wait(absl::Seconds(60)) == 0);
    return runner.err();
  };
  {
    // The control: asked for info, the agent's lines are there (so the checks below can fail).
    std::string err = run("plain", {"CHAOSDRILL_LOG=info"});
    INFO(err);
    CHECK(std::regex_search(err, std::regex("Z I agent: applied ")));
    CHECK(std::regex_search(err, std::regex("Z I agent: reverted ")));
  }
  {
    std::string err = run("plain", {});
    INFO(err);
    CHECK_FALSE(std::regex_search(err, info_log));
    CHECK_THAT(err, Catch::Contains("inject hang"));  // the drill's own event lines stay
  }
  {
    std::string err = run("none", {});
    INFO(err);
    CHECK_FALSE(std::regex_search(err, any_log));
    CHECK(err.empty());
  }
}

// ---------------------------------------------------------------------------------------
// The reference service.

std::string ReferenceScenario(const std::string& name, int replicas, const std::string& extra,
                              const std::string& phases) {
  return absl::StrCat("apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: ", name,
                      "}\ntarget: {reference: {replicas: ", replicas,
                      ", model: {width: 16, depth: 2}}}\n"
                      "load: {rate: 100/s, timeout: 1s, good_latency: 200ms}\n"
                      "steady_state: {success_ratio: 0.95}\nphases: ",
                      phases, "\n", extra);
}

TEST_CASE("an abort condition that trips reverts every fault within 200 ms (exit 3)",
          "[runner][drill][abort]") {
  if (SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  TempDir dir;
  auto sc = Load(
      ReferenceScenario("abort", 1,
                        "faults:\n  - {name: hang, kind: process.pause, at: 3s, duration: 20s, "
                        "target: {role: \"replica[0]\"}, allow_majority: true}\n"
                        "abort:\n  - {success_ratio_below: 0.5, for: 1s}\n",
                        "{baseline: 3s, observe: 22s, hold: 1s}"));
  DrillOptions o = Options(dir);
  // Witness: the paused replica, watched from the moment the inject event names its pid.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> resumed_ns{0};
  std::atomic<bool> gone_while_stopped{false};
  std::thread watch([&] {
    pid_t pid = -1;
    bool stopped = false;
    while (!stop.load()) {
      if (pid < 0) {
        if (auto e = FindEventLine(o.events_file, "inject")) {
          std::smatch m;
          std::string msg = e->value("message", "");
          if (std::regex_search(msg, m, std::regex("pid ([0-9]+)"))) pid = std::stoi(m[1]);
        }
        absl::SleepFor(absl::Milliseconds(5));
        continue;
      }
      char st = ProcState(pid);
      if (st == 'T') stopped = true;
      if (stopped && st != 'T') {
        if (st == 0) gone_while_stopped = true;
        resumed_ns = MonoNs();
        return;
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
  });
  reports::RunRecord r = RunDrill(*sc, o);
  stop = true;
  watch.join();
  INFO(r.exit_reason);
  CHECK(r.exit_status == ExitStatus::kAborted);
  CHECK_THAT(r.exit_reason, Catch::Contains("aborted") && Catch::Contains("below 0.500"));
  auto abort = FindEventLine(o.events_file, "abort");
  REQUIRE(abort.has_value());
  const reports::Event* inject = FindEvent(r, "inject", "hang");
  REQUIRE(inject != nullptr);
  const reports::Event* abort_event = FindEvent(r, "abort");
  REQUIRE(abort_event != nullptr);
  REQUIRE(resumed_ns.load() != 0);
  CHECK_FALSE(gone_while_stopped.load());
  const int64_t delay = resumed_ns.load() - abort->at("monotonic_ns").get<int64_t>();
  INFO("abort decided " << (abort_event->t_ns - inject->t_ns) / 1e6
                        << " ms after the injection; the replica ran again " << delay / 1e6
                        << " ms after the abort decision");
  CHECK(delay <= 200'000'000);
  // Decided within for (1 s) + the window's ramp (0.5 s) + the good-latency lag and the
  // 100 ms check period, far before the fault's own end (20 s).
  CHECK(abort_event->t_ns - inject->t_ns < 5'000'000'000);
  REQUIRE(r.faults.size() == 1);
  CHECK(r.faults[0].reverted_ns.has_value());
  auto path = RecordIn(o.report_dir);
  REQUIRE(path);
  auto back = reports::ReadRunRecord(*path);
  REQUIRE(back.ok());
  CHECK(back->exit_status == ExitStatus::kAborted);
  CHECK(ProcessesMentioning(dir.path()).empty());
}

TEST_CASE("a fault resolves its role against the live topology (after a restart)",
          "[runner][drill][reference]") {
  if (SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  TempDir dir;
  // replica[0] is killed at 3 s and restarted by the supervisor (new pid); the pause at
  // 6 s must hit the new process, not the dead pid.
  auto sc = Load(ReferenceScenario(
      "restart", 2,
      "faults:\n  - {name: kill, kind: process.kill, at: 3s, target: {role: \"replica[0]\"}}\n"
      "  - {name: hang, kind: process.pause, at: 6s, duration: 1s, target: {role: "
      "\"replica[0]\"}}\n",
      "{baseline: 3s, observe: 6s, hold: 1s}"));
  reports::RunRecord r = RunDrill(*sc, Options(dir));
  INFO(r.exit_reason);
  REQUIRE(r.faults.size() == 2);
  CHECK_FALSE(r.faults[1].inject_failed);
  std::smatch a, b;
  REQUIRE(std::regex_search(r.faults[0].target, a, std::regex("pid ([0-9]+)")));
  REQUIRE(std::regex_search(r.faults[1].target, b, std::regex("pid ([0-9]+)")));
  CHECK(a[1] != b[1]);
  CHECK(r.exit_status != ExitStatus::kInfraError);
}

TEST_CASE("SIGINT while the reference service starts: exit 3, record, no process left",
          "[runner][drill][signal]") {
  if (SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  TempDir dir;
  std::string file = dir.Write(
      "ref.yaml", ReferenceScenario("starting", 1, "", "{baseline: 3s, observe: 3s, hold: 1s}"));
  const std::string reports_dir = dir.path() + "/reports";
  const std::string events = dir.path() + "/events.jsonl";
  RunnerProcess runner(
      dir.path(), {file, "--report-dir", reports_dir, "--progress", "none", "--events", events});
  REQUIRE(WaitFor(
      [&] {
        auto e = FindEventLine(events, "phase");
        return e && e->value("message", "").find("starting the reference") != std::string::npos;
      },
      absl::Seconds(20)));
  kill(-runner.pid(), SIGINT);
  int rc = runner.Wait(absl::Seconds(30));
  INFO(runner.err());
  CHECK(rc == 3);
  auto path = RecordIn(reports_dir);
  REQUIRE(path);
  auto r = reports::ReadRunRecord(*path);
  REQUIRE(r.ok());
  CHECK(r->exit_status == ExitStatus::kAborted);
  CHECK_THAT(r->exit_reason, Catch::Contains("while starting the target"));
  CHECK(r->requests.empty());
  CHECK(WaitFor([&] { return ProcessesMentioning(dir.path()).empty(); }, absl::Seconds(10)));
  for (const auto& p : ProcessesMentioning(dir.path())) UNSCOPED_INFO(p);
}

// ---------------------------------------------------------------------------------------
// Blast radius across overlapping faults (scenario validation: exit 2 before anything).

std::vector<std::string> Errors(const std::string& faults, int replicas = 3) {
  std::string yaml = absl::StrCat(
      "apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: blast}\n"
      "target: {reference: {replicas: ",
      replicas, "}}\nload: {rate: 50/s}\nphases: {baseline: 5s, observe: 60s, hold: 5s}\nfaults:\n",
      faults);
  injector::RegisterBuiltinFaults();
  auto loaded =
      scenarios::LoadScenario(yaml, "blast.yaml", injector::FaultRegistry::Global().Catalog());
  std::vector<std::string> out;
  for (const auto& e : loaded.errors) out.push_back(e.ToString());
  return out;
}

TEST_CASE("blast radius: overlapping replica faults hitting more than half are refused",
          "[runner][drill][blast]") {
  const std::string a =
      "  - {name: a, kind: process.pause, at: 10s, duration: 10s, target: {role: "
      "\"replica[0]\"}}\n";
  // Overlaps a: replicas 0 and 1 of 3 at once.
  auto overlap = Errors(a +
                        "  - {name: b, kind: process.pause, at: 15s, duration: 10s, target: "
                        "{role: \"replica[1]\"}}\n");
  for (const auto& e : overlap) UNSCOPED_INFO(e);
  REQUIRE(overlap.size() == 1);
  CHECK_THAT(overlap[0], Catch::Contains("faults[1]") && Catch::Contains("together with a") &&
                             Catch::Contains("2 of 3"));
  // One after the other: fine.
  CHECK(Errors(a + "  - {name: b, kind: process.pause, at: 20s, duration: 10s, target: {role: "
                   "\"replica[1]\"}}\n")
            .empty());
  // The same replica twice: still one of three.
  CHECK(Errors(a + "  - {name: b, kind: process.pause, at: 12s, duration: 2s, target: {role: "
                   "\"replica[0]\"}}\n")
            .empty());
  // Meant: allow_majority on the fault that brings it over half.
  CHECK(Errors(a + "  - {name: b, kind: process.pause, at: 15s, duration: 10s, target: {role: "
                   "\"replica[1]\"}, allow_majority: true}\n")
            .empty());
  // Two kills half a second apart: the first replica is still restarting.
  auto kills = Errors(
      "  - {name: k0, kind: process.kill, at: 10s, target: {role: \"replica[0]\"}}\n"
      "  - {name: k1, kind: process.kill, at: 10500ms, target: {role: \"replica[1]\"}}\n");
  CHECK(kills.size() == 1);
  CHECK(Errors("  - {name: k0, kind: process.kill, at: 10s, target: {role: \"replica[0]\"}}\n"
               "  - {name: k1, kind: process.kill, at: 20s, target: {role: \"replica[1]\"}}\n")
            .empty());
  // A family fault with count 1 (replica[0]) plus replica[1]: two of three.
  CHECK(Errors("  - {name: f, kind: process.pause, at: 10s, duration: 10s, target: {role: "
               "replica, count: 1}}\n"
               "  - {name: g, kind: process.pause, at: 11s, duration: 1s, target: {role: "
               "\"replica[1]\"}}\n")
            .size() == 1);
  // Five replicas: two at once is not more than half.
  CHECK(Errors(a + "  - {name: b, kind: process.pause, at: 15s, duration: 10s, target: {role: "
                   "\"replica[1]\"}}\n",
               5)
            .empty());
}

}  // namespace
}  // namespace chaosdrill::runner
