// ChildProcess: one supervised child, started with fork/exec (no shell) in its own
// process group, with stdin from /dev/null, stdout and stderr appended to a log file, an
// empty signal mask, and PR_SET_PDEATHSIG(SIGKILL) so it dies with the thread that
// started it. The owner reaps it (Poll) and stops it (Stop: SIGTERM to the group, then
// SIGKILL after a timeout); destruction stops it too, so no child outlives its owner.
// Optionally the child joins a network namespace (a descriptor of it) before exec.
//
// Not thread-safe: one thread (the supervisor's) owns a ChildProcess. PDEATHSIG fires
// when the *thread* that called Spawn exits, so spawn from a thread that lives as long as
// the children should.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace chaosdrill::reference {

class ChildProcess {
 public:
  // argv[0] is a path (not searched on PATH). NotFound if it is not executable;
  // other errors (fork, opening the log) with context. With `netns_fd` >= 0 the child
  // setns()es into that network namespace first (a child that cannot exits 126, its log
  // saying so).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(const std::vector<std::string>& argv,
                                                             const std::string& log_path,
                                                             int netns_fd = -1);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() const { return !exit_status_.has_value(); }
  // Reaps without blocking. Returns true when the child has exited (now or before).
  bool Poll();
  // The raw wait status once exited; "exited 3" / "killed by signal 9" in words.
  std::optional<int> exit_status() const { return exit_status_; }
  std::string ExitDescription() const;
  // SIGTERM to the child's process group, wait up to `grace`, then SIGKILL and reap.
  void Stop(absl::Duration grace);
  // Sends `sig` to the child (not its group). No-op once it has exited.
  void Signal(int sig);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::optional<int> exit_status_;
};

// Searches PATH (and /usr/sbin, /usr/local/bin) for an executable; empty if none.
std::string FindExecutable(const std::string& name);

}  // namespace chaosdrill::reference
