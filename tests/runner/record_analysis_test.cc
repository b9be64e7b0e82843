// runner::AnalyzeRecord, the analysis the drill ends with and `report --merge` repeats: the
// scenario's settings reach Analyze, the alert verdicts come from the record's probe
// series, and the error budget scales with the load factor. And the steady-state
// statistic (SteadyStateOf) is the one the analysis reports as the baseline p99.
#include "runner/record_analysis.h"

#include <catch2/catch.hpp>

#include "runner/probe_analysis.h"

namespace chaosdrill::runner {
namespace {

using reports::RequestRecord;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000 * kMs;

// 100 rps for 30 s, baseline 10 s, down 10.0-12.0 s; kill-one confirmed at 10 s; an alert
// probe sampled every second that fires from 14 s on.
reports::RunRecord Record() {
  reports::RunRecord r;
  r.request_interval_ns = 10 * kMs;
  r.phases = {.baseline_end_ns = 10 * kS, .faults_end_ns = 10 * kS, .observe_end_ns = 30 * kS};
  for (int64_t t = 0; t < r.phases.observe_end_ns; t += r.request_interval_ns) {
    RequestRecord q{.intended_ns = t, .sent_ns = t, .completed_ns = t + 5 * kMs};
    if (t >= 10 * kS && t < 12 * kS) q.code = 14;
    r.requests.push_back(q);
  }
  r.faults = {{.name = "kill-one", .kind = "process.kill", .injected_ns = 10 * kS}};
  reports::ProbeSeries alert{.name = "down-alert",
                             .kind = "alert",
                             .every_ns = 1 * kS,
                             .alert = "ReplicaDown",
                             .within_ns = 5 * kS};
  for (int64_t k = 0; k < 30; ++k) {
    alert.samples.push_back({.t_ns = k * kS, .ok = k < 14, .value = k < 14 ? 0.0 : 1.0});
  }
  r.probes = {alert};
  return r;
}

scenarios::Scenario TheScenario() {
  scenarios::Scenario s;
  s.load.rate = 100;
  s.load.good_latency = absl::Milliseconds(100);
  s.phases.hold = absl::Seconds(1);
  s.slo.rto = absl::Seconds(3);
  s.slo.availability = 0.95;
  s.slo.error_budget =
      scenarios::ErrorBudget{.objective = 0.999, .window = absl::Hours(1), .max_consumed = 0.5};
  return s;
}

TEST_CASE("AnalyzeRecord: the scenario's settings, then the alert verdicts of the record",
          "[runner][analysis][probes]") {
  const reports::RunRecord r = Record();
  const scenarios::Scenario s = TheScenario();
  const AnalysisInput in = AnalysisInputFor(s, r);
  CHECK(in.hold_ns == 1 * kS);
  CHECK(in.good_latency_ns == 100 * kMs);
  CHECK(in.slo.rto_ns == 3 * kS);
  CHECK(in.slo.error_budget_requests == Approx(0.001 * 100 * 3600));  // 360 requests
  CHECK(AnalysisInputFor(s, r, 2).slo.error_budget_requests == Approx(720));

  const reports::AnalysisResult a = AnalyzeRecord(s, r);
  // Exactly Analyze followed by AddProbeVerdicts.
  reports::AnalysisResult expected = Analyze(in);
  AddProbeVerdicts(r.probes, r.faults, expected);
  CHECK(a == expected);
  REQUIRE(a.faults.size() == 1);
  CHECK(a.faults[0].rto_ns == 2 * kS);
  REQUIRE(a.alerts.size() == 1);
  CHECK(a.alerts[0].detect_ns == 4 * kS);
  CHECK(a.alerts[0].pass);
  std::vector<std::string> names;
  for (const reports::SloVerdict& v : a.slos) names.push_back(v.name + (v.pass ? "" : " FAIL"));
  // 200 bad of 2000: availability 0.9 < 0.95; 200 / 360 = 56 % of the budget > 50 %.
  CHECK(names == std::vector<std::string>{"rto[kill-one]", "availability FAIL", "error_budget FAIL",
                                          "alert[ReplicaDown after kill-one]"});
  std::optional<std::string> failed = SloFailure(a);
  REQUIRE(failed.has_value());
  CHECK_THAT(*failed, Catch::StartsWith("SLO failed: availability: 200 of 2000 requests") &&
                          Catch::Contains("; error_budget: "));
  reports::AnalysisResult met = a;
  met.slos_met = true;
  CHECK_FALSE(SloFailure(met).has_value());
}

TEST_CASE("the steady-state statistic is the analysis's baseline p99 and good latency",
          "[runner][analysis]") {
  // Baseline 10 s: the warm-up second answers in 900 ms, a burst of UNAVAILABLE at 5 s,
  // answers of 10 ms otherwise, and every 50th in 40 ms (17 of the 880 ok ones).
  reports::RunRecord r = Record();
  for (RequestRecord& q : r.requests) {
    if (q.intended_ns >= r.phases.baseline_end_ns) break;
    const int64_t i = q.intended_ns / r.request_interval_ns;
    q.completed_ns = q.intended_ns + (q.intended_ns < 1 * kS ? 900 : i % 50 == 0 ? 40 : 10) * kMs;
    if (q.intended_ns >= 5 * kS && q.intended_ns < 5'200 * kMs) q.code = 14;
  }
  scenarios::Scenario s = TheScenario();
  s.load.good_latency.reset();
  const SteadyStateStats ss = SteadyStateOf(r.requests, r.phases.baseline_end_ns, std::nullopt);
  CHECK(ss.requests == 900);  // [1 s, 10 s)
  CHECK(ss.ok == 880);
  CHECK(ss.ok_p50_ns == Approx(10 * kMs).epsilon(0.01));
  CHECK(ss.ok_p99_ns == Approx(40 * kMs).epsilon(0.01));
  CHECK(ss.good_latency_ns == 5 * ss.ok_p99_ns);
  CHECK(ss.good == 880);
  const reports::AnalysisResult a = AnalyzeRecord(s, r);
  CHECK(a.baseline_p99_ns == ss.ok_p99_ns);
  CHECK(a.good_latency_ns == ss.good_latency_ns);
  CHECK(BaselineP99(r.requests, r.phases.baseline_end_ns) == ss.ok_p99_ns);
  // An explicit good_latency is used as given, for the good count too.
  const SteadyStateStats tight = SteadyStateOf(r.requests, r.phases.baseline_end_ns, 20 * kMs);
  CHECK(tight.good_latency_ns == 20 * kMs);
  CHECK(tight.good == 880 - 17);  // the 40 ms answers are too slow
  CHECK(tight.ok_p99_ns == ss.ok_p99_ns);
}

}  // namespace
}  // namespace chaosdrill::runner
