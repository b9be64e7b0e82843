#include "reference/gateway.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "common/version.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "reference/gateway_replica_pool.h"
#include "reference/gateway_retry_budget.h"
#include "reference/gateway_session_metrics.h"
#include "reference/health_checker.h"
#include "reference/metrics.h"
#include "reference/metrics_http_server.h"
#include "reference/ready_file.h"
#include "reference/session_service.h"
#include "reference/termination_signal.h"
#include "reference/tiny_mlp.h"

namespace chaosdrill::reference {
namespace {

using Stub = inference::GRPCInferenceService::Stub;
using SystemTime = std::chrono::system_clock::time_point;

const char* CodeName(grpc::StatusCode code) { return GrpcCodeName(code); }

absl::Status ValidateOptions(const GatewayOptions& o) {
  if (o.replicas.empty()) return absl::InvalidArgumentError("gateway needs at least one replica");
  auto positive = [](int v, const char* name) -> absl::Status {
    if (v < 1) return absl::InvalidArgumentError(absl::StrCat(name, " must be >= 1, got ", v));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(positive(o.threads, "threads"));
  RETURN_IF_ERROR(positive(o.health_interval_ms, "health interval"));
  RETURN_IF_ERROR(positive(o.health_timeout_ms, "health timeout"));
  RETURN_IF_ERROR(positive(o.rise, "rise"));
  RETURN_IF_ERROR(positive(o.fall, "fall"));
  RETURN_IF_ERROR(positive(o.consecutive_failures, "consecutive failures"));
  RETURN_IF_ERROR(positive(o.base_ejection_ms, "base ejection time"));
  RETURN_IF_ERROR(positive(o.max_tries, "max tries"));
  RETURN_IF_ERROR(positive(o.per_try_timeout_ms, "per-try timeout"));
  RETURN_IF_ERROR(positive(o.overall_timeout_ms, "overall timeout"));
  if (o.max_ejection_ms < o.base_ejection_ms) {
    return absl::InvalidArgumentError("max ejection time must be >= base ejection time");
  }
  if (o.panic_threshold_percent < 0 || o.panic_threshold_percent > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("panic threshold must be a percentage in [0, 100] (0: off), got ",
                     o.panic_threshold_percent));
  }
  if (o.retry_budget_ratio < 0 || o.retry_budget_ratio > 1) {
    return absl::InvalidArgumentError("retry budget ratio must be in [0, 1]");
  }
  if (o.replication != "async" && o.replication != "sync") {
    return absl::InvalidArgumentError(
        absl::StrCat("replication must be async or sync, got '", o.replication, "'"));
  }
  return absl::OkStatus();
}

void DescribeMetrics(Metrics& m) {
  using T = Metrics::Type;
  m.Describe("chaosdrill_gateway_requests_total", T::kCounter,
             "Requests received by the gateway, by method.");
  m.Describe("chaosdrill_gateway_responses_total", T::kCounter,
             "Responses sent by the gateway, by method and gRPC code.");
  m.Describe("chaosdrill_gateway_retries_total", T::kCounter,
             "Tries beyond the first, sent to another replica.");
  m.Describe("chaosdrill_gateway_retry_budget_exhausted_total", T::kCounter,
             "Failed tries not retried because the retry budget was spent.");
  m.Describe("chaosdrill_gateway_replica_requests_total", T::kCounter,
             "Tries sent to each replica, by gRPC code of the answer.");
  m.Describe("chaosdrill_gateway_ejections_total", T::kCounter,
             "Passive outlier ejections of each replica.");
  m.Describe("chaosdrill_gateway_unhealthy_transitions_total", T::kCounter,
             "Times each replica was marked unhealthy by active health checks.");
  m.Describe("chaosdrill_gateway_replica_healthy", T::kGauge,
             "1 when the replica passes active health checks.");
  m.Describe("chaosdrill_gateway_replica_ejected", T::kGauge,
             "1 while the replica is ejected by outlier detection.");
  m.Describe("chaosdrill_gateway_replica_routable", T::kGauge,
             "1 when the gateway routes to the replica (healthy and not ejected).");
  m.Describe("chaosdrill_gateway_replica_outstanding", T::kGauge,
             "Requests in flight to the replica.");
  m.Describe("chaosdrill_gateway_detection_seconds_sum", T::kCounter,
             "Sum of detection times (first failure to ejection/unhealthy), by replica and "
             "by=outlier|health.");
  m.Describe("chaosdrill_gateway_detection_seconds_count", T::kCounter,
             "Number of detections, by replica and by=outlier|health.");
  m.Describe("chaosdrill_gateway_last_detection_seconds", T::kGauge,
             "The latest detection time, by replica and by=outlier|health.");
  m.Describe("chaosdrill_gateway_routable_replicas", T::kGauge,
             "Replicas the gateway routes to now.");
  m.Describe("chaosdrill_gateway_panic", T::kGauge,
             "1 while fewer than the panic threshold's share of replicas are healthy and not "
             "ejected: ejections are then ignored (replicas failing health checks stay out).");
  m.Describe("chaosdrill_gateway_panic_routed_total", T::kCounter,
             "Tries sent to an ejected replica because the gateway was in panic.");
  m.Describe("chaosdrill_gateway_session_requests_total", T::kCounter,
             "SessionService answers by method and gRPC code; Append with code OK is an "
             "acknowledged session write.");
}

}  // namespace

class GatewayImpl final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit GatewayImpl(GatewayOptions options)
      : options_(std::move(options)),
        clock_(MonotonicClock::Get()),
        budget_(options_.retry_budget_ratio, options_.retry_min_per_second, clock_) {}
  ~GatewayImpl() override { Shutdown(); }

