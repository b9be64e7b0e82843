#include "reference/gateway_retry_budget.h"

#include <algorithm>
#include <numeric>

namespace chaosdrill::reference {
namespace {
constexpr int64_t kSlotNs = 100'000'000;
}

RetryBudget::RetryBudget(double ratio, int min_per_second, Clock& clock)
    : ratio_(ratio), min_per_second_(min_per_second), clock_(clock) {
  absl::MutexLock lock(&mu_);
  slot_start_ns_ = clock_.NowNanos();
}

void RetryBudget::Roll(int64_t now_ns) {
  int steps = 0;
  while (now_ns - slot_start_ns_ >= kSlotNs && steps < kSlots) {
    current_ = (current_ + 1) % kSlots;
    requests_[current_] = 0;
    retries_[current_] = 0;
    slot_start_ns_ += kSlotNs;
    ++steps;
  }
  if (now_ns - slot_start_ns_ >= kSlotNs) slot_start_ns_ = now_ns;  // long idle gap
}

void RetryBudget::RecordRequest() {
  absl::MutexLock lock(&mu_);
  Roll(clock_.NowNanos());
  ++requests_[current_];
}

bool RetryBudget::TryRetry() {
  absl::MutexLock lock(&mu_);
  Roll(clock_.NowNanos());
  const int requests = std::accumulate(requests_.begin(), requests_.end(), 0);
  const int retries = std::accumulate(retries_.begin(), retries_.end(), 0);
  const double allowed = std::max(static_cast<double>(min_per_second_), ratio_ * requests);
  if (retries >= allowed) return false;
  ++retries_[current_];
  return true;
}

}  // namespace chaosdrill::reference
