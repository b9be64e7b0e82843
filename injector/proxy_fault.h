// The proxy.* fault kinds (latency, jitter, bandwidth, reset, blackhole, slicer): each
// fault is one rule on the userspace TCP proxy that ProxyManager runs on the fault's
// `listen` address in front of its `upstream`. Clients must be pointed at `listen`; the
// proxy runs inside the process that applied the fault (the agent or `chaosdrill
// inject`), needs no root, and several faults on one listen address compose.
//
// Revert removes the rule; the last rule's revert closes the listener (open connections
// drain unshaped). The revert record names the owning process (pid and start time):
// after that process is gone its proxy is gone with it and there is nothing to undo;
// while it is alive, only it can revert its rules.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "injector/fault.h"
#include "injector/proxy_address.h"
#include "injector/proxy_effect.h"
#include "injector/proxy_manager.h"

namespace chaosdrill::injector {

class ProxyFault final : public Fault {
 public:
  // `manager` outlives the fault (ProxyManager::Global() for faults made by factories).
  ProxyFault(std::string kind, ProxyAddress listen, ProxyAddress upstream,
             std::shared_ptr<const ProxyEffect> effect, ProxyManager* manager);

  absl::Status Inject() override;
  absl::Status Revert() override;
  nlohmann::json RevertRecord() const override;
  std::string Describe() const override;

  const ProxyAddress& listen() const { return listen_; }
  const ProxyEffect& effect() const { return *effect_; }

 private:
  const std::string kind_;
  const ProxyAddress listen_;
  const ProxyAddress upstream_;
  const std::shared_ptr<const ProxyEffect> effect_;
  ProxyManager* const manager_;
  std::optional<uint64_t> rule_id_;
};

// Undoes a proxy fault from its revert record (shared by every proxy.* factory): removes
// the rule when this process owns it; OK when the owner is gone; FailedPrecondition when
// another live process owns it.
absl::Status RevertProxyFaultFromRecord(const nlohmann::json& record);

}  // namespace chaosdrill::injector
