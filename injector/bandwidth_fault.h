// network.bandwidth: a token-bucket rate limit on one interface's egress, as a tbf qdisc
// under chaosdrill's own handle (cd01:), applied through libnl-route (no tc). Needs root.
#pragma once

#include <memory>

#include "injector/fault.h"
#include "injector/netlink_client.h"

namespace chaosdrill::injector {

class BandwidthFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override;
  PreflightResult Preflight() const override;
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override;
  absl::Status RevertFromRecord(const nlohmann::json& record) const override;

  // Create with an explicit client (tests use a fake; the benchmark reuses one).
  static absl::StatusOr<FaultPtr> CreateWithClient(const FaultSpec& spec,
                                                   std::unique_ptr<NetlinkClient> client);
  static absl::Status RevertFromRecordWithClient(const nlohmann::json& record,
                                                 NetlinkClient& client);
};

}  // namespace chaosdrill::injector
