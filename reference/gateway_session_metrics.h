// A gRPC server interceptor that counts the gateway's SessionService answers into Metrics
// (chaosdrill_gateway_session_requests_total{method,code,replication}); an acknowledged
// append is method="Append", code="OK". Counting at the gateway's gRPC boundary keeps the
// session service itself free of metrics plumbing.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>

#include "reference/metrics.h"

namespace chaosdrill::reference {

// Counts only methods of services whose full name starts with "/chaosdrill.reference.v1.".
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeSessionMetricsInterceptorFactory(Metrics& metrics, const std::string& replication);

// The gRPC code's canonical name ("OK", "UNAVAILABLE", ...).
const char* GrpcCodeName(grpc::StatusCode code);

}  // namespace chaosdrill::reference
