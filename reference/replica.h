// A reference inference replica: serves one model over the Open Inference Protocol v2
// (inference.GRPCInferenceService) so drills have a real, measurable target.
//
// Contract: ServerReady and ModelReady are false until the model is built and a warm-up
// inference has matched its golden output. A replica can be told to misbehave ("degrade")
// at start or at run time through a local admin Unix socket (see reference/admin_socket.h):
//   wrong-answers  still ready, ModelInfer returns a perturbed output (a gray failure)
//   errors         ModelInfer fails with UNAVAILABLE
//   slow           ModelInfer adds a fixed delay before answering
//
// Inferences run on `threads` worker threads; up to `max_queue` more wait for one in
// arrival order (a replica catching up after a stall answers its backlog instead of
// refusing it); beyond that, and only then, ModelInfer answers RESOURCE_EXHAUSTED. A queued
// inference whose caller gave up (cancelled, or its deadline passed) is answered without
// running the model.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chaosdrill::reference {

struct ReplicaOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  std::string model = "tiny-mlp";
  std::string device = "cpu";  // "cpu" (and "cuda" once a CUDA model is built)
  int width = 256;
  int depth = 4;
  uint32_t seed = 42;
  std::string degrade;       // "", "none", "wrong-answers", "errors", "slow"
  int slow_delay_ms = 200;   // added latency in "slow" mode
  std::string admin_socket;  // optional Unix socket path for run-time control
  std::string ready_file;    // optional: the bound address is written here once ready
  int threads = 4;           // inference worker threads
  int max_queue = 256;       // inferences that may wait for a worker (see above)
  int warmup_delay_ms = 0;   // holds readiness back this long (simulates a slow model load)
};

class ReplicaImpl;

// An in-process replica server. Non-copyable; destruction shuts it down.
class Replica {
 public:
  // Builds the model, runs the warm-up inference, binds and starts serving.
  static absl::StatusOr<std::unique_ptr<Replica>> Start(const ReplicaOptions& options);
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // The bound "host:port" (the real port when options.listen asked for port 0).
  const std::string& address() const;
  // Switches the degraded mode at run time: "none", "wrong-answers", "errors", "slow".
  absl::Status SetDegrade(const std::string& mode);
  std::string degrade() const;
  // True once ready (warm-up passed); false if `timeout` passed first. For in-process use.
  bool WaitReady(int timeout_ms);
  // Stops accepting requests, finishes in-flight ones (bounded), and returns. Idempotent.
  void Shutdown();
  // Blocks until Shutdown() was called (from another thread or a signal).
  void Wait();

 private:
  explicit Replica(std::unique_ptr<ReplicaImpl> impl);
  std::unique_ptr<ReplicaImpl> impl_;
};

// Serves until SIGTERM/SIGINT; returns non-OK if it could not start.
absl::Status RunReplica(const ReplicaOptions& options);

}  // namespace chaosdrill::reference
