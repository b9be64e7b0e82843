// OutlierDetector: passive outlier ejection as Istio/Envoy do it. Every finished request
// to a replica is reported; `consecutive_failures` failures in a row eject the replica
// for base_ejection * 2^(k-1) (k = how many times it has been ejected), capped at
// max_ejection. When the time is up it is eligible again (it still has to be healthy to
// be routed) and its failure streak starts from zero. At most max_ejection_percent of the
// replicas are ejected at once (at least one may always be ejected when that is > 0).
// Pure logic on caller-supplied monotonic nanoseconds; not thread-safe (the replica pool
// holds the lock).
#pragma once

#include <cstdint>
#include <vector>

namespace chaosdrill::reference {

struct OutlierOptions {
  int consecutive_failures = 3;
  int64_t base_ejection_ns = 2'000'000'000;
  int64_t max_ejection_ns = 30'000'000'000;
  int max_ejection_percent = 100;
};

class OutlierDetector {
 public:
  OutlierDetector(OutlierOptions options, int replicas);

  void RecordSuccess(int replica);
  // Returns true when this failure ejected the replica. `detection_ns` then holds the time
  // from the first failure of the streak to the ejection.
  bool RecordFailure(int replica, int64_t now_ns, int64_t* detection_ns = nullptr);
  bool IsEjected(int replica, int64_t now_ns) const;
  int times_ejected(int replica) const { return state_[replica].times_ejected; }
  int64_t ejected_until_ns(int replica) const { return state_[replica].ejected_until_ns; }

 private:
  struct State {
    int consecutive = 0;
    int64_t first_failure_ns = 0;
    int64_t ejected_until_ns = 0;  // 0: not ejected
    int times_ejected = 0;
  };
  int EjectedCount(int64_t now_ns) const;

  const OutlierOptions options_;
  std::vector<State> state_;
};

}  // namespace chaosdrill::reference