  absl::Status Start();
  void Shutdown();
  void Wait() { shutdown_.WaitForNotification(); }
  const std::string& address() const { return address_; }
  const std::string& metrics_address() const { return metrics_address_; }
  Metrics& metrics() { return metrics_; }
  ReplicaPool& pool() { return *pool_; }

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return Done(context, "ServerLive", grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    response->set_ready(pool_->RoutableCount() > 0);
    return Done(context, "ServerReady", grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) override {
    response->set_name("chaosdrill-gateway");
    response->set_version(kVersion);
    return Done(context, "ServerMetadata", grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    return Forward(context, "ModelReady", request, response,
                   [](Stub& s, grpc::ClientContext* c, const inference::ModelReadyRequest* q,
                      inference::ModelReadyResponse* r, std::function<void(grpc::Status)> f) {
                     s.async()->ModelReady(c, q, r, std::move(f));
                   });
  }
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    return Forward(context, "ModelMetadata", request, response,
                   [](Stub& s, grpc::ClientContext* c, const inference::ModelMetadataRequest* q,
                      inference::ModelMetadataResponse* r, std::function<void(grpc::Status)> f) {
                     s.async()->ModelMetadata(c, q, r, std::move(f));
                   });
  }
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override {
    return Forward(context, "ModelInfer", request, response,
                   [](Stub& s, grpc::ClientContext* c, const inference::ModelInferRequest* q,
                      inference::ModelInferResponse* r, std::function<void(grpc::Status)> f) {
                     s.async()->ModelInfer(c, q, r, std::move(f));
                   });
  }

 private:
  // One client request being forwarded, across its tries.
  template <typename Req, typename Resp>
  struct Call {
    using Invoke = std::function<void(Stub&, grpc::ClientContext*, const Req*, Resp*,
                                      std::function<void(grpc::Status)>)>;
    grpc::CallbackServerContext* server_context;
    grpc::ServerUnaryReactor* reactor;
    const char* method;
    const Req* request;
    Resp* response;
    Invoke invoke;
    SystemTime deadline;
    std::vector<int> tried;
    std::unique_ptr<grpc::ClientContext> try_context;
    std::unique_ptr<Resp> try_response;
    grpc::Status last_status;
  };

  grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const char* method,
                                 const grpc::Status& status) {
    metrics_.Add("chaosdrill_gateway_requests_total", {{"method", method}});
    metrics_.Add("chaosdrill_gateway_responses_total",
                 {{"method", method}, {"code", CodeName(status.error_code())}});
    auto* reactor = context->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }

