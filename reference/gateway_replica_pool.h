// ReplicaPool: the gateway's view of its replicas: one gRPC channel each, the number of
// requests outstanding on each, active health state (set by the HealthChecker with
// rise/fall thresholds) and passive outlier ejection (OutlierDetector). Picks the
// routable replica with the fewest outstanding requests, ties broken round-robin.
// Routable: healthy and not ejected; but in panic (fewer than panic_threshold_percent of
// the replicas routable so), healthy alone: a passive ejection never takes out the last
// replicas the active checks still pass, while a replica failing its active checks is
// never routed to. Publishes per-replica gauges, the panic gauge and the detection times
// into Metrics. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "reference/gateway.h"
#include "reference/metrics.h"
#include "reference/outlier_detector.h"

namespace chaosdrill::reference {

// What a finished try says about the replica that served it (outlier detection).
enum class TryOutcome {
  kSuccess,  // the replica answered (any code that is not a replica failure)
  kFailure,  // a replica failure: feeds the consecutive-failure streak, may be retried
  kNeutral,  // says nothing about the replica: the try was cancelled (the client went
             // away), or it ran out of a deadline the client or the gateway's overall
             // deadline imposed, shorter than the per-try timeout
};

class ReplicaPool {
 public:
  ReplicaPool(const GatewayOptions& options, Metrics& metrics, Clock& clock);
  ReplicaPool(const ReplicaPool&) = delete;
  ReplicaPool& operator=(const ReplicaPool&) = delete;

  int size() const { return static_cast<int>(replicas_.size()); }
  const std::string& address(int i) const { return replicas_[i]->address; }
  inference::GRPCInferenceService::Stub& stub(int i) const { return *replicas_[i]->stub; }

  // The routable replica with the fewest outstanding requests, not in `exclude`; -1 when
  // there is none. Counts the request as outstanding until Release.
  int Acquire(const std::vector<int>& exclude);
  // Ends a request started by Acquire; a kFailure feeds outlier detection, a kSuccess
  // resets the replica's failure streak, a kNeutral does neither.
  void Release(int i, TryOutcome outcome);
  // Result of one active health probe; `why` says what failed.
  void RecordProbe(int i, bool pass, const std::string& why);

  bool Routable(int i) const;
  int RoutableCount() const;
  // Whether the pool is in panic now (see the class comment).
  bool Panic() const;
  // Blocks until at least `n` replicas are routable or `timeout` passes.
  bool WaitForRoutable(int n, absl::Duration timeout) const;
  // Re-publishes the time-dependent gauges (ejections expire with time).
  void RefreshGauges();

  // Codes that count as a replica failure (and may be retried elsewhere).
  static bool IsReplicaFailure(grpc::StatusCode code);
  // The outcome of a try that ended with `code`. `deadline_capped`: the try's deadline
  // was the client's (or the overall) deadline, shorter than the per-try timeout, so a
  // DEADLINE_EXCEEDED is the client's impatience, not the replica's fault.
  static TryOutcome Classify(grpc::StatusCode code, bool deadline_capped);

 private:
  struct Replica {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<inference::GRPCInferenceService::Stub> stub;
    int outstanding = 0;
    bool healthy = false;  // unknown counts as unhealthy until the first probe passes
    bool probed = false;
    int pass_streak = 0;
    int fail_streak = 0;
    int64_t first_probe_failure_ns = 0;
  };
  // Replicas healthy and not ejected (routable outside panic).
  int InRotationLocked(int64_t now_ns) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool PanicLocked(int64_t now_ns) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool RoutableLocked(int i, int64_t now_ns, bool panic) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int RoutableCountLocked(int64_t now_ns) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Publishes every replica's gauges and the panic gauge (panic is a property of all).
  void PublishLocked(int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordDetection(int i, const char* by, int64_t ns);

  const GatewayOptions options_;
  Metrics& metrics_;
  Clock& clock_;
  std::vector<std::unique_ptr<Replica>> replicas_;  // fixed after construction
  mutable absl::Mutex mu_;
  OutlierDetector outlier_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;  // round-robin start for ties
};

}  // namespace chaosdrill::reference
