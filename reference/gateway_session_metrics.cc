#include "reference/gateway_session_metrics.h"

#include "absl/strings/match.h"

namespace chaosdrill::reference {
namespace {

constexpr char kPrefix[] = "/chaosdrill.reference.v1.";

class SessionMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  SessionMetricsInterceptor(Metrics& metrics, std::string method, std::string replication)
      : metrics_(metrics), method_(std::move(method)), replication_(std::move(replication)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_.Add("chaosdrill_gateway_session_requests_total",
                   {{"method", method_},
                    {"code", GrpcCodeName(methods->GetSendStatus().error_code())},
                    {"replication", replication_}});
    }
    methods->Proceed();
  }

 private:
  Metrics& metrics_;
  const std::string method_;
  const std::string replication_;
};

class SessionMetricsFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  SessionMetricsFactory(Metrics& metrics, std::string replication)
      : metrics_(metrics), replication_(std::move(replication)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const std::string full = info->method() == nullptr ? "" : info->method();
    if (!absl::StartsWith(full, kPrefix)) return nullptr;
    return new SessionMetricsInterceptor(metrics_, full.substr(full.rfind('/') + 1), replication_);
  }

 private:
  Metrics& metrics_;
  const std::string replication_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeSessionMetricsInterceptorFactory(Metrics& metrics, const std::string& replication) {
  return std::make_unique<SessionMetricsFactory>(metrics, replication);
}

const char* GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN_CODE";
  }
}

}  // namespace chaosdrill::reference
