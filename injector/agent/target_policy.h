// The agent's authorization of one fault spec (DESIGN §5, "Authorization"): the allowlist
// from the config plus the hard safety rules (PID 1, the agent itself, its parent and the
// interface carrying the agent's TCP listener are never targets unless
// allowlist.protected_targets names them). Checked before anything is journaled or
// applied. A refusal is PermissionDenied and its message starts with the rule's name
// ("allowlist.kinds: ...", "safety.pid1: ..."), which docs/agent.md explains.
//
// Target parameters are recognised by name, the same names every fault kind uses:
// pid, exe, cmdline (process selectors), cgroup, interface/dev (network), device (GPU),
// cores/workers (CPU), size/bytes/fraction (memory and GPU shares).
#pragma once

#include <sys/types.h>

#include <set>
#include <string>

#include "absl/status/status.h"
#include "common/fault_spec.h"
#include "injector/agent/agent_config.h"

namespace chaosdrill::agent {

// Facts about the node the policy needs; filled from the live system by Current(), or by
// hand in tests.
struct NodeFacts {
  pid_t agent_pid = 0;
  pid_t agent_parent_pid = 0;
  std::set<std::string> control_interfaces;  // carrying the agent's TCP listener
  uint64_t memory_bytes = 0;                 // MemTotal

  // `tcp_listen` is the agent's "host:port" (empty when none): a wildcard host protects
  // every non-loopback interface with an address; a specific address, the interface
  // holding it.
  static NodeFacts Current(const std::string& tcp_listen);
};

class TargetPolicy {
 public:
  TargetPolicy(Allowlist allowlist, NodeFacts facts, absl::Duration max_duration);

  // OK, or PermissionDenied naming the rule. InvalidArgument for unparsable target values.
  absl::Status Check(const FaultSpec& spec) const;

  // Whether the kind is allowed at all (for Capabilities).
  bool KindAllowed(const std::string& kind) const;

  const NodeFacts& facts() const { return facts_; }

 private:
  absl::Status CheckPid(pid_t pid) const;
  absl::Status CheckInterface(const std::string& name) const;
  bool Protected(absl::string_view name) const;

  const Allowlist allowlist_;
  const NodeFacts facts_;
  const absl::Duration max_duration_;
};

// Glob with * and ? (fnmatch without flags).
bool GlobMatch(const std::string& pattern, const std::string& text);

}  // namespace chaosdrill::agent
