// Small text helpers shared by the report writers: how durations, counts and wall-clock
// times are shown, and escaping for XML/HTML and Markdown table cells. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "reports/run_record.h"

namespace chaosdrill::reports {

// "850us", "12.5ms", "1.84s", "2m05s" — at most three significant digits.
std::string HumanDuration(int64_t ns);
// "1,234,567".
std::string WithCommas(uint64_t n);
// RFC 3339 UTC with milliseconds: "2026-11-23T19:05:00.123Z".
std::string Rfc3339(int64_t unix_ns);
// Escapes & < > " ' for XML text and attributes (also HTML). Drops control characters that
// XML 1.0 forbids, and replaces invalid UTF-8 with U+FFFD, so the output is well formed.
std::string XmlEscape(absl::string_view text);
// One Markdown table cell: & < > escaped as entities, | escaped, newlines become spaces.
std::string MarkdownCell(absl::string_view text);

// The RTO target that applies to a fault: the "rto[name]" verdict, else "rto"; nullptr
// when the scenario sets none.
const SloVerdict* RtoVerdictFor(const AnalysisResult& analysis, absl::string_view fault);
// The target as nanoseconds, when the verdict's target is a duration.
std::optional<int64_t> TargetNs(const SloVerdict& verdict);

// "passed", "SLO failed", "aborted", "invalid", "infrastructure error".
std::string VerdictWords(ExitStatus status);
// The verdict of a record: VerdictWords(exit_status), or for a record written mid-drill
// (in_progress: the runner stopped, or is still running) kIncompleteVerdict, whatever its
// status so far says.
inline constexpr char kIncompleteVerdict[] =
    "INCOMPLETE \xE2\x80\x94 the runner stopped before the drill ended";  // U+2014
std::string RecordVerdict(const RunRecord& record);

// Fault outcome in one line, e.g. "recovered in 1.84s ≤ 3s", "did not recover within the
// observe window", "no impact", "could not be injected: <error>". `ok` receives whether
// this counts as a pass.
std::string FaultOutcome(const RunRecord& record, const FaultEvent& fault,
                         const FaultResult* result, bool* ok);
// The analysis result for record.faults[index], by name; nullptr when none. O(1) when the
// results are in fault order (as Analyze returns them), a scan otherwise.
const FaultResult* ResultFor(const RunRecord& record, size_t index);

}  // namespace chaosdrill::reports
