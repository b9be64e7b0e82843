// HealthChecker: the gateway's active health checks. Every interval it probes each
// replica (concurrently, with the callback gRPC API, one probe per replica in flight):
// ServerReady must say ready and, when the deep probe is on, a ModelInfer of the golden
// input must return the golden output (within kGoldenTolerance). Results go to the
// ReplicaPool, which applies the rise/fall thresholds. With the deep probe off the check
// is readiness-only, which is exactly what lets a gray (wrong-answers) replica stay in.
// One named thread ("health-check") schedules the probes.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "inference/grpc_predict_v2.pb.h"
#include "reference/gateway_replica_pool.h"
#include "reference/model.h"

namespace chaosdrill::reference {

struct HealthCheckOptions {
  int interval_ms = 500;
  int timeout_ms = 250;
  bool deep_probe = true;
  std::string model_name = "tiny-mlp";
  TensorSpec input_spec;
  std::vector<float> golden_input;
  std::vector<float> golden_output;
};

class HealthChecker {
 public:
  // Starts probing at once.
  HealthChecker(HealthCheckOptions options, ReplicaPool& pool);
  ~HealthChecker();  // stops scheduling and waits for probes in flight (bounded by timeout)
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

 private:
  struct Probe;
  void Loop();
  void StartProbe(int i);
  void FinishProbe(int i, bool pass, const std::string& why);

  const HealthCheckOptions options_;
  ReplicaPool& pool_;
  const inference::ModelInferRequest golden_request_;
  absl::Notification stop_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Probe>> in_flight_ ABSL_GUARDED_BY(mu_);  // per replica
  std::thread thread_;
};

}  // namespace chaosdrill::reference
