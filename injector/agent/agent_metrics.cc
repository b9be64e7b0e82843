#include "injector/agent/agent_metrics.h"

#include "absl/strings/str_cat.h"

namespace chaosdrill::agent {

void AgentMetrics::Injected(const std::string& kind) {
  absl::MutexLock lock(&mu_);
  PerKind& k = kinds_[kind];
  ++k.injected;
  ++k.active;
}
void AgentMetrics::InjectFailed(const std::string& kind) {
  absl::MutexLock lock(&mu_);
  ++kinds_[kind].inject_failed;
}
void AgentMetrics::Reverted(const std::string& kind) {
  absl::MutexLock lock(&mu_);
  PerKind& k = kinds_[kind];
  ++k.reverted;
  --k.active;
}
void AgentMetrics::RevertFailed(const std::string& kind) {
  absl::MutexLock lock(&mu_);
  ++kinds_[kind].revert_failed;
}
void AgentMetrics::LeaseExpired(const std::string& kind) {
  absl::MutexLock lock(&mu_);
  ++kinds_[kind].expired;
}
void AgentMetrics::Refused(const std::string& rule) {
  absl::MutexLock lock(&mu_);
  ++refusals_[rule];
}

std::string AgentMetrics::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
    for (const auto& [kind, k] : kinds_) {
      absl::StrAppend(&out, name, "{kind=\"", kind, "\"} ", value(k), "\n");
    }
  };
  family("chaosdrill_agent_faults_injected_total", "counter", "Faults applied.",
         [](const PerKind& k) { return k.injected; });
  family("chaosdrill_agent_faults_active", "gauge", "Faults applied and not yet reverted.",
         [](const PerKind& k) { return k.active; });
  family("chaosdrill_agent_faults_reverted_total", "counter", "Faults reverted (verified).",
         [](const PerKind& k) { return k.reverted; });
  family("chaosdrill_agent_faults_failed_total", "counter",
         "Injections that failed (nothing left applied).",
         [](const PerKind& k) { return k.inject_failed; });
  family("chaosdrill_agent_revert_failures_total", "counter",
         "Revert attempts that failed (retried).",
         [](const PerKind& k) { return k.revert_failed; });
  family("chaosdrill_agent_lease_expiries_total", "counter",
         "Faults reverted because their lease was not renewed.",
         [](const PerKind& k) { return k.expired; });
  absl::StrAppend(&out,
                  "# HELP chaosdrill_agent_refusals_total Requests refused, by rule.\n"
                  "# TYPE chaosdrill_agent_refusals_total counter\n");
  for (const auto& [rule, n] : refusals_) {
    absl::StrAppend(&out, "chaosdrill_agent_refusals_total{rule=\"", rule, "\"} ", n, "\n");
  }
  return out;
}

}  // namespace chaosdrill::agent