  template <typename Req, typename Resp, typename Invoke>
  grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* context, const char* method,
                                    const Req* request, Resp* response, Invoke invoke) {
    metrics_.Add("chaosdrill_gateway_requests_total", {{"method", method}});
    budget_.RecordRequest();
    auto call = std::make_shared<Call<Req, Resp>>();
    call->server_context = context;
    call->reactor = context->DefaultReactor();
    call->method = method;
    call->request = request;
    call->response = response;
    call->invoke = std::move(invoke);
    const SystemTime now = std::chrono::system_clock::now();
    const SystemTime own = now + std::chrono::milliseconds(options_.overall_timeout_ms);
    call->deadline = std::min(own, context->deadline());
    {
      absl::MutexLock lock(&mu_);
      ++in_flight_;
    }
    StartTry(call);
    return call->reactor;
  }

  template <typename Req, typename Resp>
  void StartTry(const std::shared_ptr<Call<Req, Resp>>& call) {
    const int i = pool_->Acquire(call->tried);
    if (i < 0) {
      if (call->tried.empty()) {
        call->last_status =
            grpc::Status(grpc::StatusCode::UNAVAILABLE, "gateway: no healthy replica");
      }
      return Finish(call, call->last_status);
    }
    call->tried.push_back(i);
    // The try is a child of the client's call: when the client cancels (or its deadline
    // passes), gRPC cancels the try in flight on the replica too.
    call->try_context = grpc::ClientContext::FromCallbackServerContext(*call->server_context);
    const SystemTime per_try =
        std::chrono::system_clock::now() + std::chrono::milliseconds(options_.per_try_timeout_ms);
    // A try cut short by the client's (or the overall) deadline says nothing about the
    // replica if it runs out of time: only the per-try timeout is the replica's to meet.
    const bool capped = call->deadline < per_try;
    call->try_context->set_deadline(std::min(call->deadline, per_try));
    call->try_response = std::make_unique<Resp>();
    call->invoke(pool_->stub(i), call->try_context.get(), call->request, call->try_response.get(),
                 [this, call, i, capped](grpc::Status status) {
                   OnTryDone(call, i, capped, std::move(status));
                 });
  }

  template <typename Req, typename Resp>
  void OnTryDone(const std::shared_ptr<Call<Req, Resp>>& call, int i, bool capped,
                 grpc::Status status) {
    const TryOutcome outcome = ReplicaPool::Classify(status.error_code(), capped);
    pool_->Release(i, outcome);
    metrics_.Add("chaosdrill_gateway_replica_requests_total",
                 {{"replica", pool_->address(i)}, {"code", CodeName(status.error_code())}});
    if (status.ok()) {
      call->response->Swap(call->try_response.get());
      return Finish(call, status);
    }
    call->last_status =
        grpc::Status(status.error_code(),
                     absl::StrCat("replica ", pool_->address(i), ": ", status.error_message()));
    const bool retryable = outcome == TryOutcome::kFailure &&
                           static_cast<int>(call->tried.size()) < options_.max_tries &&
                           std::chrono::system_clock::now() < call->deadline &&
                           !call->server_context->IsCancelled() && !stopping_;
    if (!retryable) return Finish(call, call->last_status);
    if (!budget_.TryRetry()) {
      metrics_.Add("chaosdrill_gateway_retry_budget_exhausted_total");
      return Finish(call, call->last_status);
    }
    metrics_.Add("chaosdrill_gateway_retries_total");
    StartTry(call);
  }

  template <typename Req, typename Resp>
  void Finish(const std::shared_ptr<Call<Req, Resp>>& call, const grpc::Status& status) {
    metrics_.Add("chaosdrill_gateway_responses_total",
                 {{"method", call->method}, {"code", CodeName(status.error_code())}});
    call->reactor->Finish(status);
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }

  const GatewayOptions options_;
  Clock& clock_;
  Metrics metrics_;
  RetryBudget budget_;
  std::unique_ptr<ReplicaPool> pool_;
  std::unique_ptr<HealthChecker> health_;
  std::unique_ptr<grpc::Service> session_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  std::string address_;
  std::string metrics_address_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> shut_{false};
  absl::Notification shutdown_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

