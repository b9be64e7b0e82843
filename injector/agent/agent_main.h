// `chaosdrill agent serve`, as a library call: replays the journal (reverting whatever a
// crashed agent left), starts the gRPC server, the lease reaper and the metrics endpoint,
// reports readiness, and on SIGTERM/SIGINT halts, reverts every fault and returns. Test
// binaries that register extra fault kinds call this too, so they run the same code.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "injector/agent/agent_config.h"
#include "injector/fault_registry.h"

namespace chaosdrill::agent {

struct ServeOptions {
  // When >= 0, one line "ready tcp_port=N metrics_port=M\n" is written to this fd once
  // every listener accepts, and the fd is closed (LocalAgent waits on it).
  int ready_fd = -1;
};

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread before starting any thread, so
// call it from main before other threads exist. Returns when a signal arrives, after every
// fault is reverted; an error when startup fails or a fault could not be reverted.
absl::Status ServeAgent(const AgentConfig& config, const injector::FaultRegistry& registry,
                        const ServeOptions& options);

}  // namespace chaosdrill::agent
