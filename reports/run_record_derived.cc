#include "reports/run_record_derived.h"

namespace chaosdrill::reports {

TimeBuckets BuildTimeBuckets(const std::vector<RequestRecord>& requests) {
  TimeBuckets t;
  for (const RequestRecord& r : requests) {
    if (r.completed_ns == 0) continue;  // in flight: no outcome yet (docs/measurements.md)
    t.Add(r.intended_ns, r.code, (r.flags & RequestRecord::kTimeout) != 0,
          (r.flags & RequestRecord::kGoldenMismatch) != 0);
  }
  return t;
}

LatencyHistograms BuildHistograms(const std::vector<RequestRecord>& requests,
                                  const PhaseTimes& phases) {
  LatencyHistograms h;
  for (const RequestRecord& r : requests) {
    if (r.completed_ns == 0 || (r.flags & RequestRecord::kTimeout)) continue;
    int64_t latency = r.latency_ns();
    h.overall.Record(latency);
    if (r.intended_ns < phases.baseline_end_ns) {
      h.baseline.Record(latency);
    } else if (r.intended_ns < phases.faults_end_ns) {
      h.faults.Record(latency);
    } else {
      h.recovery.Record(latency);
    }
  }
  return h;
}

}  // namespace chaosdrill::reports
