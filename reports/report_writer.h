// Choosing and writing report formats: what `chaosdrill run` calls at the end of a drill
// (WriteReports) and what `chaosdrill report` uses to render one record (RenderReport).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "reports/run_record.h"

namespace chaosdrill::reports {

// Known formats: "json", "json-compact", "html", "junit", "markdown" (alias "md").
bool IsReportFormat(absl::string_view format);
// File extension for a format: "json", "html", "xml", "md".
std::string ReportExtension(absl::string_view format);

// Renders `record` in `format`. `report_path` is where the full report lives (JUnit
// property, Markdown link); may be empty.
absl::StatusOr<std::string> RenderReport(const RunRecord& record, absl::string_view format,
                                         const std::string& report_path = "");

// Writes `<dir>/<run_id>.<ext>` for each format (atomically: temp file + rename), creating
// `dir` if needed, and returns the paths written in the order given. Duplicate formats are
// written once. Stops at the first failure with an error naming the file.
absl::StatusOr<std::vector<std::string>> WriteReports(const RunRecord& record,
                                                      const std::vector<std::string>& formats,
                                                      const std::string& dir);

// Writes `content` to `path` atomically (temp file + rename).
absl::Status WriteFileAtomically(const std::string& path, absl::string_view content);

}  // namespace chaosdrill::reports
