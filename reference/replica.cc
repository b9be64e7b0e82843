#include "reference/replica.h"

#include <grpcpp/grpcpp.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "common/version.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "reference/admin_socket.h"
#include "reference/degrade_mode.h"
#include "reference/model_codec.h"
#include "reference/model_factory.h"
#include "reference/ready_file.h"
#include "reference/termination_signal.h"

namespace chaosdrill::reference {

// The OIP service (callback API), the model, the inference queue and its workers, and the
// replica's run-time state.
class ReplicaImpl final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit ReplicaImpl(ReplicaOptions options) : options_(std::move(options)) {}
  ~ReplicaImpl() override { Shutdown(); }

  absl::Status Start();
  void Shutdown();
  void Wait() { shutdown_.WaitForNotification(); }
  bool WaitReady(int timeout_ms) {
    return ready_note_.WaitForNotificationWithTimeout(absl::Milliseconds(timeout_ms));
  }
  const std::string& address() const { return address_; }

  absl::Status SetDegrade(const std::string& name) {
    ASSIGN_OR_RETURN(DegradeMode mode, ParseDegradeMode(name));
    degrade_.store(static_cast<int>(mode));
    LogInfo("replica", absl::StrCat(address_, ": degrade mode now ", DegradeModeName(mode)));
    return absl::OkStatus();
  }
  std::string degrade() const { return DegradeModeName(mode()); }

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return Reply(context, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    response->set_ready(ready_.load(std::memory_order_acquire));
    return Reply(context, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    response->set_ready(ready_.load(std::memory_order_acquire) &&
                        request->name() == options_.model);
    return Reply(context, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) override {
    response->set_name("chaosdrill-replica");
    response->set_version(kVersion);
    return Reply(context, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    if (request->name() != options_.model) return Reply(context, UnknownModel(request->name()));
    if (!ready_.load(std::memory_order_acquire)) return Reply(context, NotReady());
    FillModelMetadata(model_->info(), response);
    return Reply(context, grpc::Status::OK);
  }
  // Queues the inference for a worker (or refuses it: not ready, queue full, stopping).
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override;

 private:
  // One inference waiting for a worker; the pointers live until reactor->Finish.
  struct Job {
    grpc::CallbackServerContext* context;
    const inference::ModelInferRequest* request;
    inference::ModelInferResponse* response;
    grpc::ServerUnaryReactor* reactor;
  };
  static grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context,
                                         const grpc::Status& status) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }
  // Runs one inference (on a worker thread).
  grpc::Status Infer(grpc::CallbackServerContext* context,
                     const inference::ModelInferRequest* request,
                     inference::ModelInferResponse* response);
  void WorkerLoop();
  void StopWorkers();
  DegradeMode mode() const { return static_cast<DegradeMode>(degrade_.load()); }
  grpc::Status UnknownModel(const std::string& name) const {
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("unknown model '", name, "'; this replica serves '", options_.model, "'"));
  }
  static grpc::Status NotReady() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "model is not ready yet");
  }
  void WarmUp();
  std::string AdminCommand(const std::string& line);

  const ReplicaOptions options_;
  std::string address_;
  std::unique_ptr<Model> model_;  // written once by WarmUp before ready_ is set
  std::atomic<bool> ready_{false};
  std::atomic<int> degrade_{0};
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<AdminSocket> admin_;
  std::thread warmup_;
  std::vector<std::thread> workers_;
  absl::Mutex queue_mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool workers_stop_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool queue_full_logged_ ABSL_GUARDED_BY(queue_mu_) = false;
  absl::Notification stopping_;
  absl::Notification ready_note_;
  absl::Notification shutdown_;
  std::atomic<bool> shut_{false};
};

