#include "common/clock.h"

#include <time.h>

#include <algorithm>
#include <cerrno>

namespace chaosdrill {

int64_t MonotonicClock::NowNanos() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void MonotonicClock::SleepUntil(int64_t deadline_nanos) {
  timespec ts{.tv_sec = static_cast<time_t>(deadline_nanos / 1'000'000'000),
              .tv_nsec = static_cast<long>(deadline_nanos % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

MonotonicClock& MonotonicClock::Get() {
  static MonotonicClock clock;
  return clock;
}

int64_t ManualClock::NowNanos() const {
  std::lock_guard lock(mu_);
  return now_;
}

void ManualClock::SleepUntil(int64_t deadline_nanos) {
  std::lock_guard lock(mu_);
  now_ = std::max(now_, deadline_nanos);
}

void ManualClock::Advance(absl::Duration d) {
  std::lock_guard lock(mu_);
  now_ += absl::ToInt64Nanoseconds(d);
}

void ManualClock::Set(int64_t now_nanos) {
  std::lock_guard lock(mu_);
  now_ = now_nanos;
}

}  // namespace chaosdrill
