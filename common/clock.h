// Time sources. Every observation in a drill is CLOCK_MONOTONIC nanoseconds; code that
// waits or timestamps takes a Clock& so tests can drive time by hand.
#pragma once

#include <cstdint>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace chaosdrill {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic nanoseconds since an arbitrary epoch (boot, for the real clock).
  virtual int64_t NowNanos() const = 0;
  // Blocks until NowNanos() >= deadline_nanos. Thread-safe.
  virtual void SleepUntil(int64_t deadline_nanos) = 0;
};

// CLOCK_MONOTONIC. Thread-safe; one process-wide instance is enough.
class MonotonicClock final : public Clock {
 public:
  int64_t NowNanos() const override;
  void SleepUntil(int64_t deadline_nanos) override;
  static MonotonicClock& Get();
};

// A clock that moves only when told to. SleepUntil advances time to the deadline
// immediately (a test never waits on wall time). Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_nanos = 0) : now_(start_nanos) {}
  int64_t NowNanos() const override;
  void SleepUntil(int64_t deadline_nanos) override;
  void Advance(absl::Duration d);
  void Set(int64_t now_nanos);

 private:
  mutable std::mutex mu_;
  int64_t now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chaosdrill
