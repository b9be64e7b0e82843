// Merging run records of the same scenario run from several load-generating runners
// (`chaosdrill report --merge`, DESIGN §10). The data merges exactly: request logs and
// session writes are concatenated (so the derived 10 ms buckets and histograms equal the
// merge of each runner's), send-skew histograms are added, read-backs (intact and corrupt) unioned
// by session. Times are aligned on the wall-clock start: each record's monotonic times are shifted
// by its started_unix_ns minus the earliest one. Results are NOT recomputed here (reports cannot
// depend on the runner): the caller runs runner::Analyze on the merged data and stores the result.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "reports/run_record.h"

namespace chaosdrill::reports {

// Fails (InvalidArgument) when `records` is empty, when the scenarios differ (by name),
// when two records have the same run id (the same runner's data twice would double it) or
// when one is still in progress (its runner died: its outcomes are incomplete).
// `names` (optional, parallel to `records`, e.g. the file paths) label the records in
// those errors.
//
// The merged record:
// - run id "<first run id>-merged<N>", start = the earliest start;
// - scenario, environment and target of the first record;
// - faults: the union by name over all records (one runner usually injects; a fault that
//   several runners report keeps the earliest confirmed injection and the latest revert,
//   and failed to inject only if it failed everywhere), in the order first seen;
// - phases of the first record that has faults (the injecting runner), else the first;
//   the observe end is the latest of all;
// - requests sorted by intended time, writes by send time; events merged in time order, exact
// duplicates
//   dropped; request and write intervals those of the combined rate (1 / sum of
//   1/interval);
// - verified when every record that logged writes was verified (false when none did);
// - analysis cleared; exit status the worst non-SLO status of the inputs (aborted,
//   invalid, infrastructure error), else passed: whether SLOs are met is for the caller's
//   fresh analysis to say, not the partial view of one runner.
absl::StatusOr<RunRecord> MergeRecords(const std::vector<RunRecord>& records,
                                       const std::vector<std::string>& names = {});

}  // namespace chaosdrill::reports
