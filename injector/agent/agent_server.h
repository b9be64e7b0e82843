// The agent's gRPC server (chaosdrill.agent.v1.Agent, DESIGN §5) on gRPC's callback API:
// a TCP listener with mutual TLS only (ClientCertVerifier) and/or a Unix socket
// (UnixListener, SO_PEERCRED). No insecure TCP, no reflection, no health or debug
// services. Every RPC is authorised (TargetPolicy for Inject; a fault is renewed and
// reverted only by the principal that injected it; Halt/Resume only on the local unix
// socket), executed against the LeaseManager and written to the AuditLog with the peer's
// identity and the outcome.
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "injector/agent/agent_config.h"
#include "injector/agent/agent_metrics.h"
#include "injector/agent/audit_log.h"
#include "injector/agent/gpu_facts.h"
#include "injector/agent/lease_manager.h"
#include "injector/agent/target_policy.h"
#include "injector/agent/unix_listener.h"
#include "injector/fault_registry.h"

namespace chaosdrill::agent {

class AgentService;
class ClientCertVerifier;

struct AgentServerDeps {
  LeaseManager* leases;
  AuditLog* audit;
  AgentMetrics* metrics;
  const TargetPolicy* policy;
  const injector::FaultRegistry* registry;
  GpuFacts* gpus = nullptr;  // for Capabilities; may be null
};

class AgentServer {
 public:
  // Starts listening per `config`. FailedPrecondition when a TCP listener lacks TLS files.
  static absl::StatusOr<std::unique_ptr<AgentServer>> Start(const AgentConfig& config,
                                                            AgentServerDeps deps);
  ~AgentServer();  // Shutdown()
  AgentServer(const AgentServer&) = delete;
  AgentServer& operator=(const AgentServer&) = delete;

  // Stops accepting, cancels in-flight calls after `grace`, joins.
  void Shutdown(absl::Duration grace = absl::Seconds(2));

  int tcp_port() const { return tcp_port_; }  // the bound port (for "host:0")

 private:
  AgentServer() = default;

  std::unique_ptr<AgentService> service_;
  std::shared_ptr<ClientCertVerifier> verifier_;
  std::unique_ptr<UnixListener> unix_;
  std::unique_ptr<grpc::Server> server_;
  int tcp_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace chaosdrill::agent
