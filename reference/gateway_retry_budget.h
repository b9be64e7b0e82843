// RetryBudget: bounds retries so they cannot multiply load during an outage (as Envoy's
// and Linkerd's retry budgets do). Over a sliding window of one second, a retry is allowed
// while retries < max(min_per_second, ratio * requests). Thread-safe.
#pragma once

#include <array>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace chaosdrill::reference {

class RetryBudget {
 public:
  RetryBudget(double ratio, int min_per_second, Clock& clock);

  void RecordRequest();
  // Consumes one retry from the budget; false when the budget is spent.
  bool TryRetry();

 private:
  static constexpr int kSlots = 10;  // 100 ms slots
  void Roll(int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const double ratio_;
  const int min_per_second_;
  Clock& clock_;
  absl::Mutex mu_;
  int64_t slot_start_ns_ ABSL_GUARDED_BY(mu_) = 0;
  int current_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<int, kSlots> requests_ ABSL_GUARDED_BY(mu_){};
  std::array<int, kSlots> retries_ ABSL_GUARDED_BY(mu_){};
};

}  // namespace chaosdrill::reference
