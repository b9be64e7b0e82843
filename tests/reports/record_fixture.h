// Synthetic RunRecords for the report tests: small hand-built ones for golden output, and
// a realistic drill (open-loop load with an outage per fault, session writes with a lost
// tail) for the HTML screenshot, round trips, history and merge.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "reports/run_record.h"

namespace chaosdrill::reports::testing {

// A small record with fixed values: two faults (one recovered within its 3s target, one
// not), SLO verdicts, an RPO with one lost write. Names contain `<&>"'` when `nasty`.
RunRecord SmallRecord(bool nasty = false);

struct DrillShape {
  int64_t rate = 200;       // requests per second
  int64_t duration_s = 40;  // observe end
  int64_t baseline_s = 10;
  int faults = 2;  // each: 2 s outage starting at baseline + 8 s * i
  uint64_t seed = 1;
  int64_t start_offset_ns = 0;  // added to every intended time (for merge halves)
  int parity = -1;              // keep only requests with index % 2 == parity (-1: all)
  // Probe series: "ready" (every 500 ms, failing during each outage) and "replica-down"
  // (an alert probe judging kill-one, every 1 s, firing from 13 s to 16 s: time to detect
  // 13 - 10.003 = 2.997 s, within 30 s), with the probes in the scenario source.
  bool probes = false;
};
RunRecord SyntheticDrill(const DrillShape& shape);

// A record with nothing in it but the required fields.
RunRecord EmptyRecord();

// Splits one drill's data between two load-generating "runners" as `chaosdrill report
// --merge` receives them: request i goes to runner pick(i) (0 or 1), with each runner's
// send skew and request interval (`share0` of the load to runner 0); sessions ending in an
// even digit (writes, read-back, and the write interval of that share) to runner 0, odd
// to runner 1. Run ids get "-runner0"
// and "-runner1"; analyses are cleared. Both keep the faults and events.
std::pair<RunRecord, RunRecord> SplitBetweenRunners(const RunRecord& full,
                                                    const std::function<int(size_t)>& pick,
                                                    double share0);

// The same record seen by a runner whose drill clock started `by` ns later: every
// monotonic time moves by -by, the wall-clock start by +by.
void StartLater(RunRecord& r, int64_t by);

}  // namespace chaosdrill::reports::testing
