// The client side of the agent API, used by the runner's FaultDriver and by
// `chaosdrill agent halt|resume|list`: connects over a Unix socket or over TCP with
// mutual TLS, calls the RPCs with deadlines, and keeps the leases of its session's faults
// alive with one background KeepAlive stream (thread "agent-keepalive") that renews every
// TTL/3 and reconnects when the stream breaks. If this process dies or stops, renewals
// stop and the agent reverts the session's faults within TTL + 1 s.
//
// Thread-safe: RPCs may be called from several threads at once.
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chaosdrill/agent/v1/agent.grpc.pb.h"
#include "common/fault_spec.h"

namespace grpc {
class ClientContext;
}

namespace chaosdrill::agent {

// Where an agent listens. Exactly one of unix_path / tcp_target.
struct AgentEndpoint {
  std::string unix_path;   // "/run/chaosdrill/agent.sock" (with or without "unix:")
  std::string tcp_target;  // "node1:7443"
  // mutual TLS for tcp_target: the CA that signed the agent's certificate, and this
  // client's certificate and key (chaosdrill agent init-pki writes runner.crt/key). Tests
  // may leave cert/key empty to check that the agent refuses such a client.
  std::string ca_file, cert_file, key_file;
  std::string server_name;  // TLS name to check instead of the target's host
};

struct InjectOptions {
  absl::Duration lease_ttl = absl::ZeroDuration();     // zero: the agent's default
  absl::Duration max_duration = absl::ZeroDuration();  // zero: the agent's maximum
  std::string note;
  // Start (or keep) the KeepAlive stream for this session. Tests turn it off to let a
  // lease lapse on purpose.
  bool keep_alive = true;
};

class AgentClient {
 public:
  static absl::StatusOr<std::unique_ptr<AgentClient>> Connect(const AgentEndpoint& endpoint);
  ~AgentClient();  // stops the KeepAlive thread (the agent's leases then run out)
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  // A random id made at construction; every fault injected through this client is owned
  // by it.
  const std::string& session_id() const { return session_id_; }
  void set_rpc_timeout(absl::Duration t) { rpc_timeout_ = t; }

  absl::StatusOr<v1::CapabilitiesResponse> Capabilities();
  absl::StatusOr<v1::InjectResponse> Inject(const FaultSpec& spec,
                                            const InjectOptions& options = {});
  absl::StatusOr<v1::RevertResponse> Revert(const std::string& fault_id);
  absl::StatusOr<v1::ListResponse> List();
  absl::StatusOr<uint32_t> Halt(const std::string& reason);
  absl::Status Resume();

  // Starts the KeepAlive thread (idempotent), renewing every `ttl`/3.
  void StartKeepAlive(absl::Duration ttl);
  void StopKeepAlive();
  // Renewals the agent acknowledged so far (for tests).
  uint64_t renewals() const;

 private:
  AgentClient(std::shared_ptr<grpc::Channel> channel, std::string session_id);
  void PrepareContext(grpc::ClientContext* ctx) const;
  // FromGrpc, with a hint on unix socket connection failures (peer uid refused).
  absl::Status Checked(const grpc::Status& status, absl::string_view context) const;
  void KeepAliveLoop();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Agent::Stub> stub_;
  const std::string session_id_;
  std::string unix_path_;  // for error hints; empty over TCP
  absl::Duration rpc_timeout_ = absl::Seconds(30);

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(3);
  grpc::ClientContext* stream_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t renewals_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread keepalive_;
};

// Turns a gRPC status into an absl::Status with the same code and message.
absl::Status FromGrpc(const grpc::Status& status, absl::string_view context);

}  // namespace chaosdrill::agent
