#include "common/clock.h"

#include <catch2/catch.hpp>

namespace chaosdrill {
namespace {

TEST_CASE("the monotonic clock never goes backwards and sleeps to a deadline", "[common]") {
  MonotonicClock& clock = MonotonicClock::Get();
  int64_t a = clock.NowNanos();
  clock.SleepUntil(a + 2'000'000);
  int64_t b = clock.NowNanos();
  CHECK(b >= a + 2'000'000);
}

TEST_CASE("the manual clock moves only when told to", "[common]") {
  ManualClock clock(100);
  CHECK(clock.NowNanos() == 100);
  clock.Advance(absl::Microseconds(1));
  CHECK(clock.NowNanos() == 1100);
  clock.SleepUntil(5000);
  CHECK(clock.NowNanos() == 5000);
  clock.SleepUntil(10);  // a deadline in the past does not move time back
  CHECK(clock.NowNanos() == 5000);
  clock.Set(7);
  CHECK(clock.NowNanos() == 7);
}

}  // namespace
}  // namespace chaosdrill
