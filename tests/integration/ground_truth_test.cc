// Ground truth for the numbers `chaosdrill run` reports (issue 6, DESIGN §7): real drills
// against the reference service, each number checked against a witness the runner does not
// produce — /proc/PID/stat of the faulted process polled from here, the reference gateway's
// own Prometheus metrics scraped from here during the drill, the drill's --events stream
// (monotonic_ns lines the drill's times up with ours), and the records' own internal
// consistency for RPO. Bounds are derived from the definitions (docs/measurements.md) and
// the gateway's documented behaviour (docs/reference-inference.md); each test prints the
// measured numbers and the margins to every bound.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <regex>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "injector/fault_registry.h"
#include "reference/gateway.h"
#include "reports/run_record_json.h"
#include "runner/analysis.h"
#include "runner/drill.h"
#include "scenarios/scenario_loader.h"
#include "tests/integration/drill_observer.h"
#include "tests/reference/service_test_util.h"
#include "tests/test_support.h"

namespace chaosdrill::integration {
namespace {

namespace fs = std::filesystem;
using reports::ExitStatus;
using reports::RunRecord;
using testing::ChaosdrillBinary;
using testing::MonoNs;
using testing::ReadAll;
using testing::RunnerProcess;
using testing::SkipUnless;
using testing::TempDir;

constexpr int64_t kMs = 1'000'000;

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }
// A drill time in ms, "-" for "never" (-1).
std::string MsOr(int64_t ns) { return ns < 0 ? "-" : absl::StrFormat("%.0f", Ms(ns)); }

bool Ready() {
  // integration_test depends on the chaosdrill target, so a missing binary is one being
  // relinked right now (the build tree is shared): wait for it a while before skipping.
  const absl::Time deadline = absl::Now() + absl::Minutes(2);
  while (access(ChaosdrillBinary().c_str(), X_OK) != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Seconds(1));
  }
  if (SkipUnless(access(ChaosdrillBinary().c_str(), X_OK) == 0, "needs build/chaosdrill")) {
    return false;
  }
  return !SkipUnless(reference::testing::HaveRedis(),
                     "needs redis-server and redis-sentinel (scripts/install-deps.sh)");
}

std::shared_ptr<const scenarios::Scenario> LoadScenario(const std::string& path) {
  injector::RegisterBuiltinFaults();
  auto loaded = scenarios::LoadScenarioFile(path, injector::FaultRegistry::Global().Catalog());
  std::string errors;
  for (const auto& e : loaded.errors) absl::StrAppend(&errors, e.ToString(), "\n");
  INFO(ReadAll(path) << "\n" << errors);
  REQUIRE(loaded.ok());
  return loaded.scenario;
}

// The chaosdrill the drill's children run: a stable snapshot of build/chaosdrill.
std::string Binary(const TempDir& dir) {
  std::string binary = StableChaosdrill(dir.path());
  INFO("build/chaosdrill kept changing (relinked by someone else?)");
  REQUIRE_FALSE(binary.empty());
  return binary;
}

runner::DrillOptions Options(const TempDir& dir, const std::string& binary) {
  runner::DrillOptions o;
  o.report_dir = dir.path() + "/reports";
  o.chaosdrill_binary = binary;
  o.progress = runner::ProgressMode::kNone;
  o.events_file = dir.path() + "/events.jsonl";
  return o;
}

pid_t PidIn(const std::string& target) {
  std::smatch m;
  if (!std::regex_search(target, m, std::regex("pid ([0-9]+)"))) return -1;
  return std::stoi(m[1]);
}

// Item 7: every record a test produced validates against reports/run_record.schema.json.
void CheckSchema(const std::string& record_path) {
  absl::Status valid = testing::ValidateRecordAgainstSchema(record_path);
  if (valid.code() == absl::StatusCode::kFailedPrecondition) {
    std::printf("schema check skipped: %s\n", std::string(valid.message()).c_str());
    return;
  }
  INFO(valid.message());
  CHECK(valid.ok());
}

// Non-OK counts between two scrapes: client responses and tries on replicas, by code.
std::string CodeCounts(const Scrape& from, const Scrape& to) {
  std::map<std::string, double> responses, tries;
  for (const PromSample& p : to.samples) {
    if (p.name == "chaosdrill_gateway_responses_total" && p.labels.count("code") &&
        p.labels.at("code") != "OK" && p.labels.at("method") == "ModelInfer") {
      responses[p.labels.at("code")] += p.value - from.Sum(p.name, p.labels);
    }
    if (p.name == "chaosdrill_gateway_replica_requests_total" && p.labels.count("code") &&
        p.labels.at("code") != "OK") {
      tries[p.labels.at("code")] += p.value - from.Sum(p.name, p.labels);
    }
  }
  std::string out = "responses";
  for (const auto& [code, n] : responses) absl::StrAppend(&out, " ", code, " +", n);
  absl::StrAppend(&out, "; failed tries");
  for (const auto& [code, n] : tries) absl::StrAppend(&out, " ", code, " +", n);
  return out;
}

