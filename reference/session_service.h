// The gRPC SessionService (proto/chaosdrill/reference/v1/session.proto) backed by a
// SessionStore; the gateway hosts it next to the inference service. Status codes: a
// store that cannot be reached or cannot confirm a sync write gives UNAVAILABLE (retry);
// an empty session name gives INVALID_ARGUMENT.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/status/statusor.h"
#include "reference/session_store.h"

namespace chaosdrill::reference {

// Validates the options (InvalidArgument when no sentinel is given or replication is not
// async|sync); connects lazily on the first call. The service is thread-safe.
absl::StatusOr<std::unique_ptr<grpc::Service>> CreateSessionService(
    const SessionStoreOptions& options);

}  // namespace chaosdrill::reference
