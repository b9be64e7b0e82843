// The narrow interface through which network.partition touches nftables: run a batch of
// JSON commands (atomically, as one transaction) and read a table back as JSON.
// RealNftablesClient uses libnftables in-process (no exec of nft); tests use a recording
// fake (tests/injector/network_fakes.h).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chaosdrill::injector {

// Maps libnftables' error text ("Error: Could not process rule: Operation not permitted")
// to an absl code (Operation not permitted -> PermissionDenied, No such file or directory
// -> NotFound, Device or resource busy -> FailedPrecondition, File exists ->
// AlreadyExists, Cannot allocate memory -> ResourceExhausted, syntax/parse errors ->
// InvalidArgument) and words it "context: <first error line>".
absl::Status NftStatus(absl::string_view context, absl::string_view error_text);

// Each call opens its own libnftables context, so it acts in the network namespace of the
// calling thread. Not thread-safe across calls that must be ordered; libnftables
// serialises transactions in the kernel.
class NftablesClient {
 public:
  NftablesClient() = default;
  NftablesClient(const NftablesClient&) = delete;
  NftablesClient& operator=(const NftablesClient&) = delete;
  virtual ~NftablesClient() = default;

  // Runs {"nftables": [commands...]} as one transaction: all or nothing.
  virtual absl::Status Run(const nlohmann::json& commands) = 0;
  // The table as `nft -j list table FAMILY NAME` prints it, or nullopt when it does not
  // exist. Rule objects carry their "handle".
  virtual absl::StatusOr<std::optional<nlohmann::json>> ListTable(absl::string_view family,
                                                                  absl::string_view name) = 0;
};

std::unique_ptr<NftablesClient> NewRealNftablesClient();

}  // namespace chaosdrill::injector
