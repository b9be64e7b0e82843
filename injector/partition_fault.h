// network.partition: drops traffic to/from CIDRs and/or ports, in one or both directions,
// all of it or a random share (`loss`, via nftables `numgen random`, so no netem needed).
// Applied with libnftables JSON commands in table `inet chaosdrill`: each fault owns two
// base chains of its own ("cd-<id>-in" on the input hook, "cd-<id>-out" on output), so its
// revert deletes exactly its chains and rules, and the table only when nothing else is
// left in it. With `interface`, Inject first checks that the interface exists (NotFound
// naming it). Needs root.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "injector/fault.h"
#include "injector/netlink_client.h"
#include "injector/nftables_client.h"

namespace chaosdrill::injector {

inline constexpr absl::string_view kNftFamily = "inet";
inline constexpr absl::string_view kNftTable = "chaosdrill";

// The validated settings of one partition.
struct PartitionSettings {
  std::vector<std::string> ipv4;  // normalised "10.0.0.0/8" or "10.1.2.3"
  std::vector<std::string> ipv6;
  std::vector<std::pair<int, int>> ports;  // inclusive ranges
  bool ingress = true;
  bool egress = true;
  std::string protocol = "any";  // tcp | udp | any
  double loss_percent = 100;
  std::string interface;  // empty: every interface
  std::string id;         // 8 hex digits, names the chains and the rule comments

  std::string InputChain() const { return "cd-" + id + "-in"; }
  std::string OutputChain() const { return "cd-" + id + "-out"; }
  std::string Comment() const { return "chaosdrill:" + id; }
};

// Parses the spec; InvalidArgument names the field ("network.partition: cidrs: ...").
absl::StatusOr<PartitionSettings> ParsePartitionSpec(const FaultSpec& spec);

// The single transaction that creates the table (if absent), our chains and our rules.
nlohmann::json PartitionApplyCommands(const PartitionSettings& settings);
// How many rules PartitionApplyCommands adds (Inject verifies the count by reading back).
int PartitionRuleCount(const PartitionSettings& settings);

// Deletes the chains named in `chains` from table inet chaosdrill, then the table if it is
// left empty; verifies by reading back. OK when already gone.
absl::Status RevertPartitionChains(NftablesClient& client, const std::vector<std::string>& chains);

class PartitionFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override;
  PreflightResult Preflight() const override;
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override;
  absl::Status RevertFromRecord(const nlohmann::json& record) const override;

  // `links` looks up `interface` at Inject (in the network namespace of the calling
  // thread, like `client`); nullptr means the real libnl client.
  static absl::StatusOr<FaultPtr> CreateWithClient(const FaultSpec& spec,
                                                   std::unique_ptr<NftablesClient> client,
                                                   std::unique_ptr<NetlinkClient> links = nullptr);
  static absl::Status RevertFromRecordWithClient(const nlohmann::json& record,
                                                 NftablesClient& client);
};

}  // namespace chaosdrill::injector
