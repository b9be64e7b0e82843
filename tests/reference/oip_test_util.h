// Helpers for the reference service tests: an OIP client stub for an address, golden
// inference through it, and a child process (the replica helper binary) that a test can
// SIGKILL and restart. Every wait here is bounded.
#pragma once

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "inference/grpc_predict_v2.grpc.pb.h"

namespace chaosdrill::reference::testing {

std::unique_ptr<inference::GRPCInferenceService::Stub> Connect(const std::string& address);

// ServerReady, or false on any RPC error.
bool IsReady(inference::GRPCInferenceService::Stub& stub, int timeout_ms = 1000);

// The first output of a tiny-mlp inference of `input` (batch 1), or the RPC's error.
absl::StatusOr<std::vector<float>> Infer(inference::GRPCInferenceService::Stub& stub,
                                         const std::vector<float>& input, bool raw = true,
                                         int timeout_ms = 2000);

// A replica in a child process (tests/reference/reference_test_replica). Killed (SIGKILL)
// and reaped on destruction.
class ReplicaProcess {
 public:
  // Starts the helper with `args` (e.g. {"--listen", "127.0.0.1:0"}) and waits (bounded)
  // until its ready file appears; address() is then the bound address.
  static absl::StatusOr<std::unique_ptr<ReplicaProcess>> Start(const std::vector<std::string>& args,
                                                               const std::string& dir,
                                                               int timeout_ms = 20000);
  ~ReplicaProcess();
  ReplicaProcess() = default;
  ReplicaProcess(const ReplicaProcess&) = delete;
  ReplicaProcess& operator=(const ReplicaProcess&) = delete;

  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }
  // Sends `sig` and, for SIGKILL/SIGTERM, reaps the child (bounded).
  void Signal(int sig);

 private:
  pid_t pid_ = -1;
  std::string address_;
};

}  // namespace chaosdrill::reference::testing
