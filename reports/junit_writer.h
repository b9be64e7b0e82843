// JUnit XML for CI test reporters (Jenkins, GitLab, GitHub): one <testsuite> per scenario,
// one <testcase> per SLO verdict and per fault, plus a "drill completed" case that errors
// when the drill was aborted, invalid or hit an infrastructure error. Failures carry the
// measured value, the target and a one-line reason. Pure function of the record; output is
// well formed (escaped, invalid UTF-8 replaced) and its counts add up.
#pragma once

#include <string>

#include "reports/run_record.h"

namespace chaosdrill::reports {

// `report_path` (may be empty) is recorded as a property so a CI page links the full report.
std::string RenderJunit(const RunRecord& record, const std::string& report_path = "");

}  // namespace chaosdrill::reports
