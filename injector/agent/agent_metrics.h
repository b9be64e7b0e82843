// Counters the agent exports in Prometheus text format (on `metrics_listen`, see
// MetricsHttpServer): faults injected/reverted/failed and active per kind, lease
// expiries, refusals by rule. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace chaosdrill::agent {

class AgentMetrics {
 public:
  void Injected(const std::string& kind);
  void InjectFailed(const std::string& kind);
  void Reverted(const std::string& kind);
  void RevertFailed(const std::string& kind);
  void LeaseExpired(const std::string& kind);
  void Refused(const std::string& rule);

  // The Prometheus text exposition (version 0.0.4).
  std::string Render() const;

 private:
  struct PerKind {
    uint64_t injected = 0, inject_failed = 0, reverted = 0, revert_failed = 0, expired = 0;
    int64_t active = 0;
  };
  mutable absl::Mutex mu_;
  std::map<std::string, PerKind> kinds_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> refusals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chaosdrill::agent
