// Names of the parts of the reference inference service that faults can target:
// "gateway", "replica[i]", "store.primary", "store.replica", "sentinel[i]", "store.link"
// (the store's replication link, a proxy: proxy.* faults only), and the families
// "replica" and "sentinel" (pick some with target.count / target.percent).
// The runner resolves a Role to pids, ports and addresses through the reference
// service's topology file.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chaosdrill::scenarios {

// The reference service runs this many sentinels (DESIGN §6).
inline constexpr int kReferenceSentinels = 3;

struct Role {
  enum class Kind { kGateway, kReplica, kStorePrimary, kStoreReplica, kSentinel, kStoreLink };
  Kind kind = Kind::kGateway;
  std::optional<int> index;  // replica[i] / sentinel[i]; empty for a whole family

  // True for "replica" and "sentinel" without an index: several processes match.
  bool is_family() const { return !index && (kind == Kind::kReplica || kind == Kind::kSentinel); }
  std::string ToString() const;
  friend bool operator==(const Role&, const Role&) = default;
};

// Parses the syntax only; InvalidArgument says what forms are accepted. Whether an index
// exists depends on the scenario (see CheckRoleExists).
absl::StatusOr<Role> ParseRole(absl::string_view text);

// OK when `role` exists in a reference service with `replicas` replicas; otherwise
// OutOfRange naming the valid indices.
absl::Status CheckRoleExists(const Role& role, int replicas);

}  // namespace chaosdrill::scenarios
