// The agent's authorization of one fault spec (DESIGN §5, "Authorization"): the allowlist
// from the config plus the hard safety rules (PID 1, the agent itself, its parent and the
// interfaces carrying the agent's TCP listener are never targets unless
// allowlist.protected_targets names them). Checked before anything is journaled or
// applied. A refusal is PermissionDenied and its message starts with the rule's name
// ("allowlist.kinds: ...", "safety.pid1: ..."), which docs/agent.md explains.
//
// The check runs on the parameters the fault will really use: the kind's defaults (its
// FaultKindInfo in the registry) are filled in first, so an omitted `device` of a gpu.*
// kind is checked as device 0, an omitted `cores` of stress.cpu as 1 and an omitted
// `sm_fraction` of gpu.compute_burn as 1. Target parameters by name:
//   pid, exe, cmdline, cgroup      process selectors (process.*, test kinds): the pid's
//                                  cmdline must match allowlist.processes; exe/cmdline
//                                  patterns must be listed there verbatim (or "*"); a
//                                  pattern or cgroup that selects a protected process now
//                                  is refused with that process's safety rule
//   cgroup                         placement (stress.*) or selection: allowlist.cgroups
//   interface (dev, iface)         allowlist.interfaces + safety.control_interface; a kind
//                                  whose interface is optional and omitted
//                                  (network.partition) acts on every interface, so it needs
//                                  "*" in allowlist.interfaces and, while the agent has a
//                                  TCP listener, passes the control-interface rule only
//                                  when every control interface is allowed explicitly
//   device, pci                    gpu.*: allowlist.gpu_devices (pci mapped via GpuFacts)
//   cores, workers                 allowlist.max_cpu_cores
//   size (stress.*)                allowlist.max_memory_fraction, bytes as a share of
//                                  MemTotal
//   fraction, sm_fraction, size,   gpu.*: allowlist.max_gpu_fraction; bytes as a share of
//   leave_free                     the device's total memory (GpuFacts); when that is
//                                  unknown a size in bytes is refused (give fraction=)
#pragma once

#include <sys/types.h>

#include <set>
#include <string>

#include "absl/status/status.h"
#include "common/fault_spec.h"
#include "injector/agent/agent_config.h"
#include "injector/agent/gpu_facts.h"
#include "injector/fault_registry.h"

namespace chaosdrill::agent {

// Facts about the node the policy needs; filled from the live system by Current(), or by
// hand in tests.
struct NodeFacts {
  pid_t agent_pid = 0;
  pid_t agent_parent_pid = 0;
  std::set<std::string> control_interfaces;  // carrying the agent's TCP listener
  uint64_t memory_bytes = 0;                 // MemTotal

  // `tcp_listen` is the agent's "host:port" (empty when none): a wildcard host (or a host
  // name other than localhost) protects every interface with an address, loopback
  // included; a specific address, the interface holding it; localhost, lo.
  static NodeFacts Current(const std::string& tcp_listen);
};

class TargetPolicy {
 public:
  // `registry` supplies each kind's parameter defaults and `gpus` the GPU facts; either
  // may be null (no defaults; GPU sizes in bytes then refused under max_gpu_fraction).
  // Both must outlive the policy.
  TargetPolicy(Allowlist allowlist, NodeFacts facts, absl::Duration max_duration,
               const injector::FaultRegistry* registry = nullptr, GpuFacts* gpus = nullptr);

  // OK, or PermissionDenied naming the rule. InvalidArgument for unparsable target values.
  absl::Status Check(const FaultSpec& spec) const;

  // Whether the kind is allowed at all (for Capabilities).
  bool KindAllowed(const std::string& kind) const;

  const NodeFacts& facts() const { return facts_; }

 private:
  absl::Status CheckPid(pid_t pid) const;
  absl::Status CheckInterface(const std::string& name) const;
  absl::Status CheckAllInterfaces(const std::string& kind) const;
  absl::Status CheckCgroup(const std::string& kind, const std::string& value) const;
  absl::Status CheckGpuShare(const FaultSpec& spec, const std::string& name,
                             const std::string& value) const;
  bool Protected(absl::string_view name) const;

  const Allowlist allowlist_;
  const NodeFacts facts_;
  const absl::Duration max_duration_;
  const injector::FaultRegistry* const registry_;
  GpuFacts* const gpus_;
};

// Glob with * and ? (fnmatch without flags).
bool GlobMatch(const std::string& pattern, const std::string& text);

// A cgroup v2 path as the allowlist compares it: "/sys/fs/cgroup/a/b/", "a/b" -> "/a/b".
// InvalidArgument for "." or ".." components.
absl::StatusOr<std::string> NormalizeCgroup(const std::string& path);

}  // namespace chaosdrill::agent
