// MergeRecords: one drill's data split between two "runners" (alternate requests, or
// requests by connection with sessions split between them, one of them starting a second
// later on the wall clock) merges back to the single record's request log, writes,
// read-back, 10 ms buckets and histograms exactly. Different scenarios and repeated run
// ids are refused with the records named. (The re-analysis of the merged record is
// `chaosdrill report --merge`, tested in report_cli_test.cc.)
#include "reports/merge.h"

#include <catch2/catch.hpp>

#include "reports/run_record_derived.h"
#include "reports/run_record_json.h"
#include "tests/reports/record_fixture.h"

namespace chaosdrill::reports {
namespace {

using testing::SplitBetweenRunners;
using testing::StartLater;

void CheckSameData(const RunRecord& merged, const RunRecord& full) {
  CHECK(merged.started_unix_ns == full.started_unix_ns);
  CHECK(merged.phases == full.phases);
  CHECK(merged.faults == full.faults);
  CHECK(merged.events == full.events);
  CHECK(merged.requests.size() == full.requests.size());
  CHECK(merged.requests == full.requests);
  CHECK(merged.writes == full.writes);
  CHECK(merged.read_back == full.read_back);
  CHECK(merged.verified == full.verified);
  CHECK(merged.send_skew == full.send_skew);
  CHECK(merged.request_interval_ns == full.request_interval_ns);
  CHECK(merged.write_interval_ns == full.write_interval_ns);
  CHECK(BuildTimeBuckets(merged.requests) == BuildTimeBuckets(full.requests));
  CHECK(BuildHistograms(merged.requests, merged.phases) ==
        BuildHistograms(full.requests, full.phases));
  // And through JSON, as `report --merge` would write it: the derived views agree.
  nlohmann::json m = ToJson(merged), f = ToJson(full);
  CHECK(m["timeline"] == f["timeline"]);
  CHECK(m["histograms"] == f["histograms"]);
  CHECK(FromJson(m).ok());
}

TEST_CASE("merging a drill split alternately between two runners gives back the drill",
          "[reports][merge]") {
  RunRecord full = testing::SyntheticDrill({.duration_s = 40, .faults = 2});
  auto [a, b] = SplitBetweenRunners(
      full, [](size_t i) { return static_cast<int>(i % 2); }, 0.5);
  REQUIRE(a.requests.size() + b.requests.size() == full.requests.size());
  absl::StatusOr<RunRecord> merged = MergeRecords({a, b});
  REQUIRE(merged.ok());
  CheckSameData(*merged, full);
  CHECK(merged->run_id == a.run_id + "-merged2");
  CHECK(merged->analysis == AnalysisResult());        // recomputed by the caller
  CHECK(merged->exit_status == ExitStatus::kPassed);  // the inputs' slo_failed is not kept
}

TEST_CASE("merging by connection with one runner starting later aligns on the wall clock",
          "[reports][merge]") {
  RunRecord full = testing::SyntheticDrill({.duration_s = 40, .faults = 2, .seed = 7});
  // Four connections round robin; runner 0 has connections 0-2 (3/4 of the load).
  auto [a, b] = SplitBetweenRunners(
      full, [](size_t i) { return i % 4 < 3 ? 0 : 1; }, 0.75);
  StartLater(b, 1'234'567'891);  // b's drill clock started 1.23 s after a's
  b.faults.clear();              // only runner 0 injected
  b.events.clear();
  b.exit_status = ExitStatus::kSloFailed;
  absl::StatusOr<RunRecord> merged = MergeRecords({b, a});  // the later runner first
  REQUIRE(merged.ok());
  CheckSameData(*merged, full);
}

TEST_CASE("merge keeps the worst non-SLO exit and unions faults several runners saw",
          "[reports][merge]") {
  RunRecord full = testing::SyntheticDrill({.duration_s = 40, .faults = 2});
  auto [a, b] = SplitBetweenRunners(
      full, [](size_t i) { return static_cast<int>(i % 2); }, 0.5);
  b.faults[0].injected_ns -= 1'000'000;  // b confirmed the same fault 1 ms earlier
  b.faults[1].reverted_ns = *b.faults[1].reverted_ns + 5'000'000;  // and reverted later
  a.faults[1].inject_failed = true;
  b.exit_status = ExitStatus::kAborted;
  b.exit_reason = "aborted: success ratio below 0.5 for 10s";
  absl::StatusOr<RunRecord> merged = MergeRecords({a, b});
  REQUIRE(merged.ok());
  REQUIRE(merged->faults.size() == 2);
  CHECK(merged->faults[0].injected_ns == full.faults[0].injected_ns - 1'000'000);
  CHECK(merged->faults[1].reverted_ns == *full.faults[1].reverted_ns + 5'000'000);
  CHECK_FALSE(merged->faults[1].inject_failed);
  CHECK(merged->exit_status == ExitStatus::kAborted);
  CHECK(merged->exit_reason == b.exit_reason);
}

TEST_CASE("merge refuses different scenarios and repeated run ids, naming the records",
          "[reports][merge]") {
  RunRecord a = testing::SyntheticDrill({.duration_s = 20, .faults = 1});
  RunRecord b = testing::SyntheticDrill({.duration_s = 20, .faults = 1, .seed = 2});
  b.scenario_name = "gateway-latency";
  absl::StatusOr<RunRecord> m = MergeRecords({a, b}, {"a.json", "b.json"});
  REQUIRE_FALSE(m.ok());
  CHECK(absl::IsInvalidArgument(m.status()));
  CHECK_THAT(std::string(m.status().message()),
             Catch::Contains("b.json (run " + b.run_id + ") is scenario 'gateway-latency'") &&
                 Catch::Contains("a.json") && Catch::Contains("same scenario"));
  absl::StatusOr<RunRecord> twice = MergeRecords({a, a}, {"a.json", "copy-of-a.json"});
  REQUIRE_FALSE(twice.ok());
  CHECK_THAT(std::string(twice.status().message()),
             Catch::Contains("copy-of-a.json (run " + a.run_id + ") and a.json") &&
                 Catch::Contains("same run id"));
  CHECK_FALSE(MergeRecords({}).ok());
}

}  // namespace
}  // namespace chaosdrill::reports
