#include "reference/gateway_replica_pool.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace chaosdrill::reference {
namespace {

OutlierOptions MakeOutlierOptions(const GatewayOptions& o) {
  return OutlierOptions{.consecutive_failures = o.consecutive_failures,
                        .base_ejection_ns = int64_t{o.base_ejection_ms} * 1'000'000,
                        .max_ejection_ns = int64_t{o.max_ejection_ms} * 1'000'000,
                        .max_ejection_percent = o.max_ejection_percent};
}

}  // namespace

ReplicaPool::ReplicaPool(const GatewayOptions& options, Metrics& metrics, Clock& clock)
    : options_(options),
      metrics_(metrics),
      clock_(clock),
      outlier_(MakeOutlierOptions(options), static_cast<int>(options.replicas.size())) {
  for (const std::string& address : options.replicas) {
    auto r = std::make_unique<Replica>();
    r->address = address;
    grpc::ChannelArguments args;
    // Reconnect quickly after a replica restarts (the default backoff grows to minutes).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    r->channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    r->stub = inference::GRPCInferenceService::NewStub(r->channel);
    replicas_.push_back(std::move(r));
  }
  absl::MutexLock lock(&mu_);
  PublishLocked(clock_.NowNanos());
}

bool ReplicaPool::IsReplicaFailure(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
      return true;
    default:
      return false;
  }
}

TryOutcome ReplicaPool::Classify(grpc::StatusCode code, bool deadline_capped) {
  if (code == grpc::StatusCode::CANCELLED) return TryOutcome::kNeutral;
  if (code == grpc::StatusCode::DEADLINE_EXCEEDED && deadline_capped) return TryOutcome::kNeutral;
  return IsReplicaFailure(code) ? TryOutcome::kFailure : TryOutcome::kSuccess;
}

int ReplicaPool::InRotationLocked(int64_t now_ns) const {
  int count = 0;
  for (int i = 0; i < size(); ++i) count += RoutableLocked(i, now_ns, /*panic=*/false);
  return count;
}

bool ReplicaPool::PanicLocked(int64_t now_ns) const {
  if (options_.panic_threshold_percent <= 0) return false;
  return InRotationLocked(now_ns) * 100 < options_.panic_threshold_percent * size();
}

bool ReplicaPool::RoutableLocked(int i, int64_t now_ns, bool panic) const {
  return replicas_[i]->healthy && (panic || !outlier_.IsEjected(i, now_ns));
}

int ReplicaPool::RoutableCountLocked(int64_t now_ns) const {
  const bool panic = PanicLocked(now_ns);
  int count = 0;
  for (int i = 0; i < size(); ++i) count += RoutableLocked(i, now_ns, panic);
  return count;
}

int ReplicaPool::Acquire(const std::vector<int>& exclude) {
  absl::MutexLock lock(&mu_);
  const int64_t now = clock_.NowNanos();
  const int n = size();
  int best = -1;
  const uint64_t start = next_++;
  const bool panic = PanicLocked(now);
  for (int k = 0; k < n; ++k) {
    const int i = static_cast<int>((start + k) % n);
    if (!RoutableLocked(i, now, panic)) continue;
    bool excluded = false;
    for (int e : exclude) excluded |= e == i;
    if (excluded) continue;
    if (best < 0 || replicas_[i]->outstanding < replicas_[best]->outstanding) best = i;
  }
  if (best >= 0) {
    if (panic && outlier_.IsEjected(best, now)) {
      metrics_.Add("chaosdrill_gateway_panic_routed_total", {{"replica", address(best)}});
    }
    ++replicas_[best]->outstanding;
    metrics_.Set("chaosdrill_gateway_replica_outstanding", {{"replica", address(best)}},
                 replicas_[best]->outstanding);
  }
  return best;
}

void ReplicaPool::Release(int i, TryOutcome outcome) {
  int64_t detection = 0;
  bool ejected = false;
  bool panic = false;
  {
    absl::MutexLock lock(&mu_);
    const int64_t now = clock_.NowNanos();
    --replicas_[i]->outstanding;
    metrics_.Set("chaosdrill_gateway_replica_outstanding", {{"replica", address(i)}},
                 replicas_[i]->outstanding);
    if (outcome == TryOutcome::kFailure) {
      ejected = outlier_.RecordFailure(i, now, &detection);
    } else if (outcome == TryOutcome::kSuccess) {
      outlier_.RecordSuccess(i);
    }
    if (ejected) {
      PublishLocked(now);
      panic = PanicLocked(now);
    }
  }
  if (ejected) {
    metrics_.Add("chaosdrill_gateway_ejections_total", {{"replica", address(i)}});
    RecordDetection(i, "outlier", detection);
    LogWarn(
        "gateway",
        absl::StrCat("ejected replica ", address(i), " after ", options_.consecutive_failures,
                     " consecutive failures",
                     panic ? absl::StrCat("; panic (fewer than ", options_.panic_threshold_percent,
                                          "% of the replicas in rotation): still routing to "
                                          "every replica that passes its health checks")
                           : ""));
  }
}

