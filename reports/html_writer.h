// The HTML report: one self-contained file (no network, no scripts, inline CSS and SVG)
// with a verdict header, an SVG timeline of throughput, error rate, p50 and p99 (the 10 ms
// buckets downsampled to at most ~600 points) with every fault window shaded (one
// <rect class="fault-band"> per fault) and its RTO marked, then the SLO, fault, RPO,
// event, environment and scenario-source sections. Light and dark via
// prefers-color-scheme, print styles, no horizontal scrolling from 360 px up.
#pragma once

#include <string>

#include "reports/run_record.h"

namespace chaosdrill::reports {

std::string RenderHtml(const RunRecord& record);

// The timeline chart alone (an <svg> element), exposed for tests and the history page.
std::string RenderTimelineSvg(const RunRecord& record);

// The shared stylesheet (a <style> element) of the HTML report and the history page.
std::string ReportStyle();

}  // namespace chaosdrill::reports
