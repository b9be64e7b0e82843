// Synthetic RunRecords for the report tests: small hand-built ones for golden output, and
// a realistic drill (open-loop load with an outage per fault, session writes with a lost
// tail) for the HTML screenshot, round trips, history and merge.
#pragma once

#include <cstdint>
#include <string>

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
};
RunRecord SyntheticDrill(const DrillShape& shape);

// A record with nothing in it but the required fields.
RunRecord EmptyRecord();

}  // namespace chaosdrill::reports::testing
