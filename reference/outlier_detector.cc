#include "reference/outlier_detector.h"

#include <algorithm>

namespace chaosdrill::reference {

OutlierDetector::OutlierDetector(OutlierOptions options, int replicas)
    : options_(options), state_(replicas) {}

void OutlierDetector::RecordSuccess(int replica) { state_[replica].consecutive = 0; }

bool OutlierDetector::RecordFailure(int replica, int64_t now_ns, int64_t* detection_ns) {
  State& s = state_[replica];
  if (IsEjected(replica, now_ns)) return false;  // a late answer from before the ejection
  if (s.ejected_until_ns != 0) {
    s.ejected_until_ns = 0;  // the last ejection is over: start a fresh streak
    s.consecutive = 0;
  }
  if (s.consecutive == 0) s.first_failure_ns = now_ns;
  ++s.consecutive;
  if (s.consecutive < options_.consecutive_failures) return false;
  const int n = static_cast<int>(state_.size());
  const int allowed =
      std::max(options_.max_ejection_percent > 0 ? 1 : 0, n * options_.max_ejection_percent / 100);
  if (EjectedCount(now_ns) >= allowed) return false;
  ++s.times_ejected;
  int64_t duration = options_.base_ejection_ns;
  for (int k = 1; k < s.times_ejected && duration < options_.max_ejection_ns; ++k) duration *= 2;
  duration = std::min(duration, options_.max_ejection_ns);
  s.ejected_until_ns = now_ns + duration;
  s.consecutive = 0;
  if (detection_ns != nullptr) *detection_ns = now_ns - s.first_failure_ns;
  return true;
}

bool OutlierDetector::IsEjected(int replica, int64_t now_ns) const {
  return state_[replica].ejected_until_ns != 0 && now_ns < state_[replica].ejected_until_ns;
}

int OutlierDetector::EjectedCount(int64_t now_ns) const {
  int count = 0;
  for (int i = 0; i < static_cast<int>(state_.size()); ++i) count += IsEjected(i, now_ns);
  return count;
}

}  // namespace chaosdrill::reference
