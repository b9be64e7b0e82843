// Merging run records of the same scenario run from several load-generating runners
// (`chaosdrill report --merge`). The data merges exactly: request logs and session writes
// are concatenated (so the derived 10 ms buckets and histograms equal the merge of each
// runner's), send-skew histograms are added, read-backs unioned. Times are aligned on the
// wall-clock start: each record's monotonic times are shifted by its started_unix_ns minus
// the earliest one. Results are NOT recomputed here (reports cannot depend on the runner):
// the caller runs runner::Analyze on the merged data and stores the result.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "reports/run_record.h"

namespace chaosdrill::reports {

// Fails when `records` is empty or the scenarios differ (by name). The merged record takes
// the first record's scenario, environment, target and faults (faults are injected once,
// by one runner); events of all records are merged in time order; the request interval
// becomes that of the combined rate (1 / sum of 1/interval). Its analysis is cleared and
// its exit status is the worst of the inputs.
absl::StatusOr<RunRecord> MergeRecords(const std::vector<RunRecord>& records);

}  // namespace chaosdrill::reports
