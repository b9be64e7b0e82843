// The agent's configuration file (`chaosdrill agent serve --config FILE`), read once into
// an immutable AgentConfig. Errors name the file, the line and the field
// ("agent.yaml:12: allowlist.max_cpu_cores: expected a non-negative integer").
//
//   listen:
//     tcp: 0.0.0.0:7443            # mutual TLS only; needs tls.ca/cert/key
//     unix: /run/chaosdrill/agent.sock
//   tls: {ca: ca.crt, cert: agent.crt, key: agent.key, allowed_subjects: ["CN=..."]}
//   journal: /var/lib/chaosdrill/agent.journal
//   audit_log: /var/log/chaosdrill/audit.jsonl
//   lease_ttl: 10s                 # default lease when a client gives none
//   max_lease_ttl: 60s             # a client's requested TTL is capped to this
//   max_duration: 1h               # hard maximum, reverts regardless of leases
//   metrics_listen: 127.0.0.1:9465 # optional Prometheus text endpoint
//   unix_allowed_uids: [1000]      # besides the agent's own uid and root
//   allowlist: {...}               # see Allowlist
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace chaosdrill::agent {

// What this agent may touch. Every list is deny-by-default: an absent or empty list
// allows nothing of that sort, "*" allows anything (globs with * and ? elsewhere).
// PID 1, the agent itself, its parent and the interface carrying the agent's TCP listener
// are refused even under "*"; `protected_targets` opts back in explicitly for each
// (pid1, agent, agent_parent, control_interface).
struct Allowlist {
  std::vector<std::string> kinds;             // globs on kind: "network.*", "process.pause"
  std::vector<std::string> interfaces;        // globs on interface names
  std::vector<std::string> processes;         // ECMAScript regexes on a target's cmdline; "*"
  std::vector<std::string> cgroups;           // globs on cgroup paths
  std::vector<int> gpu_devices;               // device indexes
  std::optional<int64_t> max_cpu_cores;       // stress.cpu cores; unset = no limit
  std::optional<double> max_memory_fraction;  // of MemTotal (0..1]
  std::optional<double> max_gpu_fraction;     // of a device's memory or SMs (0..1]
  std::vector<std::string> protected_targets;
};

struct TlsFiles {
  std::string ca, cert, key;
  std::vector<std::string> allowed_subjects;  // exact subjects or CNs; empty = any from CA
};

struct AgentConfig {
  std::string source;       // file the config came from, for messages
  std::string tcp_listen;   // host:port; empty = none
  std::string unix_listen;  // socket path; empty = none
  TlsFiles tls;
  std::string journal;    // empty = RevertJournal::DefaultPath()
  std::string audit_log;  // empty = no audit file (stderr summary only)
  absl::Duration lease_ttl = absl::Seconds(10);
  absl::Duration max_lease_ttl = absl::Seconds(60);
  absl::Duration max_duration = absl::Hours(1);
  std::string metrics_listen;  // host:port; empty = none
  std::vector<uint32_t> unix_allowed_uids;
  Allowlist allowlist;
};

// Parses YAML text; `source` names it in errors. InvalidArgument on any bad field,
// unknown keys included, and when a TCP listener lacks tls.ca/cert/key.
absl::StatusOr<AgentConfig> ParseAgentConfig(const std::string& yaml, const std::string& source);
absl::StatusOr<AgentConfig> LoadAgentConfig(const std::string& path);

}  // namespace chaosdrill::agent
