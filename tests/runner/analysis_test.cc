// Analysis on synthetic request logs whose answers are computed by hand (the worked
// examples of docs/measurements.md). Load is 100 rps (one request every 10 ms) unless a
// case says otherwise; every latency is 5 ms unless a case marks requests otherwise.
#include "runner/analysis.h"

#include <catch2/catch.hpp>
#include <functional>

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
  Drill& Fault(std::string name, double injected_s, std::optional<double> reverted_s = {}) {
    FaultEvent f{.name = std::move(name), .kind = "process.kill"};
    f.injected_ns = std::llround(injected_s * kS);
    if (reverted_s) f.reverted_ns = std::llround(*reverted_s * kS);
    in.faults.push_back(f);
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
