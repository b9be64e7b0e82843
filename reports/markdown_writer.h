// Markdown summary for CI step summaries and PR comments: a verdict line, the SLO table,
// the fault table (at most 50 rows) and an RPO line. Short by design; the HTML report has
// the detail. Pure function of the record; table cells are escaped.
#pragma once

#include <string>

#include "reports/run_record.h"

namespace chaosdrill::reports {

// `links` (may be empty) is appended as a last line, e.g. "[HTML report](run.html)".
std::string RenderMarkdown(const RunRecord& record, const std::string& links = "");

}  // namespace chaosdrill::reports
