// RunRecord <-> JSON (schema "chaosdrill.run/v1", docs/run-record.md). The per-request
// log is stored column-wise with delta-encoded times, so a 600k-request drill stays a
// few MiB and `report --merge` can recompute every number exactly from the records alone.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "reports/run_record.h"

namespace chaosdrill::reports {

// The record as JSON. Besides the stored fields it carries derived views for readers that
// do not want to decode the request log: "timeline" (10 ms TimeBuckets) and "histograms"
// (overall and per-phase latency). FromJson recomputes those from the request log and
// rejects a file whose derived views disagree with it.
nlohmann::json ToJson(const RunRecord& record);

// Strict inverse of ToJson: FromJson(ToJson(r)) == r. Every missing field, wrong type,
// unknown schema, inconsistent column length or impossible value is an InvalidArgument
// error naming the JSON path ("requests.latency_ns[17]: expected an integer, got "x"").
absl::StatusOr<RunRecord> FromJson(const nlohmann::json& j);

// Reads and parses a record file; errors start with the path.
absl::StatusOr<RunRecord> ReadRunRecord(const std::string& path);

// Writes `record` as JSON to `path` (temp file + rename, so a reader never sees half a
// record). Pretty when `pretty`.
absl::Status WriteRunRecord(const RunRecord& record, const std::string& path, bool pretty = true);

absl::string_view ExitStatusName(ExitStatus status);

}  // namespace chaosdrill::reports
