// Choosing the processes a process.* fault acts on, and signalling them safely. A
// selector (pid, exe regex, cmdline regex, cgroup; all given ones must match) is resolved
// against /proc; PID 1, kernel threads, this process and its parent are never targets
// (hard rules, before any allowlist). Signals go through pidfd_send_signal where the kernel
// has it, after checking the start time, so a reused pid is never hit.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/fault_spec.h"
#include "injector/child_process.h"
#include "injector/fault_params.h"

namespace chaosdrill::injector {

// "SIGKILL", "KILL", "kill", "9" -> 9. InvalidArgument for anything else.
absl::StatusOr<int> ParseSignal(absl::string_view text);
// 9 -> "SIGKILL" ("SIG<n>" for unnamed numbers).
std::string SignalName(int signal);

struct ProcessSelector {
  std::optional<pid_t> pid;
  std::optional<std::string> exe_pattern;      // regex_search on readlink(/proc/PID/exe)
  std::optional<std::string> cmdline_pattern;  // regex_search on argv joined by spaces
  std::optional<std::string> cgroup;           // cgroup v2 path; members of it and its descendants
  std::optional<int64_t> count;                // at most this many (chosen at random)
  std::optional<double> percent;               // or this share, rounded up (chosen at random)

  std::string Describe() const;
};

// The selector parameters (pid, exe, cmdline, cgroup, count, percent), for a kind's info.
std::vector<ParamSpec> ProcessSelectorParams();

// Reads them from a validated spec. InvalidArgument naming the field if none of pid, exe,
// cmdline, cgroup is given, or both count and percent are.
absl::StatusOr<ProcessSelector> ProcessSelectorFromParams(const FaultParams& params);

// Matching processes, hard rules applied, then narrowed by count/percent. NotFound when
// nothing matches; PermissionDenied when `pid` names a forbidden target.
absl::StatusOr<std::vector<ProcessId>> SelectProcesses(const ProcessSelector& selector);

// Sends `signal` to the process if it is still the same one. OK (and *sent=false) when it
// is already gone.
absl::Status SignalProcess(const ProcessId& id, int signal, bool* sent = nullptr);

}  // namespace chaosdrill::injector