absl::Status GatewayImpl::Start() {
  RETURN_IF_ERROR(ValidateOptions(options_));
  DescribeMetrics(metrics_);
  // The deep probe's golden pair comes from the same deterministic model the replicas
  // serve (same width, depth and seed).
  const TinyMlpOptions mlp{
      .width = options_.model_width, .depth = options_.model_depth, .seed = options_.model_seed};
  ASSIGN_OR_RETURN(std::unique_ptr<TinyMlp> model, TinyMlp::Create(mlp));

  pool_ = std::make_unique<ReplicaPool>(options_, metrics_, clock_);
  if (!options_.store_sentinels.empty()) {
    SessionStoreOptions store;
    store.sentinels = options_.store_sentinels;
    store.master_name = options_.store_master_name;
    store.replication = options_.replication;
    ASSIGN_OR_RETURN(session_service_, CreateSessionService(store));
  }

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(this);
  if (session_service_ != nullptr) {
    builder.RegisterService(session_service_.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> icpt;
    icpt.push_back(MakeSessionMetricsInterceptorFactory(metrics_, options_.replication));
    builder.experimental().SetInterceptorCreators(std::move(icpt));
  }
  grpc::ResourceQuota quota("gateway");
  quota.SetMaxThreads(options_.threads + 2);
  builder.SetResourceQuota(quota);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("gateway could not listen on ", options_.listen));
  }
  address_ = absl::StrCat(options_.listen.substr(0, options_.listen.rfind(':')), ":", port);

  if (!options_.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
        MetricsHttpServer::Start(options_.metrics_listen, [this] {
          pool_->RefreshGauges();  // ejections expire and panic ends with time
          metrics_.Set("chaosdrill_gateway_routable_replicas", {}, pool_->RoutableCount());
          return metrics_.RenderText();
        });
    if (!http.ok()) {
      Shutdown();
      return Annotate(http.status(), "starting the gateway's metrics endpoint");
    }
    metrics_http_ = *std::move(http);
    metrics_address_ = metrics_http_->address();
  }

  HealthCheckOptions health{.interval_ms = options_.health_interval_ms,
                            .timeout_ms = options_.health_timeout_ms,
                            .deep_probe = options_.deep_probe,
                            .model_name = model->info().name,
                            .input_spec = model->info().input,
                            .golden_input = model->golden_input(),
                            .golden_output = model->golden_output()};
  health_ = std::make_unique<HealthChecker>(std::move(health), *pool_);
  LogInfo("gateway", absl::StrCat("serving on ", address_, " for ", options_.replicas.size(),
                                  " replicas", options_.deep_probe ? " (deep probe on)" : ""));
  if (!options_.ready_file.empty()) {
    // Ready means listening; ServerReady tells whether any replica is routable yet.
    RETURN_IF_ERROR(WriteReadyFile(options_.ready_file, address_));
  }
  return absl::OkStatus();
}

void GatewayImpl::Shutdown() {
  if (shut_.exchange(true)) return;
  stopping_ = true;
  health_.reset();
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
  }
  {
    // Client calls end within their deadlines; wait for their callbacks.
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return in_flight_ == 0; };
    mu_.AwaitWithTimeout(absl::Condition(&idle),
                         absl::Milliseconds(options_.overall_timeout_ms + 1000));
  }
  metrics_http_.reset();
  shutdown_.Notify();
}

Gateway::Gateway(std::unique_ptr<GatewayImpl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() { impl_->Shutdown(); }

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(const GatewayOptions& options) {
  auto impl = std::make_unique<GatewayImpl>(options);
  RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

const std::string& Gateway::address() const { return impl_->address(); }
const std::string& Gateway::metrics_address() const { return impl_->metrics_address(); }
Metrics& Gateway::metrics() { return impl_->metrics(); }
int Gateway::RoutableReplicas() const { return impl_->pool().RoutableCount(); }
bool Gateway::WaitForRoutable(int n, int timeout_ms) const {
  return impl_->pool().WaitForRoutable(n, absl::Milliseconds(timeout_ms));
}
void Gateway::Shutdown() { impl_->Shutdown(); }
void Gateway::Wait() { impl_->Wait(); }

absl::Status RunGateway(const GatewayOptions& options) {
  TerminationSignals signals;
  ASSIGN_OR_RETURN(std::unique_ptr<Gateway> gateway, Gateway::Start(options));
  const int sig = signals.Wait();
  LogInfo("gateway", absl::StrCat("signal ", sig, ": shutting down"));
  gateway->Shutdown();
  return absl::OkStatus();
}

}  // namespace chaosdrill::reference