grpc::ServerUnaryReactor* ReplicaImpl::ModelInfer(grpc::CallbackServerContext* context,
                                                  const inference::ModelInferRequest* request,
                                                  inference::ModelInferResponse* response) {
  if (request->model_name() != options_.model) {
    return Reply(context, UnknownModel(request->model_name()));
  }
  if (!ready_.load(std::memory_order_acquire)) return Reply(context, NotReady());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  size_t queued = 0;
  bool log_full = false;
  bool stopping = false;
  {
    absl::MutexLock lock(&queue_mu_);
    stopping = workers_stop_;
    if (!stopping && queue_.size() < static_cast<size_t>(options_.max_queue)) {
      queue_.push_back(Job{context, request, response, reactor});
      return reactor;
    }
    queued = queue_.size();
    log_full = !stopping && !queue_full_logged_;
    queue_full_logged_ = queue_full_logged_ || log_full;
  }
  if (stopping) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "replica shutting down"));
    return reactor;
  }
  if (log_full) {
    LogWarn("replica", absl::StrCat(address_, ": ", queued,
                                    " inferences queued (max_queue): refusing more with "
                                    "RESOURCE_EXHAUSTED (logged once)"));
  }
  reactor->Finish(grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      absl::StrCat("replica overloaded: ", queued, " inferences already queued (max_queue ",
                   options_.max_queue, ")")));
  return reactor;
}

void ReplicaImpl::WorkerLoop() {
  while (true) {
    Job job{};
    {
      absl::MutexLock lock(&queue_mu_);
      auto ready = [this]()
                       ABSL_NO_THREAD_SAFETY_ANALYSIS { return !queue_.empty() || workers_stop_; };
      queue_mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, nothing left
      job = queue_.front();
      queue_.pop_front();
    }
    // A caller that gave up while its inference waited gets no model time: a replica
    // catching up after a stall skips the work nobody waits for any more.
    grpc::Status status;
    if (job.context->IsCancelled()) {
      status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled while queued");
    } else if (job.context->deadline() <= std::chrono::system_clock::now()) {
      status = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed while queued");
    } else {
      status = Infer(job.context, job.request, job.response);
    }
    job.reactor->Finish(status);
  }
}

void ReplicaImpl::StopWorkers() {
  {
    absl::MutexLock lock(&queue_mu_);
    workers_stop_ = true;
  }
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

grpc::Status ReplicaImpl::Infer(grpc::CallbackServerContext* context,
                                const inference::ModelInferRequest* request,
                                inference::ModelInferResponse* response) {
  const DegradeMode m = mode();
  if (m == DegradeMode::kErrors) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "replica degraded: errors mode");
  }
  if (m == DegradeMode::kSlow) {
    // The added latency is the injected fault itself; give up early if the caller did.
    const absl::Time until = absl::Now() + absl::Milliseconds(options_.slow_delay_ms);
    while (absl::Now() < until && !context->IsCancelled() && !stopping_.HasBeenNotified()) {
      absl::SleepFor(std::min(absl::Milliseconds(10), until - absl::Now()));
    }
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }
  absl::StatusOr<DecodedInput> input = DecodeInput(*request, model_->info());
  if (!input.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(input.status().message()));
  }
  absl::StatusOr<std::vector<float>> output = model_->Infer(input->values, input->batch);
  if (!output.ok()) {
    return grpc::Status(static_cast<grpc::StatusCode>(output.status().code()),
                        std::string(output.status().message()));
  }
  if (m == DegradeMode::kWrongAnswers) {
    for (float& v : *output) v += 1.0f;
  }
  EncodeOutput(model_->info(), *request, *output, input->batch, input->raw, response);
  return grpc::Status::OK;
}

absl::Status ReplicaImpl::Start() {
  ASSIGN_OR_RETURN(DegradeMode initial, ParseDegradeMode(options_.degrade));
  degrade_.store(static_cast<int>(initial));
  if (options_.threads < 1 || options_.threads > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica threads must be in [1, 256], got ", options_.threads));
  }
  if (options_.max_queue < 1 || options_.max_queue > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica max_queue must be in [1, 100000], got ", options_.max_queue));
  }
  // Build the model up front so a bad option fails Start; the warm-up inference (and the
  // readiness it gates) runs once the server is already answering probes.
  ModelOptions model_options{.name = options_.model,
                             .device = options_.device,
                             .width = options_.width,
                             .depth = options_.depth,
                             .seed = options_.seed};
  ASSIGN_OR_RETURN(model_, CreateModel(model_options));

  for (int i = 0; i < options_.threads; ++i) {
    workers_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "replica-infer");
      WorkerLoop();
    });
  }
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("replica could not listen on ", options_.listen));
  }
  const std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
  address_ = absl::StrCat(host, ":", port);

  if (!options_.admin_socket.empty()) {
    absl::StatusOr<std::unique_ptr<AdminSocket>> admin = AdminSocket::Start(
        options_.admin_socket, [this](const std::string& line) { return AdminCommand(line); });
    if (!admin.ok()) {
      server_->Shutdown();
      server_.reset();
      return admin.status();
    }
    admin_ = *std::move(admin);
  }
  warmup_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "replica-warmup");
    WarmUp();
  });
  return absl::OkStatus();
}