void ReplicaPool::RecordProbe(int i, bool pass, const std::string& why) {
  int64_t detection = -1;
  bool became_healthy = false;
  {
    absl::MutexLock lock(&mu_);
    Replica& r = *replicas_[i];
    const int64_t now = clock_.NowNanos();
    if (pass) {
      r.fail_streak = 0;
      ++r.pass_streak;
      // The very first probe decides at once (as Envoy does at startup); later a replica
      // must pass `rise` probes in a row to come back.
      if (!r.healthy && (!r.probed || r.pass_streak >= options_.rise)) {
        r.healthy = true;
        became_healthy = true;
      }
    } else {
      r.pass_streak = 0;
      if (r.fail_streak == 0) r.first_probe_failure_ns = now;
      ++r.fail_streak;
      if (r.healthy && r.fail_streak >= options_.fall) {
        r.healthy = false;
        detection = now - r.first_probe_failure_ns;
      }
    }
    r.probed = true;
    PublishLocked(now);
  }
  if (became_healthy) LogInfo("gateway", absl::StrCat("replica ", address(i), " is healthy"));
  if (detection >= 0) {
    metrics_.Add("chaosdrill_gateway_unhealthy_transitions_total", {{"replica", address(i)}});
    RecordDetection(i, "health", detection);
    LogWarn("gateway", absl::StrCat("replica ", address(i), " is unhealthy: ", why));
  }
}

void ReplicaPool::RecordDetection(int i, const char* by, int64_t ns) {
  const Metrics::Labels labels = {{"replica", address(i)}, {"by", by}};
  const double seconds = static_cast<double>(ns) / 1e9;
  metrics_.Add("chaosdrill_gateway_detection_seconds_sum", labels, seconds);
  metrics_.Add("chaosdrill_gateway_detection_seconds_count", labels, 1);
  metrics_.Set("chaosdrill_gateway_last_detection_seconds", labels, seconds);
}

void ReplicaPool::PublishLocked(int64_t now_ns) {
  const bool panic = PanicLocked(now_ns);
  for (int i = 0; i < size(); ++i) {
    const Metrics::Labels labels = {{"replica", address(i)}};
    metrics_.Set("chaosdrill_gateway_replica_healthy", labels, replicas_[i]->healthy ? 1 : 0);
    metrics_.Set("chaosdrill_gateway_replica_ejected", labels,
                 outlier_.IsEjected(i, now_ns) ? 1 : 0);
    metrics_.Set("chaosdrill_gateway_replica_routable", labels,
                 RoutableLocked(i, now_ns, panic) ? 1 : 0);
  }
  metrics_.Set("chaosdrill_gateway_panic", {}, panic ? 1 : 0);
}

void ReplicaPool::RefreshGauges() {
  absl::MutexLock lock(&mu_);
  PublishLocked(clock_.NowNanos());
}

bool ReplicaPool::Routable(int i) const {
  absl::ReaderMutexLock lock(&mu_);
  const int64_t now = clock_.NowNanos();
  return RoutableLocked(i, now, PanicLocked(now));
}

int ReplicaPool::RoutableCount() const {
  absl::ReaderMutexLock lock(&mu_);
  return RoutableCountLocked(clock_.NowNanos());
}

bool ReplicaPool::Panic() const {
  absl::ReaderMutexLock lock(&mu_);
  return PanicLocked(clock_.NowNanos());
}

bool ReplicaPool::WaitForRoutable(int n, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  auto enough = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return RoutableCountLocked(clock_.NowNanos()) >= n;
  };
  absl::MutexLock lock(&mu_);
  // Health changes wake the wait; ejections expire with time, so it also rechecks every
  // 20 ms.
  while (!mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Milliseconds(20))) {
    if (absl::Now() >= deadline) return false;
  }
  return true;
}

}  // namespace chaosdrill::reference
