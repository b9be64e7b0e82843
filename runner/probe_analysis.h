// Probe results as verdicts, computed from the recorded probe series and fault events alone
// (like runner/analysis.h: no live state, the same record always gives the same answer).
// Today only alert probes judge anything: "alert X fired within T of each fault".
#pragma once

#include <vector>

#include "reports/run_record.h"

namespace chaosdrill::runner {

// For every alert probe and every fault it judges (its `faults`, or all) that was injected:
// the time from the fault's confirmed injection to the first sample at or after it that
// saw the alert firing. The sample grid bounds the error: the alert became visible to
// queries after the previous sample, so the true time to detect is in
// (detect_ns - every, detect_ns] plus the query's own latency. An alert already firing at
// the last sample before the injection is not attributed to the fault (already_firing,
// fails).
std::vector<reports::AlertDetection> DetectAlerts(const std::vector<reports::ProbeSeries>& probes,
                                                  const std::vector<reports::FaultEvent>& faults);

// Adds DetectAlerts' results to `analysis.alerts` and one SLO verdict per detection to
// `analysis.slos` ("alert[ReplicaDown after kill-one]": target "fired within 30s",
// measured "fired after 12.4s"), clearing slos_met when one fails.
void AddProbeVerdicts(const std::vector<reports::ProbeSeries>& probes,
                      const std::vector<reports::FaultEvent>& faults,
                      reports::AnalysisResult& analysis);

}  // namespace chaosdrill::runner