// The first stop of `pid` after `from_ns` and the resumption that follows, as bracketed by
// the observer's polls.
struct PauseWitness {
  StateChange stop, cont;
};
std::optional<PauseWitness> FindPause(const std::vector<StateChange>& changes) {
  for (size_t i = 0; i < changes.size(); ++i) {
    if (changes[i].to != 'T') continue;
    for (size_t j = i + 1; j < changes.size(); ++j) {
      if (changes[j].from == 'T') return PauseWitness{changes[i], changes[j]};
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// 1. process.pause of the only replica: RTO against /proc and the gateway's metrics.
//
// One replica, so the gateway's retries have nowhere to go (a retry excludes the replica
// already tried: UNAVAILABLE at once). With G = good_latency, I = the request interval, the
// replica stopped at s and resumed at c (witnessed by /proc: c in (c_lo, c_hi]):
//  - lower bound: a request intended at τ in [t_i, c) is answered no earlier than c (the
//    replica runs no code while stopped; an answer from the gateway itself is an error), so
//    it is good only if c - τ <= G: t_r >= max(t_i, c_lo - G). RTO >= (c_lo - t_i) - G.
//  - upper bound: from t_back = max(c_hi, the first scrape that sees the replica routable
//    again after it was out of routing) the replica serves again; requests intended after
//    the backlog it accumulated has drained (the first scrape at or after t_back whose
//    `replica_outstanding` is at most the steady-state in-flight count) are answered in
//    steady-state time. So t_r <= t_drained + 2 I (one interval for the first request after
//    it, one for the scrape bracketing). The analysis's hold window must also stay good
//    after that: on this shared machine a stall can break it, which the generous G (100
//    ms), hold (2 s) and recovery ratio (0.9: 40 bad requests per window tolerated) absorb.
// The issue's bound, RTO in [d, d + 2 I + detection] (detection: the gateway's
// chaosdrill_gateway_last_detection_seconds, first failure of a streak to unhealthy or
// ejected; 0 when it detected nothing), checked as far as it holds:
//  - its upper end holds as stated while the gateway keeps the replica in routing: a pause
//    shorter than `fall` health intervals and the 1 s per-try timeout (0.2 s) marks
//    nothing unhealthy and fails no try (the replica queues its backlog instead of refusing
//    it, and panic routing would ignore an ejection of the only replica anyway), so RTO
//    <= d + 2 I, and the gateway answered every request OK;
//  - a pause that outlasts `fall` probes (1.0, 2.0 s) marks the replica unhealthy, and a
//    replica failing its health checks stays out even in panic until `rise` probes pass
//    after the resume: that re-admission, up to rise x health interval (1 s; the first
//    passing probe comes 0-500 ms after the resume, then one more interval), is not in
//    the issue's bound and is added to it here: RTO <= d + 2 I + detection + rise x
//    interval. A 1.0 s pause is marked unhealthy only when two probes start inside it
//    (about half the runs): measured RTO d - 0.07..-0.04 s when not (the issue's bound
//    holds: d + 2 I + the ~10 ms ejection detection, panic keeping the ejected replica
//    in routing), d + 0.68 s when it was; 2.0 s: d + 0.44..0.47 s, re-admission 431-464
//    ms after the resume (the issue's bound alone is d + 0.51 s);
//  - its lower end d cannot hold by the definition of a good request: one intended less
//    than G before the resume is answered within G of its intended time, so it is good
//    and RTO is about d - G (the witness-derived lower bound above; 0.2 s: RTO 108-114
//    ms); it is printed.
// The fault itself is held d from its confirmed injection (the drill reverts it at
// t_i + d): /proc sees the replica stopped for at least d.
void PauseTheOnlyReplica(int pause_ms) {
  if (!Ready()) return;
  TempDir dir;
  const int observe_s = 8 + pause_ms / 1000;
  const std::string file = dir.Write(
      "pause.yaml",
      absl::StrFormat("apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: gt-pause-%dms}\n"
                      "target: {reference: {replicas: 1, model: {width: 32, depth: 2}}}\n"
                      "load: {rate: 200/s, connections: 4, timeout: 2s, golden_every: 10, "
                      "good_latency: 100ms}\n"
                      "steady_state: {success_ratio: 0.9}\n"
                      "phases: {baseline: 3s, observe: %ds, hold: 2s, recovery_ratio: 0.9}\n"
                      "faults:\n"
                      "  - {name: pause, kind: process.pause, at: 4s, duration: %dms, "
                      "target: {role: \"replica[0]\"}, allow_majority: true}\n",
                      pause_ms, observe_s, pause_ms));
  auto sc = LoadScenario(file);
  runner::DrillOptions o = Options(dir, Binary(dir));
  DrillObserver obs(o.report_dir);
  const int64_t start = MonoNs();
  RunRecord r = runner::RunDrill(*sc, o);
  obs.Stop();
  std::printf("\n== pause %d ms: drill took %.1f s, exit %d (%s)\n", pause_ms,
              (MonoNs() - start) / 1e9, static_cast<int>(r.exit_status), r.exit_reason.c_str());
  INFO(r.exit_reason);
  REQUIRE(r.exit_status == ExitStatus::kPassed);
  auto record_path = RecordIn(o.report_dir);
  REQUIRE(record_path);
  CheckSchema(*record_path);

  REQUIRE(r.faults.size() == 1);
  const reports::FaultEvent& f = r.faults[0];
  REQUIRE_FALSE(f.inject_failed);
  REQUIRE(f.reverted_ns.has_value());
  REQUIRE(r.analysis.faults.size() == 1);
  const reports::FaultResult& fr = r.analysis.faults[0];
  const pid_t pid = PidIn(f.target);
  REQUIRE(pid > 0);
  auto origin = DrillOrigin(o.events_file);
  REQUIRE(origin);
  auto D = [&](int64_t mono) { return mono - *origin; };  // monotonic -> drill time
  auto pause = FindPause(obs.changes(pid));
  REQUIRE(pause);
  const int64_t stop_lo = D(pause->stop.last_old_ns), stop_hi = D(pause->stop.first_new_ns);
  const int64_t cont_lo = D(pause->cont.last_old_ns), cont_hi = D(pause->cont.first_new_ns);
  const int64_t G = r.analysis.good_latency_ns, I = r.request_interval_ns;
  const int64_t ti = f.injected_ns;
  std::printf("  record: t_i %.1f ms (scheduled %.0f), reverted %.1f ms, G %.0f ms, I %.1f ms\n",
              Ms(ti), Ms(f.scheduled_ns), Ms(*f.reverted_ns), Ms(G), Ms(I));
  std::printf("  /proc:  stopped in (%.1f, %.1f] ms, resumed in (%.1f, %.1f] ms: paused %.1f ms\n",
              Ms(stop_lo), Ms(stop_hi), Ms(cont_lo), Ms(cont_hi), Ms(cont_hi - stop_lo));
  // The record's fault times agree with the witness: the agent confirms a pause once the
  // process is stopped, and a revert once it runs again.
  CHECK(ti > stop_lo);
  CHECK(*f.reverted_ns > cont_lo);
  CHECK(*f.reverted_ns - ti >= pause_ms * kMs);
  CHECK(cont_hi - stop_lo >= pause_ms * kMs);

  // The gateway's view, from its own metrics.
  auto topo = obs.topology();
  REQUIRE(topo);
  const std::string replica = topo->roles.at("replica[0]").address;
  const std::map<std::string, std::string> rl = {{"replica", replica}};
  std::vector<Scrape> scrapes = obs.scrapes();
  REQUIRE_FALSE(scrapes.empty());
  const Scrape* before = nullptr;  // the last scrape before the stop
  for (const Scrape& s : scrapes) {
    if (D(s.after_ns) < stop_lo) before = &s;
  }
  REQUIRE(before != nullptr);
  const Scrape& last = scrapes.back();
  auto delta = [&](const std::string& name, const std::map<std::string, std::string>& l) {
    return last.Sum(name, l) - before->Sum(name, l);
  };
  // Out of routing: the first scrape after the stop that shows no routable replica, and the
  // first one routable again after the last such. `routable_replicas` is computed when the
  // gateway renders the scrape (the per-replica gauges are refreshed by the health checker,
  // up to one health interval late).
  int64_t out_seen = -1, back_seen = -1;  // -1: not seen
  double max_outstanding = 0, steady_outstanding = 0;
  for (const Scrape& s : scrapes) {
    const double routable = s.Sum("chaosdrill_gateway_routable_replicas");
    const double outstanding = s.Sum("chaosdrill_gateway_replica_outstanding", rl);
    if (D(s.after_ns) < stop_lo && D(s.before_ns) > 1'000 * kMs) {
      steady_outstanding = std::max(steady_outstanding, outstanding);
    }
    if (D(s.before_ns) <= stop_lo) continue;
    max_outstanding = std::max(max_outstanding, outstanding);
    if (routable == 0) {
      if (out_seen < 0) out_seen = D(s.before_ns);
      back_seen = -1;
    } else if (out_seen >= 0 && back_seen < 0) {
      back_seen = D(s.after_ns);
    }
  }
  const int64_t t_back = std::max(cont_hi, back_seen);
  int64_t drained = -1;
  for (const Scrape& s : scrapes) {
    if (D(s.before_ns) >= t_back &&
        s.Sum("chaosdrill_gateway_replica_outstanding", rl) <= std::max(1.0, steady_outstanding)) {
      drained = D(s.after_ns);
      break;
    }
  }
  // When the gateway took it out: counters change at the event, so the first scrape that
  // shows the increase brackets it with the scrape before.
  auto first_increase = [&](const std::string& name) {
    const double base = before->Sum(name, rl);
    for (size_t i = 1; i < scrapes.size(); ++i) {
      if (scrapes[i].Sum(name, rl) > base && D(scrapes[i].after_ns) > stop_lo) {
        return absl::StrFormat("(%.0f, %.0f]", Ms(D(scrapes[i - 1].before_ns)),
                               Ms(D(scrapes[i].after_ns)));
      }
    }
    return std::string("never");
  };
  std::printf("  gateway codes: %s\n", CodeCounts(*before, last).c_str());
  std::printf("  gateway: marked unhealthy in %s ms, ejected in %s ms\n",
              first_increase("chaosdrill_gateway_unhealthy_transitions_total").c_str(),
              first_increase("chaosdrill_gateway_ejections_total").c_str());
  const double health_detections =
      delta("chaosdrill_gateway_detection_seconds_count", {{"replica", replica}, {"by", "health"}});
  const double outlier_detections = delta("chaosdrill_gateway_detection_seconds_count",
                                          {{"replica", replica}, {"by", "outlier"}});
  double detection_s = 0;
  if (health_detections > 0) {
    detection_s = std::max(detection_s, last.Sum("chaosdrill_gateway_last_detection_seconds",
                                                 {{"replica", replica}, {"by", "health"}}));
  }
  if (outlier_detections > 0) {
    detection_s = std::max(detection_s, last.Sum("chaosdrill_gateway_last_detection_seconds",
                                                 {{"replica", replica}, {"by", "outlier"}}));
  }
  std::printf(
      "  gateway (%zu scrapes): unhealthy +%.0f, ejections +%.0f, detections health %.0f / "
      "outlier %.0f, last detection %.3f s, out of routing %s..%s ms, max outstanding %.0f "
      "(steady %.0f), drained at %s ms; ModelInfer errors +%.0f, retries +%.0f\n",
      scrapes.size(), delta("chaosdrill_gateway_unhealthy_transitions_total", rl),
      delta("chaosdrill_gateway_ejections_total", rl), health_detections, outlier_detections,
      detection_s, MsOr(out_seen).c_str(), MsOr(back_seen).c_str(), max_outstanding,
      steady_outstanding, MsOr(drained).c_str(),
      delta("chaosdrill_gateway_responses_total", {{"method", "ModelInfer"}}) -
          delta("chaosdrill_gateway_responses_total", {{"method", "ModelInfer"}, {"code", "OK"}}),
      delta("chaosdrill_gateway_retries_total", {}));

  REQUIRE(fr.impact);
  REQUIRE(fr.recovered);
  const int64_t lower = std::max(ti, cont_lo - G);
  std::printf(
      "  result: impact at %.1f ms, t_r %.1f ms, RTO %.1f ms (pause %d ms), failed %llu, "
      "recover after revert %.1f ms\n",
      Ms(fr.impact_ns), Ms(fr.recovered_ns), Ms(fr.rto_ns), pause_ms,
      static_cast<unsigned long long>(fr.failed_requests),
      Ms(fr.recover_after_revert_ns.value_or(-1)));
  std::printf("  lower bound t_r >= max(t_i, c_lo - G) = %.1f ms: margin %.1f ms\n", Ms(lower),
              Ms(fr.recovered_ns - lower));
  CHECK(fr.recovered_ns >= lower);
  CHECK(fr.rto_ns == fr.recovered_ns - ti);
  REQUIRE(drained >= 0);
  const int64_t upper = drained + 2 * I;
  std::printf("  upper bound t_r <= t_drained + 2 I = %.1f ms: margin %.1f ms\n", Ms(upper),
              Ms(upper - fr.recovered_ns));
  CHECK(fr.recovered_ns <= upper);
  const int64_t d = pause_ms * kMs;
  const int64_t issue_upper = d + 2 * I + static_cast<int64_t>(detection_s * 1e9);
  const double errors =
      delta("chaosdrill_gateway_responses_total", {{"method", "ModelInfer"}}) -
      delta("chaosdrill_gateway_responses_total", {{"method", "ModelInfer"}, {"code", "OK"}});
  // The gateway's settings as the supervisor starts it (reference/gateway.h defaults).
  const reference::GatewayOptions gw;
  const int64_t readmission =
      health_detections > 0 ? int64_t{gw.rise} * gw.health_interval_ms * kMs : 0;
  // The issue's bound takes the service to be back the moment the fault ends; a backlog
  // the replica is still draining after that (on a loaded machine, up to ~150 ms at 1 s)
  // is the machine's speed, not the measurement's: allowed as the gateway's metrics show it.
  // t_drained comes after any re-admission, so the two allowances overlap: the larger counts.
  const int64_t backlog = std::max<int64_t>(0, drained - (ti + d));
  const int64_t allowance = std::max(readmission, backlog);
  std::printf(
      "  the issue's bound: RTO in [%d, %.1f] ms (d + 2 I + detection %.0f ms): %s; "
      "re-admission allowance %.0f ms (rise %d x %d ms, only once marked unhealthy), backlog "
      "drained %.1f ms after t_i + d: RTO <= %.1f ms, margin %.1f ms; RTO - d %+.1f ms (G %.0f "
      "ms)\n",
      pause_ms, Ms(issue_upper), detection_s * 1e3,
      fr.rto_ns >= d && fr.rto_ns <= issue_upper ? "inside" : "outside", Ms(readmission), gw.rise,
      gw.health_interval_ms, Ms(backlog), Ms(issue_upper + allowance),
      Ms(issue_upper + allowance - fr.rto_ns), Ms(fr.rto_ns - d), Ms(G));
  CHECK(fr.rto_ns <= issue_upper + allowance);
  if (pause_ms + gw.health_timeout_ms <= (gw.fall - 1) * gw.health_interval_ms &&
      pause_ms < gw.per_try_timeout_ms) {
    // Too short for the gateway to take the replica out: `fall` failed probes in a row
    // need `fall` probe starts one interval apart within (stop - timeout, resume), and no
    // try outlives the per-try timeout. So nothing unhealthy, no ejection, every request
    // answered OK (the backlog queued, not refused), and the issue's upper bound holds as
    // stated (detection 0).
    CHECK(health_detections == 0);
    CHECK(outlier_detections == 0);
    CHECK(errors == 0);
    CHECK(fr.rto_ns <= issue_upper);
  }
}

TEST_CASE("ground truth: pausing the only replica for 0.2 s", "[integration][ground-truth][slow]") {
  PauseTheOnlyReplica(200);
}
TEST_CASE("ground truth: pausing the only replica for 1.0 s", "[integration][ground-truth][slow]") {
  PauseTheOnlyReplica(1000);
}
TEST_CASE("ground truth: pausing the only replica for 2.0 s", "[integration][ground-truth][slow]") {
  PauseTheOnlyReplica(2000);
}

// Runs `chaosdrill run FILE --report-dir DIR/reports --events DIR/events.jsonl` as a child
// (the form users run), watched by `obs`; returns its exit code and the record it wrote.
struct ChildRun {
  int exit_code = -1;
  std::string record_path;
  RunRecord record;
  std::string output;
};
ChildRun RunChild(const TempDir& dir, const std::string& binary, const std::string& file,
                  absl::Duration timeout) {
  ChildRun run;
  RunnerProcess runner(dir.path(),
                       {file, "--report-dir", dir.path() + "/reports", "--progress", "plain",
                        "--events", dir.path() + "/events.jsonl"},
                       binary);
  const int64_t start = MonoNs();
  run.exit_code = runner.Wait(timeout);
  run.output = runner.out() + runner.err();
  std::printf("\n== %s: `chaosdrill run` took %.1f s, exit %d\n", fs::path(file).stem().c_str(),
              (MonoNs() - start) / 1e9, run.exit_code);
  auto path = RecordIn(dir.path() + "/reports");
  INFO(run.output);
  REQUIRE(path);
  run.record_path = *path;
  auto record = reports::ReadRunRecord(*path);
  INFO(record.status().message());
  REQUIRE(record.ok());
  run.record = *std::move(record);
  return run;
}

// Client-side request counts over a window of monotonic time, for comparison with the
// gateway's counters between two scrapes.
struct ClientCounts {
  // Requests that certainly reached the gateway between the scrapes and were answered
  // before the second: sent after the first scrape ended, completed before the second began.
  std::map<int, uint64_t> inside_by_code;
  uint64_t inside = 0;
  // Requests that may have: sent before the second scrape ended, and not completed before
  // the first began (or never completed).
  uint64_t maybe = 0;
  uint64_t maybe_not_ok = 0;  // of those, not OK or never completed
};
ClientCounts CountClient(const RunRecord& r, int64_t origin, const Scrape& a, const Scrape& b) {
  ClientCounts c;
  for (const reports::RequestRecord& q : r.requests) {
    const int64_t sent = q.sent_ns + origin;
    const bool completed = q.completed_ns != 0;
    const int64_t done = q.completed_ns + origin;
    if (sent >= a.after_ns && completed && done <= b.before_ns) {
      ++c.inside;
      ++c.inside_by_code[q.code];
    }
    if (sent <= b.after_ns && (!completed || done >= a.before_ns)) {
      ++c.maybe;
      if (!completed || q.code != 0) ++c.maybe_not_ok;
    }
  }
  return c;
}

// gRPC code names as the gateway labels them.
std::string CodeName(int code) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? kNames[code] : absl::StrCat(code);
}

// ---------------------------------------------------------------------------------------
// 2. Three replicas, one SIGKILLed under 200 rps: availability and RTO against the gateway.
//
// Every ModelInfer the gateway answers comes from the drill's load generator (its health
// checks go to the replicas directly), so between two scrapes a and b:
//  - requests: the client requests sent after a and answered before b <= the gateway's
//    requests_total increase <= those sent before b and not answered before a;
//  - errors, per code: client requests with that code sent after a and answered before b
//    <= the gateway's responses_total{code} increase; all error responses <= client
//    requests sent before b, not answered before a, that were not OK or never answered;
//  - the gateway itself: retries <= failed tries (non-OK replica_requests_total) <=
//    retries + error responses + calls in flight at b (a try whose retry is not counted yet);
//  - the victim left routing (routable 0) and its ejection counter went up;
//  - RTO: once the victim is out of routing, requests go to the two healthy replicas, so
//    t_r <= t_out + 2 I (the first request after it, and the scrape bracketing). The
//    gateway's retries usually absorb the kill entirely (no impact, RTO 0); a bad request
//    long after t_out (a stall of this machine: an OK answer slower than G) is what the
//    analysis then reports as the impact, which is checked to be only that; and
//    availability <= 1 - (error responses over the drill) / requests (no error before the
//    kill: checked).
TEST_CASE("ground truth: SIGKILL of one of three replicas under 200 rps",
          "[integration][ground-truth][slow]") {
  if (!Ready()) return;
  TempDir dir;
  const std::string binary = Binary(dir);
  const std::string file = dir.Write(
      "kill-one-of-three.yaml",
      "apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: gt-kill-one}\n"
      "target: {reference: {replicas: 3, model: {width: 32, depth: 2}}}\n"
      "load: {rate: 200/s, connections: 4, timeout: 2s, golden_every: 10, good_latency: 250ms}\n"
      "steady_state: {success_ratio: 0.9}\n"
      "phases: {baseline: 3s, observe: 9s, hold: 2s, recovery_ratio: 0.9}\n"
      "faults:\n"
      "  - {name: kill, kind: process.kill, at: 4s, target: {role: \"replica[1]\"}}\n");
  DrillObserver obs(dir.path() + "/reports");
  ChildRun run = RunChild(dir, binary, file, absl::Seconds(120));
  obs.Stop();
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CheckSchema(run.record_path);
  const RunRecord& r = run.record;
  CHECK_FALSE(r.in_progress);
  REQUIRE(r.faults.size() == 1);
  const reports::FaultEvent& f = r.faults[0];
  REQUIRE_FALSE(f.inject_failed);
  REQUIRE(r.analysis.faults.size() == 1);
  const reports::FaultResult& fr = r.analysis.faults[0];
  const int64_t I = r.request_interval_ns;
  auto origin = DrillOrigin(dir.path() + "/events.jsonl");
  REQUIRE(origin);
  auto D = [&](int64_t mono) { return mono - *origin; };

  // The kill, from /proc: the victim's pid died (a zombie counts as dead).
  const pid_t victim = PidIn(f.target);
  REQUIRE(victim > 0);
  std::optional<StateChange> death;
  for (const StateChange& c : obs.changes(victim)) {
    if (c.to == 0) death = c;
  }
  REQUIRE(death);
  std::printf("  kill: t_i %.1f ms (scheduled %.0f); /proc: pid %d died in (%.1f, %.1f] ms\n",
              Ms(f.injected_ns), Ms(f.scheduled_ns), victim, Ms(D(death->last_old_ns)),
              Ms(D(death->first_new_ns)));
  CHECK(D(death->first_new_ns) > f.scheduled_ns);
  CHECK(D(death->last_old_ns) < f.injected_ns + 500 * kMs);

  auto topo = obs.topology();
  REQUIRE(topo);
  const std::string address = topo->roles.at("replica[1]").address;
  const std::map<std::string, std::string> vl = {{"replica", address}};
  std::vector<Scrape> scrapes = obs.scrapes();
  REQUIRE(scrapes.size() > 10);
  const Scrape* before_kill = nullptr;
  for (const Scrape& s : scrapes) {
    if (D(s.after_ns) < D(death->last_old_ns)) before_kill = &s;
  }
  REQUIRE(before_kill != nullptr);
  const Scrape& first = scrapes.front();
  const Scrape& last = scrapes.back();
  auto delta = [](const Scrape& a, const Scrape& b, const std::string& name,
                  const std::map<std::string, std::string>& l = {}) {
    return b.Sum(name, l) - a.Sum(name, l);
  };
  const std::map<std::string, std::string> infer = {{"method", "ModelInfer"}};
  auto errors = [&](const Scrape& a, const Scrape& b) {
    return delta(a, b, "chaosdrill_gateway_responses_total", infer) -
           delta(a, b, "chaosdrill_gateway_responses_total",
                 {{"method", "ModelInfer"}, {"code", "OK"}});
  };
  const double gw_requests = delta(first, last, "chaosdrill_gateway_requests_total", infer);
  const double gw_errors = errors(first, last);
  const double failed_tries =
      delta(first, last, "chaosdrill_gateway_replica_requests_total") -
      delta(first, last, "chaosdrill_gateway_replica_requests_total", {{"code", "OK"}});
  const double retries = delta(first, last, "chaosdrill_gateway_retries_total");
  const double refused = delta(first, last, "chaosdrill_gateway_retry_budget_exhausted_total");
  const double in_flight = last.Sum("chaosdrill_gateway_requests_total", infer) -
                           last.Sum("chaosdrill_gateway_responses_total", infer);
  const double ejections = delta(first, last, "chaosdrill_gateway_ejections_total", vl);
  const double unhealthy = delta(first, last, "chaosdrill_gateway_unhealthy_transitions_total", vl);
  ClientCounts client = CountClient(r, *origin, first, last);
  std::printf(
      "  gateway (%zu scrapes, %.1f..%.1f s): ModelInfer requests +%.0f, error responses +%.0f "
      "(before the kill %.0f), failed tries +%.0f, retries +%.0f, refused by the budget +%.0f, "
      "in flight at the last scrape %.0f; victim: ejections +%.0f, unhealthy +%.0f\n",
      scrapes.size(), D(first.before_ns) / 1e9, D(last.after_ns) / 1e9, gw_requests, gw_errors,
      errors(first, *before_kill), failed_tries, retries, refused, in_flight, ejections, unhealthy);
  std::printf("  gateway codes: %s\n", CodeCounts(first, last).c_str());
  std::printf("  client: %llu requests surely inside the scrapes, %llu possibly (%llu not OK)\n",
              static_cast<unsigned long long>(client.inside),
              static_cast<unsigned long long>(client.maybe),
              static_cast<unsigned long long>(client.maybe_not_ok));
  CHECK(client.inside <= gw_requests);
  CHECK(gw_requests <= client.maybe);
  for (const auto& [code, n] : client.inside_by_code) {
    if (code == 0) continue;
    std::printf("  client code %s: %llu, gateway %.0f\n", CodeName(code).c_str(),
                static_cast<unsigned long long>(n),
                delta(first, last, "chaosdrill_gateway_responses_total",
                      {{"method", "ModelInfer"}, {"code", CodeName(code)}}));
    // A client-side deadline is the client's own verdict; the gateway may answer it later.
    if (code == 4) continue;
    CHECK(n <= delta(first, last, "chaosdrill_gateway_responses_total",
                     {{"method", "ModelInfer"}, {"code", CodeName(code)}}));
  }
  CHECK(gw_errors <= client.maybe_not_ok);
  CHECK(errors(first, *before_kill) == 0);
  CHECK(retries <= failed_tries);
  CHECK(failed_tries <= retries + gw_errors + in_flight);
  CHECK(ejections >= 1);

  // Out of routing: per-replica gauges change at once on ejection or an unhealthy verdict.
  int64_t out_lo = -1, out_hi = -1, back = -1;
  for (size_t i = 1; i < scrapes.size(); ++i) {
    if (D(scrapes[i].before_ns) <= D(death->last_old_ns)) continue;
    const double routable = scrapes[i].Sum("chaosdrill_gateway_replica_routable", vl);
    if (out_hi < 0 && routable == 0) {
      out_lo = D(scrapes[i - 1].before_ns);
      out_hi = D(scrapes[i].after_ns);
    } else if (out_hi >= 0 && back < 0 && routable == 1) {
      back = D(scrapes[i].after_ns);
    }
  }
  REQUIRE(out_hi >= 0);
  const auto final_topology = obs.topology();
  std::printf(
      "  victim out of routing in (%.1f, %.1f] ms (%.1f ms after the kill), routable again "
      "by %s ms, restarted %d time(s)\n",
      Ms(out_lo), Ms(out_hi), Ms(out_hi - f.injected_ns), MsOr(back).c_str(),
      final_topology->roles.at("replica[1]").restarts);

  const reports::AnalysisResult& a = r.analysis;
  std::printf(
      "  record: availability %.4f (%llu good of %llu), impact %s, RTO %.1f ms, failed "
      "%llu, time to impact %.1f ms, outage %.1f ms\n",
      a.availability, static_cast<unsigned long long>(a.good),
      static_cast<unsigned long long>(a.requests), fr.impact ? "yes" : "no", Ms(fr.rto_ns),
      static_cast<unsigned long long>(fr.failed_requests), Ms(fr.time_to_impact_ns),
      Ms(fr.outage_ns));
  // Bad requests after the victim left routing, by kind: an error (from the gateway, or the
  // client's deadline) or an OK answer slower than G (this machine stalled the load
  // generator or the gateway; no replica was missing).
  const int64_t upper = out_hi + 2 * I;
  uint64_t late_errors = 0, late_slow = 0;
  for (const reports::RequestRecord& q : r.requests) {
    if (q.intended_ns < upper || q.intended_ns >= r.phases.observe_end_ns) continue;
    if (q.completed_ns == 0 || q.code != 0) {
      ++late_errors;
    } else if (!runner::IsGood(q, a.good_latency_ns)) {
      ++late_slow;
    }
  }
  std::printf("  bad requests after t_out + 2 I: %llu errors, %llu slow OK answers\n",
              static_cast<unsigned long long>(late_errors),
              static_cast<unsigned long long>(late_slow));
  if (!fr.impact) {
    CHECK(fr.rto_ns == 0);
  } else if (fr.impact_ns <= upper) {
    // The kill's own impact: over once the victim is out of routing.
    CHECK(fr.recovered);
    std::printf("  t_r %.1f ms <= t_out + 2 I = %.1f ms: margin %.1f ms\n", Ms(fr.recovered_ns),
                Ms(upper), Ms(upper - fr.recovered_ns));
    CHECK(fr.recovered_ns <= upper);
  } else {
    // The first bad request came after the victim was out of routing, so the analysis
    // (which attributes every bad request in the fault's span to it) reports a later stall
    // as the fault's impact, "unrecovered" when it came within `hold` of the end. Only
    // acceptable when the gateway saw no error then: slow OK answers, not a missing replica.
    std::printf("  impact %.1f ms after t_out: a stall of this machine, not the kill (%s)\n",
                Ms(fr.impact_ns - out_hi), fr.recovered ? "recovered" : "unrecovered");
    CHECK(late_errors == 0);
    CHECK(gw_errors == 0);
  }
  const double availability_max = 1.0 - gw_errors / static_cast<double>(a.requests);
  std::printf("  availability %.4f <= 1 - gateway errors / requests = %.4f\n", a.availability,
              availability_max);
  CHECK(a.availability <= availability_max + 1e-12);
  CHECK(a.availability == Approx(static_cast<double>(a.good) / a.requests));
}

// ---------------------------------------------------------------------------------------
// 3. RPO: the Redis primary SIGKILLed under session writes.
//
// Witnesses: /proc (the primary's pid died), the topology (another node is primary after),
// the gateway's SessionService counter (Append answered OK = acknowledged), and the record's
// own data: RPO is recomputed here from its writes and read-back alone.
struct RpoWitness {
  uint64_t acked = 0;
  uint64_t acked_after_kill = 0;  // acknowledged once the kill was confirmed
  std::map<std::string, std::set<int64_t>> read_back;
  std::map<std::string, std::vector<const reports::WriteRecord*>> acked_by_session;  // seq order
  std::vector<const reports::WriteRecord*> lost;  // acknowledged, not read back
};
RpoWitness Recompute(const RunRecord& r, int64_t kill_ns) {
  RpoWitness w;
  for (const auto& [session, seqs] : r.read_back)
    w.read_back[session].insert(seqs.begin(), seqs.end());
  for (const reports::WriteRecord& wr : r.writes) {
    if (!wr.ack_ns) continue;
    ++w.acked;
    if (*wr.ack_ns > kill_ns) ++w.acked_after_kill;
    w.acked_by_session[wr.session].push_back(&wr);
    if (!w.read_back[wr.session].count(wr.seq)) w.lost.push_back(&wr);
  }
  for (auto& [session, list] : w.acked_by_session) {
    std::sort(list.begin(), list.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
  }
  return w;
}

// The store part shared by the sync and async drills: the kill, the failover, the gateway's
// count of acknowledged appends. Returns when the old primary was seen dead (drill time).
int64_t CheckStoreKill(const ChildRun& run, const DrillObserver& obs,
                       const reference::Topology& at_start, int64_t origin,
                       const std::string& kill_fault) {
  const RunRecord& r = run.record;
  const reports::FaultEvent* kill = nullptr;
  for (const auto& f : r.faults) {
    if (f.name == kill_fault) kill = &f;
  }
  REQUIRE(kill != nullptr);
  REQUIRE_FALSE(kill->inject_failed);
  const pid_t victim = PidIn(kill->target);
  const reference::RoleInfo& primary = at_start.roles.at("store.primary");
  std::printf("  kill: %s at %.1f ms; primary at the start: %s pid %d\n", kill->target.c_str(),
              Ms(kill->injected_ns), primary.node.c_str(), primary.pid);
  CHECK(victim == primary.pid);
  std::optional<StateChange> death;
  for (const StateChange& c : obs.changes(victim)) {
    if (c.to == 0) death = c;
  }
  REQUIRE(death);
  std::printf("  /proc: pid %d died in (%.1f, %.1f] ms\n", victim, Ms(death->last_old_ns - origin),
              Ms(death->first_new_ns - origin));
  auto after = obs.topology();
  REQUIRE(after);
  std::printf("  primary at the end: %s pid %d\n", after->roles.at("store.primary").node.c_str(),
              after->roles.at("store.primary").pid);
  CHECK(after->roles.at("store.primary").node != primary.node);

  // The gateway's count of acknowledged appends brackets the client's.
  std::vector<Scrape> scrapes = obs.scrapes();
  REQUIRE(scrapes.size() > 10);
  const Scrape& a = scrapes.front();
  const Scrape& b = scrapes.back();
  const std::map<std::string, std::string> ok = {{"method", "Append"}, {"code", "OK"}};
  const double gw_acked = b.Sum("chaosdrill_gateway_session_requests_total", ok) -
                          a.Sum("chaosdrill_gateway_session_requests_total", ok);
  const double gw_appends =
      b.Sum("chaosdrill_gateway_session_requests_total", {{"method", "Append"}}) -
      a.Sum("chaosdrill_gateway_session_requests_total", {{"method", "Append"}});
  uint64_t inside = 0, maybe = 0;
  for (const reports::WriteRecord& w : r.writes) {
    if (w.ack_ns && w.sent_ns + origin >= a.after_ns && *w.ack_ns + origin <= b.before_ns) ++inside;
    if (w.sent_ns + origin <= b.after_ns && (!w.ack_ns || *w.ack_ns + origin >= a.before_ns)) {
      ++maybe;
    }
  }
  std::printf(
      "  gateway SessionService: Append +%.0f, OK +%.0f; client acks surely inside the scrapes "
      "%llu, writes possibly %llu\n",
      gw_appends, gw_acked, static_cast<unsigned long long>(inside),
      static_cast<unsigned long long>(maybe));
  CHECK(inside <= gw_acked);
  CHECK(gw_acked <= maybe);
  return death->first_new_ns - origin;
}

TEST_CASE("ground truth: Redis primary killed with sync replication loses nothing (RPO 0)",
          "[integration][ground-truth][rpo][slow]") {
  if (!Ready()) return;
  TempDir dir;
  const std::string binary = Binary(dir);
  const std::string file = dir.Write(
      "primary-kill-sync.yaml",
      "apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: gt-primary-kill-sync}\n"
      "target: {reference: {replicas: 1, replication: sync, model: {width: 32, depth: 2}}}\n"
      "load: {rate: 50/s, timeout: 2s, good_latency: 200ms}\n"
      "writes: {rate: 200/s, sessions: 8, payload_size: 64B}\n"
      "steady_state: {success_ratio: 0.9}\n"
      "phases: {baseline: 3s, observe: 12s, hold: 2s}\n"
      "faults:\n"
      "  - {name: kill-primary, kind: process.kill, at: 5s, target: {role: store.primary}}\n"
      "slo: {rpo: 0}\n");
  DrillObserver obs(dir.path() + "/reports");
  ChildRun run = RunChild(dir, binary, file, absl::Seconds(150));
  obs.Stop();
  std::optional<reference::Topology> start = obs.first_topology();
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CheckSchema(run.record_path);
  const RunRecord& r = run.record;
  REQUIRE(start);
  auto origin = DrillOrigin(dir.path() + "/events.jsonl");
  REQUIRE(origin);
  const int64_t dead_ns = CheckStoreKill(run, obs, *start, *origin, "kill-primary");

  REQUIRE(r.verified);
  REQUIRE(r.analysis.rpo.has_value());
  const reports::RpoResult& rpo = *r.analysis.rpo;
  RpoWitness w = Recompute(r, dead_ns);
  std::printf(
      "  record: %llu writes, %llu acknowledged (%llu after the kill), lost %llu, ambiguous "
      "%llu, duplicated %llu, reordered %llu; recomputed: %llu acknowledged, %zu lost\n",
      static_cast<unsigned long long>(rpo.writes),
      static_cast<unsigned long long>(rpo.acknowledged),
      static_cast<unsigned long long>(w.acked_after_kill),
      static_cast<unsigned long long>(rpo.lost), static_cast<unsigned long long>(rpo.ambiguous),
      static_cast<unsigned long long>(rpo.duplicated),
      static_cast<unsigned long long>(rpo.reordered), static_cast<unsigned long long>(w.acked),
      w.lost.size());
  CHECK(rpo.writes == r.writes.size());
  CHECK(rpo.acknowledged == w.acked);
  CHECK(rpo.lost == 0);
  CHECK(rpo.lost_writes.empty());
  CHECK(w.lost.empty());
  CHECK(rpo.rpo_ns == 0);
  // Not vacuous: writes went on through the new primary after the kill.
  CHECK(w.acked_after_kill > 100);
  // Everything read back was written (by this drill's writer).
  std::set<std::pair<std::string, int64_t>> written;
  for (const auto& wr : r.writes) written.insert({wr.session, wr.seq});
  size_t unknown = 0;
  for (const auto& [session, seqs] : r.read_back) {
    for (int64_t seq : seqs) unknown += written.count({session, seq}) == 1 ? 0 : 1;
  }
  CHECK(unknown == 0);
}

// Async replication, the replica's link slowed to 16 KiB/s (role store.link, a proxy the
// runner holds) under 200 writes/s of 1 KiB, then the primary SIGKILLed: acknowledged writes
// the replica never received are lost. The record's lost entries must be exactly the
// acknowledged entries missing from its read-back (recomputed here), and, per session, a
// contiguous run of the acknowledged sequence acknowledged before the old primary died,
// with every later acknowledged entry (the new primary's) kept.
TEST_CASE("ground truth: Redis primary killed with async replication over a slowed link",
          "[integration][ground-truth][rpo][slow]") {
  if (!Ready()) return;
  TempDir dir;
  const std::string binary = Binary(dir);
  const std::string file = dir.Write(
      "primary-kill-async.yaml",
      "apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: gt-primary-kill-async}\n"
      "target: {reference: {replicas: 1, replication: async, model: {width: 32, depth: 2}}}\n"
      "load: {rate: 50/s, timeout: 2s, good_latency: 200ms}\n"
      "writes: {rate: 200/s, sessions: 16, payload_size: 1KiB}\n"
      "steady_state: {success_ratio: 0.9}\n"
      "phases: {baseline: 3s, observe: 13s, hold: 2s}\n"
      "faults:\n"
      "  - {name: slow-link, kind: proxy.bandwidth, at: 4s, duration: 10s, "
      "target: {role: store.link}, rate: 16KiB/s}\n"
      "  - {name: kill-primary, kind: process.kill, at: 8s, target: {role: store.primary}}\n"
      "slo: {rpo: 0}\n");
  DrillObserver obs(dir.path() + "/reports");
  ChildRun run = RunChild(dir, binary, file, absl::Seconds(150));
  obs.Stop();
  INFO(run.output);
  CHECK(run.exit_code == 1);  // the rpo: 0 SLO fails, and only that
  CheckSchema(run.record_path);
  const RunRecord& r = run.record;
  std::optional<reference::Topology> start = obs.first_topology();
  REQUIRE(start);
  auto origin = DrillOrigin(dir.path() + "/events.jsonl");
  REQUIRE(origin);
  // The link fault went on the link in front of the primary.
  REQUIRE(r.faults.size() == 2);
  REQUIRE(start->roles.count("store.link"));
  std::printf("  slow-link: %s at %.1f ms (store.link at the start: %s -> %s)\n",
              r.faults[0].target.c_str(), Ms(r.faults[0].injected_ns),
              start->roles.at("store.link").address.c_str(),
              start->roles.at("store.link").upstream.c_str());
  REQUIRE_FALSE(r.faults[0].inject_failed);
  CHECK_THAT(r.faults[0].target, Catch::Contains(start->roles.at("store.link").address) &&
                                     Catch::Contains(start->roles.at("store.primary").address));
  // Between the old primary's death and the promotion of the replica (the sentinels wait
  // down-after-milliseconds, 1 s, first) nothing can be acknowledged: every ack is the old
  // primary's (before the boundary) or the new one's (after it). 300 ms after the death
  // leaves room for an old acknowledgement still on its way through the gateway.
  const int64_t dead_ns = CheckStoreKill(run, obs, *start, *origin, "kill-primary");
  const int64_t boundary = dead_ns + 300 * kMs;
  for (const auto& v : r.analysis.slos) {
    std::printf("  slo %s: %s (target %s, measured %s)\n", v.name.c_str(),
                v.pass ? "met" : "FAILED", v.target.c_str(), v.measured.c_str());
    CHECK(v.pass == (v.name != "rpo"));
  }

  REQUIRE(r.verified);
  REQUIRE(r.analysis.rpo.has_value());
  const reports::RpoResult& rpo = *r.analysis.rpo;
  RpoWitness w = Recompute(r, boundary);
  int64_t last_old = 0, first_new = std::numeric_limits<int64_t>::max();
  for (const auto& wr : r.writes) {
    if (!wr.ack_ns) continue;
    if (*wr.ack_ns <= boundary) last_old = std::max(last_old, *wr.ack_ns);
    if (*wr.ack_ns > boundary) first_new = std::min(first_new, *wr.ack_ns);
  }
  std::printf(
      "  acknowledgements: last before the boundary %.1f ms (death + %.1f), first after "
      "%.1f ms (death + %.1f)\n",
      Ms(last_old), Ms(last_old - dead_ns), Ms(first_new), Ms(first_new - dead_ns));
  CHECK(first_new - dead_ns >= 500 * kMs);  // the new primary's, not a late old one
  std::printf(
      "  record: %llu writes, %llu acknowledged (%llu after the kill), lost %llu, RPO %.1f ms, "
      "ambiguous %llu, duplicated %llu, reordered %llu; recomputed: %zu lost\n",
      static_cast<unsigned long long>(rpo.writes),
      static_cast<unsigned long long>(rpo.acknowledged),
      static_cast<unsigned long long>(w.acked_after_kill),
      static_cast<unsigned long long>(rpo.lost), Ms(rpo.rpo_ns),
      static_cast<unsigned long long>(rpo.ambiguous),
      static_cast<unsigned long long>(rpo.duplicated),
      static_cast<unsigned long long>(rpo.reordered), w.lost.size());
  CHECK(rpo.acknowledged == w.acked);
  CHECK(rpo.lost > 0);
  // Exactly the acknowledged-but-missing entries.
  std::set<std::pair<std::string, int64_t>> reported, recomputed;
  for (const auto& l : rpo.lost_writes) reported.insert({l.session, l.seq});
  for (const auto* l : w.lost) recomputed.insert({l->session, l->seq});
  CHECK(rpo.lost == rpo.lost_writes.size());
  CHECK(reported == recomputed);
  int64_t first_ack = std::numeric_limits<int64_t>::max(), last_ack = 0;
  for (const auto& l : rpo.lost_writes) {
    REQUIRE(l.ack_ns.has_value());
    first_ack = std::min(first_ack, *l.ack_ns);
    last_ack = std::max(last_ack, *l.ack_ns);
  }
  CHECK(rpo.rpo_ns == last_ack - first_ack + r.write_interval_ns);
  // Per session: a contiguous run of the acknowledged sequence, acknowledged before the
  // kill was confirmed (the old primary's), everything acknowledged after it kept.
  int sessions_with_loss = 0, bad_runs = 0, late_lost = 0;
  for (const auto& [session, acked] : w.acked_by_session) {
    size_t first = acked.size(), last = 0, n = 0;
    for (size_t i = 0; i < acked.size(); ++i) {
      if (!recomputed.count({session, acked[i]->seq})) continue;
      first = std::min(first, i);
      last = i;
      ++n;
      if (*acked[i]->ack_ns > boundary) ++late_lost;
    }
    if (n == 0) continue;
    ++sessions_with_loss;
    const bool contiguous = last - first + 1 == n;
    if (!contiguous) ++bad_runs;
    bool rest_after_kill = true;
    for (size_t i = last + 1; i < acked.size(); ++i) {
      rest_after_kill = rest_after_kill && *acked[i]->ack_ns > boundary;
    }
    if (!rest_after_kill) ++bad_runs;
    if (sessions_with_loss <= 3) {
      std::printf("  %s: lost seq %lld..%lld (%zu of %zu acknowledged), acked %.1f..%.1f ms\n",
                  session.c_str(), static_cast<long long>(acked[first]->seq),
                  static_cast<long long>(acked[last]->seq), n, acked.size(),
                  Ms(*acked[first]->ack_ns), Ms(*acked[last]->ack_ns));
    }
  }
  std::printf(
      "  %d sessions lost a tail of the old primary's stream; lost acks %.1f..%.1f ms (link "
      "slowed at %.1f, primary dead by %.1f ms)\n",
      sessions_with_loss, Ms(first_ack), Ms(last_ack), Ms(r.faults[0].injected_ns), Ms(dead_ns));
  CHECK(bad_runs == 0);
  CHECK(late_lost == 0);
  CHECK(w.acked_after_kill > 0);
}

// ---------------------------------------------------------------------------------------
// 4. An abort condition that trips reverts every fault within 200 ms.
//
// Two faults are active when the abort trips: the only replica paused (which makes the
// good ratio 0) and sentinel[0] paused (harmless, a second fault to revert). Witness: both
// processes' /proc state, polled from here, goes from T back to running; the abort's time
// is its --events line's monotonic_ns (read when the abort is decided, before any revert).
// The poll brackets each resumption in (lo, hi]; the checks are hi > 0 (not resumed before
// the abort) and lo <= 200 ms (the witness cannot place it later than that; hi - lo, the
// poll's own resolution, is printed).
TEST_CASE("ground truth: a tripped abort reverts every fault within 200 ms, exit 3",
          "[integration][ground-truth][abort][slow]") {
  if (!Ready()) return;
  TempDir dir;
  const std::string binary = Binary(dir);
  const std::string file =
      dir.Write("abort.yaml",
                "apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: gt-abort}\n"
                "target: {reference: {replicas: 1, model: {width: 32, depth: 2}}}\n"
                "load: {rate: 100/s, timeout: 1s, good_latency: 200ms}\n"
                "steady_state: {success_ratio: 0.9}\n"
                "phases: {baseline: 3s, observe: 22s, hold: 1s}\n"
                "faults:\n"
                "  - {name: hang, kind: process.pause, at: 4s, duration: 20s, "
                "target: {role: \"replica[0]\"}, allow_majority: true}\n"
                "  - {name: hang-sentinel, kind: process.pause, at: 4s, duration: 20s, "
                "target: {role: \"sentinel[0]\"}}\n"
                "abort:\n  - {success_ratio_below: 0.5, for: 2s}\n");
  DrillObserver obs(dir.path() + "/reports");
  ChildRun run = RunChild(dir, binary, file, absl::Seconds(120));
  obs.Stop();
  INFO(run.output);
  CHECK(run.exit_code == 3);
  CheckSchema(run.record_path);
  const RunRecord& r = run.record;
  CHECK_FALSE(r.in_progress);
  CHECK(r.exit_status == ExitStatus::kAborted);
  CHECK_THAT(r.exit_reason, Catch::Contains("aborted"));
  const std::string events = dir.path() + "/events.jsonl";
  auto abort = FindEvent(events, "abort");
  REQUIRE(abort);
  auto origin = DrillOrigin(events);
  REQUIRE(origin);
  const int64_t abort_mono = abort->at("monotonic_ns").get<int64_t>();
  std::printf("  abort at %.1f ms: %s\n", Ms(abort_mono - *origin),
              abort->value("message", "").c_str());
  REQUIRE(r.faults.size() == 2);
  for (const reports::FaultEvent& f : r.faults) {
    REQUIRE_FALSE(f.inject_failed);
    const pid_t pid = PidIn(f.target);
    auto pause = FindPause(obs.changes(pid));
    INFO(f.name << " " << f.target);
    REQUIRE(pause);
    const int64_t lo = pause->cont.last_old_ns - abort_mono;
    const int64_t hi = pause->cont.first_new_ns - abort_mono;
    std::printf(
        "  %s (pid %d): injected %.1f ms, stopped by /proc in (%.1f, %.1f] ms, running again "
        "(%.1f, %.1f] ms after the abort, record: reverted %.1f ms after it\n",
        f.name.c_str(), pid, Ms(f.injected_ns), Ms(pause->stop.last_old_ns - *origin),
        Ms(pause->stop.first_new_ns - *origin), Ms(lo), Ms(hi),
        Ms(f.reverted_ns.value_or(0) - (abort_mono - *origin)));
    CHECK(hi > 0);  // after the abort (the 20 s duration was far away), not before it
    CHECK(lo <= 200 * kMs);
    REQUIRE(f.reverted_ns.has_value());
    CHECK(*f.reverted_ns - (abort_mono - *origin) <= 200 * kMs);
    // The abort can only trip once the condition held for `for` (2 s) after the injection.
    CHECK(abort_mono - *origin >= f.injected_ns + 2'000 * kMs);
  }
}

// ---------------------------------------------------------------------------------------
// 5. SIGINT to `chaosdrill run` mid-drill, during a pause: exit 3, no fault left, no child
// process left, and the record written.
//
// Witnesses: a process of this test paused by the drill (target agent local, pid) must be
// running again after the runner exits (it outlives the drill, so "no fault left" is
// checked after the fact, not only during the shutdown); the paused replica went from T
// back to running before it was stopped; every process seen as a descendant of the runner
// during the drill (polled from /proc every 100 ms) is gone, and no process's command line
// mentions the test's directory (reference dir, agent socket) or is a `chaosdrill agent`
// started from it.
TEST_CASE("ground truth: SIGINT mid-pause leaves no fault and no process, writes the record",
          "[integration][ground-truth][signal][slow]") {
  if (!Ready()) return;
  TempDir dir;
  const std::string binary = Binary(dir);
  pid_t sleeper = fork();
  if (sleeper == 0) {
    execl("/bin/sleep", "sleep", "300", static_cast<char*>(nullptr));
    _exit(127);
  }
  REQUIRE(sleeper > 0);
  struct Reap {
    pid_t pid;
    ~Reap() {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } reap{sleeper};
  const std::string file = dir.Write(
      "sigint.yaml",
      absl::StrCat("apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: gt-sigint}\n"
                   "target: {reference: {replicas: 2, model: {width: 32, depth: 2}}}\n"
                   "load: {rate: 100/s, timeout: 1s, good_latency: 200ms}\n"
                   "writes: {rate: 20/s}\n"
                   "steady_state: {success_ratio: 0.9}\n"
                   "phases: {baseline: 3s, observe: 25s, hold: 1s}\n"
                   "faults:\n"
                   "  - {name: hang, kind: process.pause, at: 4s, duration: 20s, "
                   "target: {role: \"replica[0]\"}}\n"
                   "  - {name: hang-mine, kind: process.pause, at: 4s, duration: 20s, "
                   "target: {agent: local}, pid: ",
                   sleeper, "}\n"));
  const std::string reports_dir = dir.path() + "/reports";
  const std::string events = dir.path() + "/events.jsonl";
  std::unique_ptr<DrillObserver> obs;
  int rc = -1;
  int64_t sent = 0;
  pid_t replica = -1;
  std::string output;
  {
    RunnerProcess runner(
        dir.path(), {file, "--report-dir", reports_dir, "--progress", "plain", "--events", events},
        binary);
    obs = std::make_unique<DrillObserver>(reports_dir, runner.pid());
    obs->Watch(sleeper);
    // Both faults on: their inject events, and /proc says both are stopped.
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      auto a = FindEvent(events, "inject", "hang");
      auto b = FindEvent(events, "inject", "hang-mine");
      if (a && b) {
        replica = PidIn(a->value("message", ""));
        auto ra = Stat(replica);
        auto rb = Stat(sleeper);
        if (ra && rb && ra->state == 'T' && rb->state == 'T') break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    INFO(runner.err());
    REQUIRE(replica > 0);
    REQUIRE(Stat(replica)->state == 'T');
    REQUIRE(Stat(sleeper)->state == 'T');
    // Ctrl-C on a terminal signals the foreground process group: the runner's.
    kill(-runner.pid(), SIGINT);
    sent = MonoNs();
    rc = runner.Wait(absl::Seconds(60));
    output = runner.out() + runner.err();
  }
  const int64_t exited = MonoNs();
  INFO(output);
  std::printf("\n== SIGINT: runner exited %.0f ms after the signal, exit %d\n", Ms(exited - sent),
              rc);
  CHECK(rc == 3);
  // No fault left: the test's own process runs again, now that the runner is gone.
  auto st = Stat(sleeper);
  REQUIRE(st);
  CHECK(st->state != 'T');
  auto mine = FindPause(obs->changes(sleeper));
  CHECK(mine.has_value());
  // The replica was resumed before the service was stopped.
  auto resumed = FindPause(obs->changes(replica));
  REQUIRE(resumed);
  std::printf("  replica pid %d running again (%.0f, %.0f] ms after SIGINT; my sleeper %d: %c\n",
              replica, Ms(resumed->cont.last_old_ns - sent), Ms(resumed->cont.first_new_ns - sent),
              sleeper, st->state);
  CHECK(resumed->cont.to != 0);  // resumed, not killed while stopped

  // No process left: every descendant seen during the drill is gone (waiting a little for
  // the kernel to finish the deaths), and none mentions the test's directory.
  std::map<pid_t, uint64_t> seen = obs->descendants();
  obs->Stop();
  std::vector<std::string> left;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    left.clear();
    for (const auto& [pid, info] : AllProcesses()) {
      if (pid == getpid() || pid == sleeper || info.state == 'Z') continue;
      auto it = seen.find(pid);
      const std::string cmd = Cmdline(pid);
      if ((it != seen.end() && it->second == info.start_ticks) ||
          cmd.find(dir.path()) != std::string::npos) {
        left.push_back(absl::StrCat(pid, ": ", cmd));
      }
    }
    if (left.empty()) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  std::printf("  %zu descendants of the runner seen during the drill; left after exit: %zu\n",
              seen.size(), left.size());
  for (const auto& l : left) UNSCOPED_INFO(l);
  CHECK(seen.size() >= 8);  // agent, 2 redis, 3 sentinels, 2 replicas, gateway
  CHECK(left.empty());

  // The record is written, final, and says why it stopped.
  auto path = RecordIn(reports_dir);
  REQUIRE(path);
  CheckSchema(*path);
  auto r = reports::ReadRunRecord(*path);
  REQUIRE(r.ok());
  CHECK_FALSE(r->in_progress);
  CHECK(r->exit_status == ExitStatus::kAborted);
  CHECK_THAT(r->exit_reason, Catch::Contains("interrupted by a signal"));
  REQUIRE(r->faults.size() == 2);
  for (const auto& f : r->faults) CHECK(f.reverted_ns.has_value());
  CHECK_FALSE(r->requests.empty());
}

}  // namespace
}  // namespace chaosdrill::integration
