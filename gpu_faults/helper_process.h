// A child helper process (the GPU memory holder, the compute burner, a test victim) with
// the lifecycle every fault child needs: its own process group, PR_SET_PDEATHSIG(SIGKILL)
// plus a stdin pipe whose EOF tells it the parent is gone, line-based stdout to the parent,
// and a kill that takes the whole group. Plain C++ (no absl) so the self-test can use it.
//
// PR_SET_PDEATHSIG fires when the *thread* that forked exits: spawn from a long-lived thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace chaosdrill::gpu {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is a path; no shell
  std::vector<std::string> env;   // "NAME=value" added to (or replacing in) the environment
};

class HelperProcess {
 public:
  // Forks and execs. On failure returns nullptr and sets *error.
  static std::unique_ptr<HelperProcess> Spawn(const SpawnOptions& options, std::string* error);

  // Kills the group and reaps the child if it is still running.
  ~HelperProcess();
  HelperProcess(const HelperProcess&) = delete;
  HelperProcess& operator=(const HelperProcess&) = delete;

  pid_t pid() const { return pid_; }
  pid_t pgid() const { return pid_; }  // the child leads its own group
  uint64_t start_time() const { return start_time_; }

  // Reads one line (without '\n') from the child's stdout within timeout_ms. False on
  // timeout, EOF or error, with *error saying which.
  bool ReadLine(int timeout_ms, std::string* line, std::string* error);
  // Writes `line` + '\n' to the child's stdin. False if the child is gone.
  bool WriteLine(const std::string& line);

  // SIGKILL to the whole group, then reaps the child. Idempotent.
  void Kill();
  // Reaps the child if it exited; true while it runs.
  bool Running();
  // "exited with 3", "killed by signal 9", "running".
  std::string ExitDescription() const;

 private:
  HelperProcess() = default;

  pid_t pid_ = -1;
  uint64_t start_time_ = 0;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
  bool reaped_ = false;
  int wait_status_ = 0;
};

// Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), or 0 when
// there is no such process. With the pid it identifies a process across pid reuse.
uint64_t ProcessStartTime(pid_t pid);

// For a fresh process undoing a fault from its revert record: if `pid` still exists with
// `start_time`, SIGKILLs group `pgid` and waits up to timeout_ms for the pid to disappear
// (or become someone else). Returns false (with *error) only if it is still there after
// the timeout or the kill was refused; a process already gone is success.
bool KillRecordedGroup(pid_t pid, uint64_t start_time, pid_t pgid, int timeout_ms,
                       std::string* error);

}  // namespace chaosdrill::gpu
