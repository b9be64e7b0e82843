// Views derived from a RunRecord's request log, never stored separately in memory: the
// 10 ms timeline and the latency histograms (overall and per phase). Deriving them keeps
// merged records exact: merge the logs, and the buckets and histograms follow.
#pragma once

#include "common/histogram.h"
#include "common/time_buckets.h"
#include "reports/run_record.h"

namespace chaosdrill::reports {

// Every request with an outcome in the bucket of its intended time (in-flight requests,
// completed_ns == 0, are left out until they complete).
TimeBuckets BuildTimeBuckets(const std::vector<RequestRecord>& requests);

// Latency (completion - intended) of requests that got an answer (not timed out, not in
// flight), by the phase their intended time falls in: baseline [0, baseline_end), faults
// [baseline_end, faults_end), recovery [faults_end, ...).
struct LatencyHistograms {
  LatencyHistogram overall;
  LatencyHistogram baseline;
  LatencyHistogram faults;
  LatencyHistogram recovery;
  bool operator==(const LatencyHistograms&) const = default;
};
LatencyHistograms BuildHistograms(const std::vector<RequestRecord>& requests,
                                  const PhaseTimes& phases);

}  // namespace chaosdrill::reports
