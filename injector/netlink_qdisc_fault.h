// What network.netem and network.bandwidth share: one qdisc of ours, under our own fixed
// handle, on one interface (at the root, or under a class given as `parent`). Inject
// refuses to replace a root qdisc somebody else configured and verifies by re-reading
// that the qdisc is there; Revert deletes only a qdisc with our handle and our kind and
// verifies it is gone. Deleting our root qdisc gives the interface back its default one.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "injector/fault.h"
#include "injector/netlink_client.h"

namespace chaosdrill::injector {

// Handles chaosdrill uses: "cd00:" for netem, "cd01:" for tbf. Distinctive so a qdisc we
// did not create is never mistaken for ours.
inline constexpr uint32_t kNetemHandle = 0xcd000000u;
inline constexpr uint32_t kTbfHandle = 0xcd010000u;

// Where a qdisc fault lives; the part of its revert record that Revert needs.
struct QdiscPlacement {
  std::string fault_kind;  // "network.netem"
  std::string qdisc_kind;  // "netem"
  std::string interface;
  uint32_t parent = kTcRoot;
  uint32_t handle = 0;

  nlohmann::json ToRecord() const;
  static absl::StatusOr<QdiscPlacement> FromRecord(const nlohmann::json& record,
                                                   absl::string_view expected_kind,
                                                   absl::string_view expected_qdisc);
};

// Removes the qdisc described by `where` if (and only if) it is there with our handle and
// kind; OK when it is already gone or the interface no longer exists. Verifies by
// re-reading.
absl::Status RevertQdisc(NetlinkClient& client, const QdiscPlacement& where);

class QdiscFault : public Fault {
 public:
  QdiscFault(QdiscPlacement where, QdiscRequest request, std::string description,
             std::unique_ptr<NetlinkClient> client);

  absl::Status Inject() override;
  absl::Status Revert() override;
  nlohmann::json RevertRecord() const override;
  std::string Describe() const override { return description_; }

 private:
  absl::Status InjectOnce();

  const QdiscPlacement where_;
  QdiscRequest request_;
  const std::string description_;
  std::unique_ptr<NetlinkClient> client_;
};

// Parameter helpers shared by the network kinds (netem, bandwidth, partition).
// Rejects parameters the kind does not take, missing required ones and values that fail
// their ParamSpec type, as InvalidArgument "<kind>: <param>: <why>".
absl::Status CheckSpecParams(const FaultSpec& spec, const FaultKindInfo& info);
// The value as given, or the ParamSpec's default ("" when neither).
std::string ParamOrDefault(const FaultSpec& spec, const FaultKindInfo& info,
                           absl::string_view name);
absl::Status ValidateInterfaceName(absl::string_view name);
// Whether this process holds CAP_NET_ADMIN (root usually does).
bool HasCapNetAdmin();
// Preflight shared by the qdisc kinds: root (CAP_NET_ADMIN) and the kernel module.
PreflightResult QdiscPreflight(absl::string_view qdisc_kind);

}  // namespace chaosdrill::injector
