// The reference gateway: the front door of the reference inference service. It serves the
// same Open Inference Protocol v2 service as a replica by forwarding to replicas, with the
// resilience machinery a production mesh has (DESIGN §6):
//   - least-outstanding-requests balancing over replicas that are healthy and not ejected;
//   - active health checks every interval: ServerReady, plus (optionally) a deep probe that
//     runs the model's golden input and compares the output; rise/fall thresholds;
//   - passive outlier ejection: N consecutive failed inferences eject a replica for
//     base_ejection * 2^(times ejected - 1), capped (as Istio's outlier detection);
//   - panic routing (Envoy's panic threshold): when fewer than panic_threshold_percent of
//     the replicas are routable (healthy and not ejected), passive ejections are ignored
//     and every replica that passes its active health checks is routed to, so ejection
//     alone never takes the last healthy replicas out (docs/reference-inference.md);
//   - retries of a failed inference on another replica within a retry budget, with a
//     per-try and an overall deadline;
//   - Prometheus text metrics on an HTTP port (/metrics);
//   - the session service (reference/session_service.h) when store sentinels are given.
// ServerReady is true iff at least one replica is routable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chaosdrill::reference {

class Metrics;

struct GatewayOptions {
  std::string listen = "127.0.0.1:0";
  std::vector<std::string> replicas;  // host:port of each replica
  // Session store (served only when store_sentinels is non-empty).
  std::vector<std::string> store_sentinels;  // host:port of each Redis sentinel
  std::string store_master_name = "chaosdrill";
  std::string replication = "async";  // "async" | "sync"
  std::string metrics_listen;         // host:port for Prometheus text (/metrics); empty = off
  std::string ready_file;             // optional: the bound address is written here once ready
  int threads = 8;                    // gRPC server threads (bounded)

  // Active health checking.
  int health_interval_ms = 500;
  int health_timeout_ms = 250;
  bool deep_probe = true;  // also run the golden inference; false = readiness only
  int rise = 2;            // consecutive passes to become healthy
  int fall = 2;            // consecutive failures to become unhealthy

  // Passive outlier ejection.
  int consecutive_failures = 3;  // failed inferences in a row that eject a replica
  int base_ejection_ms = 2000;
  int max_ejection_ms = 30000;
  int max_ejection_percent = 100;  // never eject more than this share of replicas
  // Panic threshold (percent, 0 = off): below this share of routable replicas, ejections
  // are ignored and every replica passing active health checks is routed to.
  int panic_threshold_percent = 50;

  // Retries and deadlines.
  int max_tries = 3;                // tries per request (1 = no retry)
  double retry_budget_ratio = 0.2;  // retries may add at most this share of requests...
  int retry_min_per_second = 10;    // ...but always allow this many retries per second
  int per_try_timeout_ms = 1000;
  int overall_timeout_ms = 3000;  // capped further by the client's own deadline

  // The served model's parameters, for the deep probe's golden input and output.
  int model_width = 256;
  int model_depth = 4;
  uint32_t model_seed = 42;
};

class GatewayImpl;

// An in-process gateway. Non-copyable; destruction shuts it down.
class Gateway {
 public:
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(const GatewayOptions& options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  const std::string& address() const;          // bound gRPC host:port
  const std::string& metrics_address() const;  // bound metrics host:port, "" when off
  Metrics& metrics();                          // the gateway's metrics registry
  // Number of replicas currently routable (healthy and not ejected; in panic, healthy).
  int RoutableReplicas() const;
  // Blocks until at least `n` replicas are routable; false after `timeout_ms`.
  bool WaitForRoutable(int n, int timeout_ms) const;
  void Shutdown();  // idempotent
  void Wait();

 private:
  explicit Gateway(std::unique_ptr<GatewayImpl> impl);
  std::unique_ptr<GatewayImpl> impl_;
};

// Serves until SIGTERM/SIGINT; returns non-OK if it could not start.
absl::Status RunGateway(const GatewayOptions& options);

}  // namespace chaosdrill::reference
