// The execution guard of a scenario (scenarios/SCHEMA.md "guard"): a daily time window in
// a time zone, optionally only on some days. A window that wraps past midnight
// ("22:00-02:00") belongs to the day it started: at 01:00 on a Saturday, a window for
// `days: [fri]` is open (it opened on Friday at 22:00).
#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "scenarios/scenario.h"

namespace chaosdrill::runner {

// OK when `now` is inside the window; FailedPrecondition saying when the window is (and
// suggesting --force) otherwise; InvalidArgument for an unknown time zone.
absl::Status CheckGuard(const scenarios::Guard& guard, absl::Time now);

}  // namespace chaosdrill::runner
