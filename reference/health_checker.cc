#include "reference/health_checker.h"

#include <pthread.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "reference/model_codec.h"

namespace chaosdrill::reference {

struct HealthChecker::Probe {
  grpc::ClientContext ready_context;
  inference::ServerReadyRequest ready_request;
  inference::ServerReadyResponse ready_response;
  grpc::ClientContext infer_context;
  inference::ModelInferResponse infer_response;
};

HealthChecker::HealthChecker(HealthCheckOptions options, ReplicaPool& pool)
    : options_(std::move(options)),
      pool_(pool),
      golden_request_(MakeInferRequest(options_.model_name, options_.input_spec,
                                       options_.golden_input, /*raw=*/true)) {
  {
    absl::MutexLock lock(&mu_);
    in_flight_.resize(pool_.size());
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "health-check");
    Loop();
  });
}

HealthChecker::~HealthChecker() {
  stop_.Notify();
  thread_.join();
  absl::MutexLock lock(&mu_);
  for (auto& p : in_flight_) {
    if (p != nullptr) {
      p->ready_context.TryCancel();
      p->infer_context.TryCancel();
    }
  }
  auto idle = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (auto& p : in_flight_) {
      if (p != nullptr) return false;
    }
    return true;
  };
  mu_.Await(absl::Condition(&idle));
}

void HealthChecker::Loop() {
  do {
    for (int i = 0; i < pool_.size(); ++i) StartProbe(i);
    pool_.RefreshGauges();
  } while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(options_.interval_ms)));
}

void HealthChecker::StartProbe(int i) {
  Probe* probe = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (in_flight_[i] != nullptr) return;  // the last probe has not finished yet
    in_flight_[i] = std::make_unique<Probe>();
    probe = in_flight_[i].get();
  }
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  probe->ready_context.set_deadline(deadline);
  pool_.stub(i).async()->ServerReady(
      &probe->ready_context, &probe->ready_request, &probe->ready_response,
      [this, i, probe](grpc::Status status) {
        if (!status.ok()) {
          return FinishProbe(i, false,
                             absl::StrCat("ServerReady failed: ", status.error_message()));
        }
        if (!probe->ready_response.ready()) return FinishProbe(i, false, "ServerReady: not ready");
        if (!options_.deep_probe) return FinishProbe(i, true, "");
        probe->infer_context.set_deadline(std::chrono::system_clock::now() +
                                          std::chrono::milliseconds(options_.timeout_ms));
        pool_.stub(i).async()->ModelInfer(
            &probe->infer_context, &golden_request_, &probe->infer_response,
            [this, i, probe](grpc::Status status) {
              if (!status.ok()) {
                return FinishProbe(
                    i, false,
                    absl::StrCat("golden inference failed: ", status.error_message(),
                                 status.error_code() == grpc::StatusCode::INVALID_ARGUMENT
                                     ? " (do the gateway's model width/depth/seed match the "
                                       "replicas'?)"
                                     : ""));
              }
              absl::StatusOr<std::vector<float>> out = DecodeOutput(probe->infer_response);
              if (!out.ok()) return FinishProbe(i, false, std::string(out.status().message()));
              if (!MatchesGolden(*out, options_.golden_output)) {
                return FinishProbe(i, false,
                                   "golden inference returned a wrong answer (or the gateway's "
                                   "model seed differs from the replica's)");
              }
              FinishProbe(i, true, "");
            });
      });
}

void HealthChecker::FinishProbe(int i, bool pass, const std::string& why) {
  // A probe cancelled because we are stopping says nothing about the replica.
  if (!stop_.HasBeenNotified()) pool_.RecordProbe(i, pass, why);
  absl::MutexLock lock(&mu_);
  in_flight_[i].reset();
}

}  // namespace chaosdrill::reference
