#include "injector/proxy_manager.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace chaosdrill::injector {

ProxyManager& ProxyManager::Global() {
  static ProxyManager* manager = new ProxyManager();
  return *manager;
}

ProxyManager::~ProxyManager() {
  absl::MutexLock lock(&mu_);
  entries_.clear();
}

void ProxyManager::ReapFinishedLocked() {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.rules.empty() && it->second.proxy->finished()) {
      it = entries_.erase(it);  // joins the (exited) loop thread
    } else {
      ++it;
    }
  }
}

absl::StatusOr<uint64_t> ProxyManager::Add(const ProxyAddress& listen, const ProxyAddress& upstream,
                                           std::shared_ptr<const ProxyEffect> effect) {
  absl::MutexLock lock(&mu_);
  ReapFinishedLocked();
  const std::string key = listen.ToString();
  const std::string upstream_key = upstream.ToString();
  auto it = entries_.find(key);
  if (it != entries_.end() && !it->second.rules.empty() && it->second.upstream != upstream_key) {
    return absl::FailedPreconditionError(
        absl::StrCat("proxy on ", key, " already forwards to ", it->second.upstream,
                     "; every fault on one listen address must name the same upstream (got ",
                     upstream_key, ")"));
  }
  if (it != entries_.end() && it->second.rules.empty()) {
    // Draining after its last fault: listen again (or replace it if it just finished).
    absl::Status status = it->second.proxy->Listen(upstream);
    if (absl::IsFailedPrecondition(status)) {
      entries_.erase(it);
      it = entries_.end();
    } else if (!status.ok()) {
      return status;
    } else {
      it->second.upstream = upstream_key;
    }
  }
  if (it == entries_.end()) {
    ASSIGN_OR_RETURN(std::unique_ptr<TcpProxy> proxy, TcpProxy::Start(listen, upstream));
    it = entries_.emplace(key, Entry{std::move(proxy), upstream_key, {}}).first;
  }
  Entry& entry = it->second;
  const uint64_t id = next_rule_id_++;
  std::vector<ProxyRule> rules = entry.rules;
  rules.push_back(ProxyRule{id, std::move(effect)});
  absl::Status status = entry.proxy->SetRules(rules);
  if (!status.ok()) {
    if (entry.rules.empty()) {
      (void)entry.proxy->StopListening();
    }
    return Annotate(status, absl::StrCat("adding a fault to the proxy on ", key));
  }
  entry.rules = std::move(rules);
  return id;
}

absl::Status ProxyManager::Remove(const ProxyAddress& listen, uint64_t rule_id) {
  absl::MutexLock lock(&mu_);
  const std::string key = listen.ToString();
  auto it = entries_.find(key);
  if (it == entries_.end()) return absl::OkStatus();
  Entry& entry = it->second;
  std::vector<ProxyRule> rules;
  bool found = false;
  for (const ProxyRule& rule : entry.rules) {
    if (rule.id == rule_id) {
      found = true;
    } else {
      rules.push_back(rule);
    }
  }
  if (!found) return absl::OkStatus();
  RETURN_IF_ERROR(Annotate(entry.proxy->SetRules(rules),
                           absl::StrCat("removing a fault from the proxy on ", key)));
  entry.rules = std::move(rules);
  if (entry.rules.empty()) {
    RETURN_IF_ERROR(Annotate(entry.proxy->StopListening(),
                             absl::StrCat("stopping the proxy listener on ", key)));
    if (entry.proxy->listening()) {
      return absl::InternalError(absl::StrCat("proxy on ", key, " still listens after stop"));
    }
  }
  ReapFinishedLocked();
  return absl::OkStatus();
}

bool ProxyManager::Listening(const ProxyAddress& listen) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(listen.ToString());
  return it != entries_.end() && it->second.proxy->listening();
}

size_t ProxyManager::RuleCount(const ProxyAddress& listen) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(listen.ToString());
  return it == entries_.end() ? 0 : it->second.rules.size();
}

std::optional<TcpProxyStats> ProxyManager::Stats(const ProxyAddress& listen) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(listen.ToString());
  if (it == entries_.end()) return std::nullopt;
  return it->second.proxy->stats();
}

}  // namespace chaosdrill::injector
