// Analysis on synthetic request logs whose answers are computed by hand (the worked
// examples of docs/measurements.md). Load is 100 rps (one request every 10 ms) unless a
// case says otherwise; every latency is 5 ms unless a case marks requests otherwise.
#include "runner/analysis.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <functional>
#include <limits>

namespace chaosdrill::runner {
namespace {

using reports::FaultEvent;
using reports::RequestRecord;
using reports::WriteRecord;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000 * kMs;

// A drill: baseline 0..10 s, observe until `end_s`, hold 1 s, ratio 0.99.
struct Drill {
  AnalysisInput in;

  explicit Drill(double end_s = 30) {
    in.request_interval_ns = 10 * kMs;
    in.phases = {.baseline_end_ns = 10 * kS,
                 .faults_end_ns = 20 * kS,
                 .observe_end_ns = static_cast<int64_t>(end_s * kS)};
    in.hold_ns = 1 * kS;
    in.recovery_ratio = 0.99;
    in.good_latency_ns = 100 * kMs;
    for (int64_t t = 0; t < in.phases.observe_end_ns; t += in.request_interval_ns) {
      in.requests.push_back({.intended_ns = t, .sent_ns = t, .completed_ns = t + 5 * kMs});
    }
  }
  // Marks requests intended in [from_s, to_s) with `mark`.
  Drill& Mark(double from_s, double to_s, const std::function<void(RequestRecord&)>& mark) {
    for (RequestRecord& r : in.requests) {
      if (r.intended_ns >= std::llround(from_s * kS) && r.intended_ns < std::llround(to_s * kS)) {
        mark(r);
      }
    }
    return *this;
  }
  Drill& Fail(double from_s, double to_s) {
    return Mark(from_s, to_s, [](RequestRecord& r) { r.code = 14; });  // UNAVAILABLE
  }
  // A fault confirmed at `injected_s`; with `reverted_s`, one with a duration reverted then.
  Drill& Fault(std::string name, double injected_s, std::optional<double> reverted_s = {}) {
    FaultEvent f{.name = std::move(name), .kind = "process.kill"};
    f.injected_ns = std::llround(injected_s * kS);
    if (reverted_s) {
      f.reverted_ns = std::llround(*reverted_s * kS);
      f.duration_ns = *f.reverted_ns - f.injected_ns;
    }
    in.faults.push_back(f);
    return *this;
  }
  // Adds one request (Poisson arrivals put them anywhere), keeping the log sorted.
  Drill& Add(double intended_s, uint8_t code) {
    RequestRecord q{.intended_ns = std::llround(intended_s * kS), .code = code};
    q.sent_ns = q.intended_ns;
    q.completed_ns = q.intended_ns + 5 * kMs;
    in.requests.insert(std::upper_bound(in.requests.begin(), in.requests.end(), q,
                                        [](const RequestRecord& a, const RequestRecord& b) {
                                          return a.intended_ns < b.intended_ns;
                                        }),
                       q);
    return *this;
  }
  reports::AnalysisResult Run() const { return Analyze(in); }
};

TEST_CASE("a fault that hurts nobody has no impact and RTO 0", "[runner][analysis]") {
  auto r = Drill().Fault("kill", 10).Run();
  REQUIRE(r.faults.size() == 1);
  CHECK_FALSE(r.faults[0].impact);
  CHECK(r.faults[0].recovered);
  CHECK(r.faults[0].rto_ns == 0);
  CHECK(r.availability == 1.0);
}

TEST_CASE("a clean outage: RTO is the first good request of a sustained recovery",
          "[runner][analysis]") {
  // Requests intended in [10.0 s, 11.5 s) fail: 150 requests. The first good one is 11.5 s.
  auto r = Drill().Fail(10.0, 11.5).Fault("kill", 10.0).Run();
  const auto& f = r.faults.at(0);
  CHECK(f.impact);
  CHECK(f.impact_ns == 10 * kS);
  CHECK(f.time_to_impact_ns == 0);
  CHECK(f.recovered);
  CHECK(f.recovered_ns == 11'500 * kMs);
  CHECK(f.rto_ns == 1'500 * kMs);
  CHECK(f.outage_ns == 1'500 * kMs);
  CHECK(f.failed_requests == 150);
  // Measured window 10 s..30 s: 2000 requests, 150 bad.
  CHECK(r.requests == 2000);
  CHECK(r.good == 1850);
  CHECK(r.availability == Approx(0.925));
}

TEST_CASE("impact up to one interval before the confirmed inject time belongs to the fault",
          "[runner][analysis]") {
  // The agent confirms at 10.005 s; the request intended at 10.000 s was in flight and failed.
  auto r = Drill().Fail(10.0, 11.0).Fault("kill", 10.005).Run();
  const auto& f = r.faults.at(0);
  CHECK(f.impact_ns == 10 * kS);
  CHECK(f.time_to_impact_ns == 0);
  CHECK(f.rto_ns == 11 * kS - 10'005 * kMs);
}

TEST_CASE("a bad request more than one interval before injection is not the fault's impact",
          "[runner][analysis]") {
  auto r = Drill().Fail(9.98, 9.99).Fail(10.5, 11.0).Fault("kill", 10.0).Run();
  const auto& f = r.faults.at(0);
  CHECK(f.impact_ns == 10'500 * kMs);
  CHECK(f.time_to_impact_ns == 500 * kMs);
  CHECK(f.rto_ns == 1 * kS);
  CHECK(f.outage_ns == 500 * kMs);
}

TEST_CASE("an outage that lasts to the end of observation is unrecovered", "[runner][analysis]") {
  Drill d;
  d.in.slo.rto_ns = 3 * kS;
  auto r = d.Fail(10.0, 30.0).Fault("kill", 10.0).Run();
  const auto& f = r.faults.at(0);
  CHECK(f.impact);
  CHECK_FALSE(f.recovered);
  CHECK(f.failed_requests == 2000);
  REQUIRE(r.slos.size() == 1);
  CHECK(r.slos[0].name == "rto[kill]");
  CHECK(r.slos[0].measured == "unrecovered");
  CHECK_FALSE(r.slos[0].pass);
  CHECK_FALSE(r.slos_met);
}

TEST_CASE("recovery too close to the end of observation to confirm is unrecovered",
          "[runner][analysis]") {
  // Good again at 29.5 s, but a 1 s hold window cannot be observed before 30 s.
  auto r = Drill().Fail(10.0, 29.5).Fault("kill", 10.0).Run();
  CHECK_FALSE(r.faults.at(0).recovered);
}

TEST_CASE("a brief return that does not hold is not recovery", "[runner][analysis]") {
  // Down 10-11 s, up 11-11.5 s, down again 11.5-12 s, then up for good: t_r = 12 s.
  auto r = Drill().Fail(10.0, 11.0).Fail(11.5, 12.0).Fault("kill", 10.0).Run();
  const auto& f = r.faults.at(0);
  CHECK(f.recovered_ns == 12 * kS);
  CHECK(f.rto_ns == 2 * kS);
  CHECK(f.failed_requests == 150);
}

TEST_CASE("flapping after recovery: one stray error is tolerated, two in a hold window are not",
          "[runner][analysis]") {
  SECTION("99 of 100 good in every window: recovered at 12 s") {
    auto r = Drill().Fail(10.0, 12.0).Fail(13.0, 13.01).Fault("kill", 10.0).Run();
    CHECK(r.faults.at(0).recovered_ns == 12 * kS);
  }
  SECTION("98 of 100 in the windows starting in (12.01 s, 13.0 s]: recovery moves past them") {
    // Bad at 13.000 and 13.010. The last failing window starts at 13.000; 13.010 is bad, so the
    // first good request after which every window holds is 13.020.
    auto r = Drill().Fail(10.0, 12.0).Fail(13.0, 13.02).Fault("kill", 10.0).Run();
    CHECK(r.faults.at(0).recovered_ns == 13'020 * kMs);
    CHECK(r.faults.at(0).rto_ns == 3'020 * kMs);
    CHECK(r.faults.at(0).failed_requests == 202);
  }
}

TEST_CASE("slow but successful answers beyond good_latency are bad", "[runner][analysis]") {
  auto r =
      Drill()
          .Mark(10.0, 11.0, [](RequestRecord& q) { q.completed_ns = q.intended_ns + 500 * kMs; })
          .Fault("slow", 10.0)
          .Run();
  const auto& f = r.faults.at(0);
  CHECK(f.rto_ns == 1 * kS);
  CHECK(f.failed_requests == 100);
  CHECK(f.outage_p50_ns == Approx(500 * kMs).epsilon(0.01));
}

TEST_CASE("wrong answers and timeouts are bad requests", "[runner][analysis]") {
  auto r = Drill()
               .Mark(10.0, 10.5,
                     [](RequestRecord& q) {
                       q.flags = RequestRecord::kGoldenChecked | RequestRecord::kGoldenMismatch;
                     })
               .Mark(10.5, 11.0,
                     [](RequestRecord& q) {
                       q.flags = RequestRecord::kTimeout;
                       q.code = 4;  // DEADLINE_EXCEEDED
                     })
               .Fault("gray", 10.0)
               .Run();
  CHECK(r.faults.at(0).rto_ns == 1 * kS);
  CHECK(r.faults.at(0).failed_requests == 100);
}

TEST_CASE("without an explicit good_latency the threshold is 5 x the baseline p99",
          "[runner][analysis]") {
  Drill d;
  d.in.good_latency_ns.reset();
  // Baseline latencies are 10 ms, so the threshold is 50 ms: 40 ms is good, 60 ms is bad.
  d.Mark(0, 10, [](RequestRecord& q) { q.completed_ns = q.intended_ns + 10 * kMs; });
  d.Mark(10.0, 10.5, [](RequestRecord& q) { q.completed_ns = q.intended_ns + 40 * kMs; });
  d.Mark(12.0, 12.5, [](RequestRecord& q) { q.completed_ns = q.intended_ns + 60 * kMs; });
  auto r = d.Fault("cpu", 10.0).Run();
  CHECK(r.baseline_p99_ns == Approx(10 * kMs).epsilon(0.01));
  CHECK(r.good_latency_ns == Approx(50 * kMs).epsilon(0.01));
  CHECK(r.faults.at(0).impact_ns == 12 * kS);
  CHECK(r.faults.at(0).rto_ns == 2'500 * kMs);
}

TEST_CASE("overlapping faults both end at the shared recovery", "[runner][analysis]") {
  // A at 10 s, B at 12 s while A's outage goes on; the service is back at 14 s.
  auto r = Drill().Fail(10.0, 14.0).Fault("a", 10.0).Fault("b", 12.0).Run();
  REQUIRE(r.faults.size() == 2);
  CHECK(r.faults[0].rto_ns == 4 * kS);
  // B's impact window opens one interval early, inside A's ongoing outage.
  CHECK(r.faults[1].impact_ns == 11'990 * kMs);
  CHECK(r.faults[1].time_to_impact_ns == 0);
  CHECK(r.faults[1].rto_ns == 2 * kS);
}

TEST_CASE("sequential faults are measured separately", "[runner][analysis]") {
  auto r = Drill().Fail(10.0, 11.0).Fail(15.0, 16.5).Fault("a", 10.0).Fault("b", 15.0).Run();
  CHECK(r.faults[0].rto_ns == 1 * kS);
  CHECK(r.faults[0].failed_requests == 100);
  CHECK(r.faults[1].rto_ns == 1'500 * kMs);
  CHECK(r.faults[1].failed_requests == 150);
}

TEST_CASE("a harmless fault does not inherit the next fault's outage", "[runner][analysis]") {
  auto r = Drill().Fail(15.0, 16.0).Fault("harmless", 10.0).Fault("b", 15.0).Run();
  CHECK_FALSE(r.faults[0].impact);
  CHECK(r.faults[1].impact);
  CHECK(r.faults[1].rto_ns == 1 * kS);
}

TEST_CASE("a fault's impact search ends one interval before the next fault's injection",
          "[runner][analysis]") {
  // A (harmless) at 10 s; B confirmed at 22.005 s takes the service down from the request
  // intended at 22.000 s (in flight when B landed) until 28 s. The 22.000 s request is in
  // B's span [t_B - interval, ...), and must not also be A's impact: A's span ends at
  // 21.995 s. (Searched up to B's injection, A had impact 22.000 s, RTO 18 s and all of
  // B's 600 failed requests.)
  Drill d(40);
  d.in.slo.rto_ns = 10 * kS;
  auto r = d.Fail(22.0, 28.0).Fault("a", 10.0).Fault("b", 22.005).Run();
  REQUIRE(r.faults.size() == 2);
  const auto& a = r.faults[0];
  const auto& b = r.faults[1];
  CHECK_FALSE(a.impact);
  CHECK(a.recovered);
  CHECK(a.rto_ns == 0);
  CHECK(a.failed_requests == 0);
  CHECK(b.impact);
  CHECK(b.impact_ns == 22 * kS);
  CHECK(b.time_to_impact_ns == 0);
  CHECK(b.recovered_ns == 28 * kS);
  CHECK(b.rto_ns == 5'995 * kMs);
  CHECK(b.failed_requests == 600);
  REQUIRE(r.slos.size() == 2);
  CHECK(r.slos[0].name == "rto[a]");
  CHECK(r.slos[0].pass);
  CHECK(r.slos[1].name == "rto[b]");
  CHECK(r.slos[1].pass);
  // A bad request in the last interval before B's injection is B's, not A's; one just
  // before that is A's.
  auto edge = Drill(40).Fail(21.99, 22.0).Fault("a", 10.0).Fault("b", 22.005).Run();
  CHECK(edge.faults[0].impact);
  CHECK(edge.faults[0].impact_ns == 21'990 * kMs);
  CHECK_FALSE(edge.faults[1].impact);
}

TEST_CASE("time to recover after revert for a fault with a duration", "[runner][analysis]") {
  auto r = Drill().Fail(10.0, 12.3).Fault("pause", 10.0, 12.0).Run();
  REQUIRE(r.faults[0].recover_after_revert_ns.has_value());
  CHECK(*r.faults[0].recover_after_revert_ns == 300 * kMs);
  // Recovery before the revert (the service routed around the fault) counts as 0.
  auto early = Drill().Fail(10.0, 11.0).Fault("pause", 10.0, 15.0).Run();
  CHECK(*early.faults[0].recover_after_revert_ns == 0);
}

TEST_CASE("a fault whose injection failed is not analysed", "[runner][analysis]") {
  Drill d;
  d.Fault("broken", 10.0);
  d.in.faults[0].inject_failed = true;
  CHECK(d.Run().faults.empty());
}

TEST_CASE("unsorted logs give the same answer as sorted ones", "[runner][analysis]") {
  Drill d;
  d.Fail(10.0, 11.0).Fault("kill", 10.0);
  auto sorted = d.Run();
  std::reverse(d.in.requests.begin(), d.in.requests.end());
  auto unsorted = d.Run();
  CHECK(unsorted.faults[0].rto_ns == sorted.faults[0].rto_ns);
  CHECK(unsorted.availability == sorted.availability);
}

TEST_CASE("availability, p99 and error budget SLO verdicts", "[runner][analysis]") {
  // Without an explicit budget, per-fault figures use (1 - availability) x requests.
  Drill plain;
  plain.in.slo.availability = 0.99;  // budget (1 - 0.99) x 2000 = 20 bad requests
  CHECK(plain.Fail(10.0, 11.0).Fault("kill", 10.0).Run().faults[0].error_budget_consumed ==
        Approx(5.0));

  Drill d;
  // A 99.9 % objective over 30 days at 100 rps allows 0.001 x 100 x 2,592,000 = 259,200 bad
  // requests; this drill may burn 0.05 % of that (129.6 requests).
  d.in.slo = {.rto_ns = 2 * kS,
              .availability = 0.99,
              .p99_ns = 50 * kMs,
              .error_budget_requests = 259'200,
              .error_budget_max_consumed = 0.0005};
  // 150 bad of 2000 in the measured window: availability 0.925.
  auto r = d.Fail(10.0, 11.5).Fault("kill", 10.0).Run();
  CHECK(r.availability == Approx(0.925));
  CHECK(r.error_budget_consumed == Approx(150.0 / 259'200));
  CHECK(r.faults[0].error_budget_consumed == Approx(150.0 / 259'200));
  REQUIRE(r.slos.size() == 4);
  CHECK(r.slos[0].name == "rto[kill]");
  CHECK(r.slos[0].pass);
  CHECK(r.slos[0].measured == "1.5s");
  CHECK(r.slos[1].name == "availability");
  CHECK_FALSE(r.slos[1].pass);
  CHECK(r.slos[2].name == "p99");
  CHECK(r.slos[2].pass);
  CHECK(r.slos[3].name == "error_budget");
  CHECK(r.slos[3].measured == "0.0579%");
  CHECK_FALSE(r.slos[3].pass);
  CHECK_FALSE(r.slos_met);
}

TEST_CASE("RTO is never negative: recovery is searched from t_i, not from the early impact",
          "[runner][analysis]") {
  // Poisson arrivals: the request intended at 9.998 s (in flight when the fault landed at
  // 10.005 s) failed, the one at 10.000 s succeeded. Recovery is the first good request
  // intended at or after t_i whose hold windows hold: 10.010 s, so RTO = 5 ms (not -5 ms).
  auto r = Drill().Add(9.998, 14).Fault("kill", 10.005).Run();
  const auto& f = r.faults.at(0);
  CHECK(f.impact);
  CHECK(f.impact_ns == 9'998 * kMs);
  CHECK(f.time_to_impact_ns == 0);
  CHECK(f.recovered_ns == 10'010 * kMs);
  CHECK(f.rto_ns == 5 * kMs);
  CHECK(f.rto_ns >= 0);
  CHECK(f.outage_ns == 12 * kMs);
  // Failed requests in [impact, t_r): only the one at 9.998 s.
  CHECK(f.failed_requests == 1);
}

TEST_CASE("in-flight requests are never good and have no latency", "[runner][analysis]") {
  // Requests intended in [10.0 s, 10.5 s) have no outcome in the log (completed_ns == 0,
  // as in a record written while they were in flight).
  auto r = Drill()
               .Mark(10.0, 10.5, [](RequestRecord& q) { q.completed_ns = 0; })
               .Fault("kill", 10.0)
               .Run();
  RequestRecord in_flight{.intended_ns = 10 * kS, .sent_ns = 10 * kS};
  CHECK_FALSE(IsCompleted(in_flight));
  CHECK_FALSE(IsOk(in_flight));
  CHECK_FALSE(IsGood(in_flight, std::numeric_limits<int64_t>::max()));
  const auto& f = r.faults.at(0);
  CHECK(f.rto_ns == 500 * kMs);
  CHECK(f.failed_requests == 50);
  // The outage's latency is that of its completed requests: there are none.
  CHECK(f.outage_p99_ns == 0);
  CHECK(r.requests == 2000);
  CHECK(r.incomplete == 50);
  CHECK(r.good == 1950);
  // No negative latency drags the quantiles down: every completed request took 5 ms.
  CHECK(r.p50_ns == 5 * kMs);
  CHECK(r.service_p50_ns == 5 * kMs);
}

TEST_CASE("a fault's hold windows are checked until the next fault, not to observe end",
          "[runner][analysis]") {
  // A: 10.0-11.0 s down. B, injected at 15 s, takes the service down 15.0-16.5 s. A's
  // recovery is judged on [t_r, 15 s - one interval): recovered at 11 s. (Checked to the
  // end of observation, as DESIGN §7 reads literally, A would be blamed for B's outage and
  // "recover" at 16.5 s, RTO 6.5 s.)
  auto r = Drill().Fail(10.0, 11.0).Fail(15.0, 16.5).Fault("a", 10.0).Fault("b", 15.0).Run();
  CHECK(r.faults[0].recovered_ns == 11 * kS);
  CHECK(r.faults[0].rto_ns == 1 * kS);
  CHECK(r.faults[1].recovered_ns == 16'500 * kMs);
}

TEST_CASE("a recovery too close to the next fault to confirm recovers with that fault",
          "[runner][analysis]") {
  // A at 10 s: down 10.0-11.5 s, then good, but B lands at 12.0 s and takes the service
  // down 12.0-13.0 s. A 1 s hold from 11.5 s cannot be seen before B's impact window
  // (11.99 s), so A's recovery is searched after B's injection: both recover at 13 s.
  auto r = Drill().Fail(10.0, 11.5).Fail(12.0, 13.0).Fault("a", 10.0).Fault("b", 12.0).Run();
  const auto& a = r.faults[0];
  const auto& b = r.faults[1];
  CHECK(a.recovered_ns == 13 * kS);
  CHECK(a.rto_ns == 3 * kS);
  CHECK(a.failed_requests == 250);  // 150 + 100: the outage spans both
  CHECK(b.impact_ns == 12 * kS);
  CHECK(b.rto_ns == 1 * kS);
  CHECK(b.failed_requests == 100);
}

TEST_CASE("hold windows are half-open: t to t + hold, the end excluded", "[runner][analysis]") {
  // Down 10-12 s; then single errors at 13.00 s and 14.00 s, exactly one hold apart. Every
  // window [t, t + 1 s) holds 100 requests and at most one error: 0.99 >= 0.99, recovered
  // at 12 s. (A closed window [13.00, 14.00] would hold 101 requests and both errors.)
  auto r = Drill().Fail(10.0, 12.0).Fail(13.0, 13.01).Fail(14.0, 14.01).Fault("kill", 10.0).Run();
  CHECK(r.faults.at(0).recovered_ns == 12 * kS);
  CHECK(r.faults.at(0).rto_ns == 2 * kS);
}

TEST_CASE("availability and p99 are measured from baseline end to observe end",
          "[runner][analysis]") {
  Drill d;
  // Bad requests in the baseline and after observation ended count in neither.
  d.Fail(5.0, 5.5).Fail(10.0, 10.2);
  d.Add(30.0, 14).Add(30.5, 14);
  d.in.slo.availability = 0.99;
  auto r = d.Fault("kill", 10.0).Run();
  CHECK(r.requests == 2000);
  CHECK(r.good == 1980);
  CHECK(r.availability == Approx(0.99));
  CHECK(r.slos.at(0).pass);
}

TEST_CASE("baseline p99 skips the warm-up second and counts only ok requests",
          "[runner][analysis]") {
  Drill d;
  d.in.good_latency_ns.reset();
  d.Mark(0, 10, [](RequestRecord& q) { q.completed_ns = q.intended_ns + 10 * kMs; });
  // The first second (connection warm-up) is slow; a burst of timeouts at 5 s is not ok.
  d.Mark(0, 1, [](RequestRecord& q) { q.completed_ns = q.intended_ns + 900 * kMs; });
  d.Mark(5.0, 5.2, [](RequestRecord& q) {
    q.code = 4;
    q.flags = RequestRecord::kTimeout;
    q.completed_ns = q.intended_ns + 2 * kS;
  });
  CHECK(SteadyStateFrom(10 * kS) == 1 * kS);
  CHECK(SteadyStateFrom(1 * kS) == 500 * kMs);
  auto r = d.Fault("cpu", 10.0).Run();
  CHECK(r.baseline_p99_ns == Approx(10 * kMs).epsilon(0.01));
  CHECK(BaselineP99(d.in.requests, 10 * kS) == r.baseline_p99_ns);
  CHECK(r.good_latency_ns == Approx(50 * kMs).epsilon(0.01));
}

TEST_CASE("latency in and out of the outage, and the outage of an unrecovered fault",
          "[runner][analysis]") {
  SECTION("slow answers 10-11 s: outage p50 500 ms, outside 5 ms") {
    auto r =
        Drill()
            .Mark(10.0, 11.0, [](RequestRecord& q) { q.completed_ns = q.intended_ns + 500 * kMs; })
            .Fault("slow", 10.0)
            .Run();
    const auto& f = r.faults.at(0);
    CHECK(f.outage_p50_ns == Approx(500 * kMs).epsilon(0.01));
    CHECK(f.outside_p50_ns == 5 * kMs);
    CHECK(f.outside_p99_ns == 5 * kMs);
  }
  SECTION("unrecovered: the outage lasts from the impact to observe end") {
    auto r = Drill().Fail(12.0, 30.0).Fault("kill", 10.0).Run();
    const auto& f = r.faults.at(0);
    CHECK_FALSE(f.recovered);
    CHECK(f.time_to_impact_ns == 2 * kS);
    CHECK(f.outage_ns == 18 * kS);
    CHECK(f.failed_requests == 1800);
    CHECK(f.outside_p50_ns == 5 * kMs);  // 9.99-12 s
  }
  SECTION("a harmless fault's latency is all outside an outage") {
    auto r = Drill().Fault("noop", 10.0).Run();
    CHECK(r.faults.at(0).outside_p99_ns == 5 * kMs);
    CHECK(r.faults.at(0).outage_p99_ns == 0);
  }
}

TEST_CASE("no time to recover after revert for a fault without a duration", "[runner][analysis]") {
  Drill d;
  d.Fail(10.0, 11.0).Fault("held", 10.0);
  d.in.faults[0].reverted_ns = 30 * kS;  // reverted at the end of the drill: no duration
  auto r = d.Run();
  CHECK(r.faults.at(0).recovered);
  CHECK_FALSE(r.faults.at(0).recover_after_revert_ns.has_value());
}

TEST_CASE("service time is reported next to latency from the intended time", "[runner][analysis]") {
  // The sender stalled: requests intended in [10.0 s, 10.5 s) left at 10.5 s and were
  // answered 5 ms later. Latency counts the stall (no coordinated omission); service time
  // does not.
  Drill d;
  d.Mark(10.0, 10.5, [](RequestRecord& q) {
    q.sent_ns = 10'500 * kMs;
    q.completed_ns = q.sent_ns + 5 * kMs;
  });
  d.in.good_latency_ns = 100 * kMs;
  auto r = d.Fault("stall", 10.0).Run();
  CHECK(r.service_p99_ns == 5 * kMs);
  // 1,950 requests took 5 ms; the 50 stalled ones 15, 25, ..., 505 ms. Rank 1,980 of 2,000
  // is the 30th of those: 305 ms.
  CHECK(r.p99_ns == Approx(305 * kMs).epsilon(0.01));
  // Latency 10.505 s - intended > 100 ms for requests intended before 10.405 s: 41 bad.
  CHECK(r.faults.at(0).failed_requests == 41);
  CHECK(r.faults.at(0).recovered_ns == 10'410 * kMs);
}

TEST_CASE("docs/measurements.md example 1: a short outage at 10 rps", "[runner][analysis][docs]") {
  // 10 rps, baseline 1 s, observe to 4 s, hold 0.5 s, recovery_ratio 0.8, good_latency
  // 200 ms, availability SLO 0.9. Every request is answered OK in 5 ms except the four below.
  AnalysisInput in;
  in.request_interval_ns = 100 * kMs;
  in.phases = {.baseline_end_ns = 1 * kS, .faults_end_ns = 1 * kS, .observe_end_ns = 4 * kS};
  in.hold_ns = 500 * kMs;
  in.recovery_ratio = 0.8;
  in.good_latency_ns = 200 * kMs;
  in.slo.availability = 0.9;
  for (int64_t t = 0; t < 4 * kS; t += 100 * kMs) {
    in.requests.push_back({.intended_ns = t, .sent_ns = t, .completed_ns = t + 5 * kMs});
  }
  in.requests[10].code = 14;                        // 1.0 s UNAVAILABLE
  in.requests[11].code = 14;                        // 1.1 s UNAVAILABLE
  in.requests[12].completed_ns = 1'550 * kMs;       // 1.2 s OK after 350 ms
  in.requests[14].code = 4;                         // 1.4 s DEADLINE_EXCEEDED
  in.requests[14].flags = RequestRecord::kTimeout;  //   at its 2 s deadline
  in.requests[14].completed_ns = 3'400 * kMs;
  in.faults.push_back({.name = "kill", .kind = "process.kill", .injected_ns = 1'050 * kMs});
  auto r = Analyze(in);
  const auto& f = r.faults.at(0);
  CHECK(f.impact_ns == 1'000 * kMs);
  CHECK(f.time_to_impact_ns == 0);
  CHECK(f.recovered_ns == 1'300 * kMs);
  CHECK(f.rto_ns == 250 * kMs);
  CHECK(f.outage_ns == 300 * kMs);
  CHECK(f.failed_requests == 3);
  CHECK(f.error_budget_consumed == Approx(1.0));
  CHECK(f.outage_p50_ns == 5 * kMs);
  CHECK(f.outage_p99_ns == Approx(350 * kMs).epsilon(0.005));
  CHECK(f.outside_p50_ns == 5 * kMs);
  CHECK(f.outside_p99_ns == 2'000 * kMs);
  CHECK_FALSE(f.recover_after_revert_ns.has_value());
  CHECK(r.requests == 30);
  CHECK(r.good == 26);
  CHECK(r.availability == Approx(26.0 / 30));
  CHECK(r.error_budget_consumed == Approx(4.0 / 3));
  CHECK(r.p50_ns == 5 * kMs);
  CHECK(r.p99_ns == 2'000 * kMs);
  REQUIRE(r.slos.size() == 1);
  CHECK_FALSE(r.slos[0].pass);
  CHECK(r.slos[0].measured == "0.8667");
}

TEST_CASE("docs/measurements.md example 6: RPO of a small session log",
          "[runner][analysis][rpo][docs]") {
  // Writes every 100 ms to s1 (seq 1..9), acknowledged 2 ms after sending, except seq 9
  // (no acknowledgement). Read back: 1 2 3 3 5 4 9.
  AnalysisInput in;
  in.write_interval_ns = 100 * kMs;
  in.verified = true;
  for (int i = 1; i <= 9; ++i) {
    WriteRecord w{.session = "s1", .seq = i, .sent_ns = i * 100 * kMs};
    if (i < 9) w.ack_ns = i * 100 * kMs + 2 * kMs;
    in.writes.push_back(w);
  }
  in.read_back["s1"] = {1, 2, 3, 3, 5, 4, 9};
  auto r = Analyze(in);
  REQUIRE(r.rpo.has_value());
  CHECK(r.rpo->writes == 9);
  CHECK(r.rpo->acknowledged == 8);
  CHECK(r.rpo->lost == 3);            // 6, 7, 8
  CHECK(r.rpo->rpo_ns == 300 * kMs);  // 802 - 602 + 100 ms
  CHECK(r.rpo->duplicated == 1);
  CHECK(r.rpo->reordered == 1);
  CHECK(r.rpo->ambiguous == 1);
}

// RPO: writes every 100 ms to one session, acknowledged 1 ms after sending.
struct Writes {
  AnalysisInput in;
  explicit Writes(int n) {
    in.write_interval_ns = 100 * kMs;
    in.verified = true;
    for (int i = 1; i <= n; ++i) {
      int64_t t = i * 100 * kMs;
      in.writes.push_back({.session = "s1", .seq = i, .sent_ns = t, .ack_ns = t + kMs});
    }
  }
  Writes& ReadBack(std::vector<int64_t> seqs) {
    in.read_back["s1"] = std::move(seqs);
    return *this;
  }
};

TEST_CASE("RPO with nothing lost is zero", "[runner][analysis][rpo]") {
  auto r = Analyze(Writes(10).ReadBack({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}).in);
  REQUIRE(r.rpo.has_value());
  CHECK(r.rpo->acknowledged == 10);
  CHECK(r.rpo->lost == 0);
  CHECK(r.rpo->rpo_ns == 0);
}

TEST_CASE("RPO of a lost tail is its ack span plus one write interval", "[runner][analysis][rpo]") {
  // 8, 9, 10 lost: acked at 801, 901, 1001 ms; RPO time = 1001 - 801 + 100 = 300 ms.
  auto r = Analyze(Writes(10).ReadBack({1, 2, 3, 4, 5, 6, 7}).in);
  CHECK(r.rpo->lost == 3);
  CHECK(r.rpo->rpo_ns == 300 * kMs);
  REQUIRE(r.rpo->lost_writes.size() == 3);
  CHECK(r.rpo->lost_writes[0].seq == 8);
}

TEST_CASE("RPO of one lost write is one interval", "[runner][analysis][rpo]") {
  auto r = Analyze(Writes(3).ReadBack({1, 2}).in);
  CHECK(r.rpo->lost == 1);
  CHECK(r.rpo->rpo_ns == 100 * kMs);
}

TEST_CASE("RPO of scattered loss spans the earliest to the latest lost ack",
          "[runner][analysis][rpo]") {
  auto r = Analyze(Writes(10).ReadBack({1, 2, 4, 5, 6, 7, 9, 10}).in);
  CHECK(r.rpo->lost == 2);
  CHECK(r.rpo->rpo_ns == 600 * kMs);  // 801 - 301 + 100
}

TEST_CASE("duplicates, reordering and ambiguous writes are reported, not lost",
          "[runner][analysis][rpo]") {
  Writes w(4);
  w.in.writes.push_back({.session = "s1", .seq = 5, .sent_ns = 500 * kMs});  // never acked
  auto r = Analyze(w.ReadBack({1, 2, 2, 4, 3, 5}).in);
  CHECK(r.rpo->lost == 0);
  CHECK(r.rpo->duplicated == 1);
  CHECK(r.rpo->reordered == 1);
  CHECK(r.rpo->ambiguous == 1);
  CHECK(r.rpo->writes == 5);
  CHECK(r.rpo->acknowledged == 4);
}

TEST_CASE("an rpo: 0 SLO fails on one lost write and names the count", "[runner][analysis][rpo]") {
  Writes w(3);
  w.in.slo.rpo_writes = 0;
  auto r = Analyze(w.ReadBack({1, 3}).in);
  REQUIRE(r.slos.size() == 1);
  CHECK(r.slos[0].name == "rpo");
  CHECK_FALSE(r.slos[0].pass);
  CHECK(r.slos[0].measured == "1 lost (100ms)");
}

TEST_CASE("RPO is not computed when the verify phase did not run", "[runner][analysis][rpo]") {
  Writes w(3);
  w.in.verified = false;
  w.in.slo.rpo_writes = 0;
  auto r = Analyze(w.in);
  CHECK_FALSE(r.rpo.has_value());
  CHECK(r.slos.at(0).measured == "not verified");
  CHECK_FALSE(r.slos_met);
}

}  // namespace
}  // namespace chaosdrill::runner
