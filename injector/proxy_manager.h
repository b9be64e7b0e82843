// The process-wide owner of running proxies, keyed by listen address, so that several
// proxy.* faults on one address compose on one running TcpProxy. The proxy starts when
// the first fault on a listen address is added and stops listening when the last one is
// removed; connections that are open then keep being forwarded, unshaped, until they
// close (a drill must not cut healthy connections when it ends), after which the loop
// thread exits and is joined on the next call. Proxies live in the process that applied
// the faults (the agent or `chaosdrill inject`): if it dies, the kernel closes every
// socket and nothing is left to undo.
//
// Thread-safe. Global() is never destroyed (no static-destruction-order surprises).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "injector/proxy_address.h"
#include "injector/proxy_effect.h"
#include "injector/tcp_proxy.h"

namespace chaosdrill::injector {

class ProxyManager {
 public:
  static ProxyManager& Global();

  ProxyManager() = default;
  ~ProxyManager();  // stops every proxy (closing its connections)
  ProxyManager(const ProxyManager&) = delete;
  ProxyManager& operator=(const ProxyManager&) = delete;

  // Adds `effect` to the proxy on `listen`, starting (binding) it if needed, and returns
  // the rule id. FailedPrecondition if faults on `listen` already forward to another
  // upstream; the bind error (EADDRINUSE...) if the address cannot be listened on.
  absl::StatusOr<uint64_t> Add(const ProxyAddress& listen, const ProxyAddress& upstream,
                               std::shared_ptr<const ProxyEffect> effect);
  // Removes a rule (OK if it is not there). The last rule's removal closes the listener
  // before returning.
  absl::Status Remove(const ProxyAddress& listen, uint64_t rule_id);

  // Whether a proxy of this manager listens on `listen` now.
  bool Listening(const ProxyAddress& listen) const;
  size_t RuleCount(const ProxyAddress& listen) const;
  std::optional<TcpProxyStats> Stats(const ProxyAddress& listen) const;

 private:
  struct Entry {
    std::unique_ptr<TcpProxy> proxy;
    std::string upstream;  // ProxyAddress::ToString of the upstream of the rules
    std::vector<ProxyRule> rules;
  };

  void ReapFinishedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_rule_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace chaosdrill::injector
