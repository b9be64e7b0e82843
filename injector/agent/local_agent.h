// The runner-side "local agent" (DESIGN §5): a child `chaosdrill agent serve` on a private
// Unix socket in a fresh 0700 directory, started and stopped by a library call, so a local
// drill drives faults through exactly the same API and safety machinery as a remote one.
// The child gets PR_SET_PDEATHSIG(SIGTERM): if the runner dies, the agent reverts every
// fault and exits. It runs in its own process group, so a terminal's Ctrl-C reaches only
// the runner, which reverts its faults through the agent before stopping it. Start()
// returns once the agent reported readiness on a pipe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "injector/agent/agent_client.h"

namespace chaosdrill::agent {

struct LocalAgentOptions {
  // The command that serves: {binary, "agent", "serve"} by default, where binary is this
  // process's own executable. "--config FILE --ready-fd N" are appended.
  std::vector<std::string> command;
  // YAML appended to the generated config (allowlist:, lease_ttl:, max_duration:, ...).
  std::string extra_config;
  std::string journal;    // empty: RevertJournal::DefaultPath()
  std::string audit_log;  // empty: <private dir>/audit.jsonl
  // Also listen on TCP (mutual TLS; all three files required), e.g. "127.0.0.1:0" in tests
  // and benchmarks; tcp_port() tells the bound port.
  std::string tcp_listen;
  std::string tls_ca, tls_cert, tls_key;
  absl::Duration start_timeout = absl::Seconds(20);
  // The child's log level (CHAOSDRILL_LOG in its environment: "debug", "info", "warn",
  // "error"); its log goes to the runner's stderr. Empty: inherited from this process.
  std::string log_level;
};

class LocalAgent {
 public:
  static absl::StatusOr<std::unique_ptr<LocalAgent>> Start(const LocalAgentOptions& options);
  ~LocalAgent();  // Stop(), then removes the private directory
  LocalAgent(const LocalAgent&) = delete;
  LocalAgent& operator=(const LocalAgent&) = delete;

  // SIGTERM (the agent reverts everything), wait up to `timeout`, then SIGKILL. Returns the
  // agent's exit status as an error when it did not exit cleanly. Idempotent.
  absl::Status Stop(absl::Duration timeout = absl::Seconds(20));

  pid_t pid() const { return pid_; }
  int tcp_port() const { return tcp_port_; }
  int metrics_port() const { return metrics_port_; }  // when extra_config sets metrics_listen
  const std::string& socket_path() const { return socket_path_; }
  const std::string& dir() const { return dir_; }
  AgentEndpoint endpoint() const { return AgentEndpoint{.unix_path = socket_path_}; }
  absl::StatusOr<std::unique_ptr<AgentClient>> Connect() const {
    return AgentClient::Connect(endpoint());
  }

 private:
  LocalAgent() = default;
  std::string dir_;
  std::string socket_path_;
  pid_t pid_ = -1;
  int tcp_port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace chaosdrill::agent