void ReplicaImpl::WarmUp() {
  if (options_.warmup_delay_ms > 0 &&
      stopping_.WaitForNotificationWithTimeout(absl::Milliseconds(options_.warmup_delay_ms))) {
    return;
  }
  absl::StatusOr<std::vector<float>> out = model_->Infer(model_->golden_input(), 1);
  if (!out.ok() || !MatchesGolden(*out, model_->golden_output())) {
    LogError("replica",
             absl::StrCat(address_, ": warm-up inference failed: ",
                          out.ok() ? "output differs from golden" : out.status().ToString()));
    return;  // stays not ready
  }
  ready_.store(true, std::memory_order_release);
  ready_note_.Notify();
  LogInfo("replica", absl::StrCat(address_, ": ready (", options_.model, " on ", options_.device,
                                  ", width ", options_.width, ", depth ", options_.depth, ")"));
  if (!options_.ready_file.empty()) {
    if (absl::Status s = WriteReadyFile(options_.ready_file, address_); !s.ok()) {
      LogError("replica", s.ToString());
    }
  }
}

std::string ReplicaImpl::AdminCommand(const std::string& line) {
  std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (words.size() == 2 && words[0] == "degrade") {
    if (absl::Status s = SetDegrade(words[1]); !s.ok()) {
      return absl::StrCat("error ", s.message());
    }
    return absl::StrCat("ok degrade=", degrade());
  }
  if (words.size() == 1 && words[0] == "status") {
    return absl::StrCat("ok ready=", ready_.load() ? 1 : 0, " degrade=", degrade(),
                        " model=", options_.model, " device=", options_.device,
                        " address=", address_);
  }
  return "error unknown command (try: degrade <none|wrong-answers|errors|slow>, status)";
}

void ReplicaImpl::Shutdown() {
  if (shut_.exchange(true)) return;
  stopping_.Notify();
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  if (warmup_.joinable()) warmup_.join();
  admin_.reset();
  if (server_ != nullptr) server_->Wait();
  // Every call has finished once the server is down, so the queue is empty: the workers
  // stay up until then to answer what was queued.
  StopWorkers();
  shutdown_.Notify();
}

Replica::Replica(std::unique_ptr<ReplicaImpl> impl) : impl_(std::move(impl)) {}
Replica::~Replica() { impl_->Shutdown(); }

absl::StatusOr<std::unique_ptr<Replica>> Replica::Start(const ReplicaOptions& options) {
  auto impl = std::make_unique<ReplicaImpl>(options);
  RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Replica>(new Replica(std::move(impl)));
}

const std::string& Replica::address() const { return impl_->address(); }
absl::Status Replica::SetDegrade(const std::string& mode) { return impl_->SetDegrade(mode); }
std::string Replica::degrade() const { return impl_->degrade(); }
void Replica::Shutdown() { impl_->Shutdown(); }
void Replica::Wait() { impl_->Wait(); }
bool Replica::WaitReady(int timeout_ms) { return impl_->WaitReady(timeout_ms); }

absl::Status RunReplica(const ReplicaOptions& options) {
  TerminationSignals signals;
  ASSIGN_OR_RETURN(std::unique_ptr<Replica> replica, Replica::Start(options));
  LogInfo("replica", absl::StrCat("serving on ", replica->address()));
  const int sig = signals.Wait();
  LogInfo("replica", absl::StrCat("signal ", sig, ": shutting down"));
  replica->Shutdown();
  return absl::OkStatus();
}

}  // namespace chaosdrill::reference
