// Processes, seen from /proc and owned as children. ProcStat reads /proc/PID/stat;
// ProcessId (pid + start time) names a process in a way PID reuse cannot fool, for revert
// records. WorkerGroup forks worker processes (no exec) in their own process group with
// PR_SET_PDEATHSIG(SIGKILL), optionally placed in a cgroup v2, and kills and reaps them
// all, verifying in /proc that none is left; the stress.* kinds use it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace chaosdrill::injector {

// The fields of /proc/PID/stat we use.
struct ProcStat {
  pid_t pid = 0;
  std::string comm;
  char state = '?';  // R S D Z T t X I ...
  pid_t ppid = 0;
  pid_t pgid = 0;
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t start_ticks = 0;  // since boot; with pid, identifies the process
};

// NotFound when the process does not exist (any more).
absl::StatusOr<ProcStat> ReadProcStat(pid_t pid);

// Stopped by a signal (state T), not merely sleeping.
inline bool IsStoppedState(char state) { return state == 'T'; }
// Gone or a zombie: it runs no more code.
inline bool IsDeadState(char state) { return state == 'Z' || state == 'X'; }

// A process named so that PID reuse cannot fool us.
struct ProcessId {
  pid_t pid = 0;
  uint64_t start_ticks = 0;

  nlohmann::json ToJson() const;
  static absl::StatusOr<ProcessId> FromJson(const nlohmann::json& j);
  // The current identity of `pid`; NotFound if no such process.
  static absl::StatusOr<ProcessId> Of(pid_t pid);
};

// The process's stat if it is still the same process (pid and start time match) and has
// not exited; nullopt if it is gone, a zombie, or the pid now names another process.
std::optional<ProcStat> StatIfSameAndAlive(const ProcessId& id);

// Polls `done` every few milliseconds until it returns true or `timeout` passes. For
// waiting on /proc state changes, which have no event to wait on.
bool PollUntil(const std::function<bool()>& done, absl::Duration timeout);

// Closes every file descriptor >= 3 except `keep` and `keep2` (-1: none). For forked
// children, which must not hold the parent's pipes and sockets open.
void CloseFdsExcept(int keep, int keep2 = -1);

// What a worker does after setup: runs until killed (or returns its exit code). It runs
// in a forked child of a possibly multi-threaded process, so it must not allocate, lock or
// use stdio: only async-signal-safe calls (mmap, clock_gettime, nanosleep, write). It
// calls ReportWorkerReady(ready_fd) once it is up to strength.
using WorkerBody = int (*)(const void* arg, int ready_fd);
void ReportWorkerReady(int ready_fd);

// Worker processes in one process group that die with their holder. Not copyable; the
// destructor kills and reaps what is left.
//
// Dying with the holder: each worker holds the read end of a "lifeline" pipe whose only
// write end the holder keeps (O_CLOEXEC), armed with O_ASYNC and F_SETSIG(SIGKILL), so
// the kernel SIGKILLs the worker the moment the holder's process is gone, however it
// died. PR_SET_PDEATHSIG(SIGKILL) is set as well, but only when Start() runs on the main
// thread, because it fires when the forking *thread* exits (a gRPC worker thread of the
// agent may exit while the fault should live on).
class WorkerGroup {
 public:
  WorkerGroup() = default;
  ~WorkerGroup();
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  // Forks `count` workers running body(arg, ...), each first joining the group and, when
  // `cgroup_dir` is not empty, moving itself into that cgroup v2 directory. Returns once
  // every worker reported ready (or within `ready_timeout` fails, killing those started).
  absl::Status Start(int count, WorkerBody body, const void* arg, const std::string& cgroup_dir,
                     absl::Duration ready_timeout);

  // SIGKILLs the group, reaps the workers and verifies in /proc that none is left.
  // Idempotent.
  absl::Status Stop();

  pid_t pgid() const { return pgid_; }
  const std::vector<ProcessId>& workers() const { return workers_; }

  // {"pgid": P, "workers": [{"pid":..,"start":..}, ...]}
  nlohmann::json ToJson() const;
  // From a fresh process: kills the recorded workers that are still the same processes and
  // waits (bounded) for them to go. OK if none is left.
  static absl::Status KillFromJson(const nlohmann::json& j);

 private:
  pid_t pgid_ = 0;
  int lifeline_fd_ = -1;  // write end; closing it kills the workers
  std::vector<ProcessId> workers_;
  std::vector<pid_t> unreaped_;
};

// Whether the running process may write `dir`/cgroup.procs (cgroup v2); the error says
// what is missing and how to fix it.
absl::Status CheckCgroupPlacement(const std::string& dir);

// "/sys/fs/cgroup/x" for "x", "/x" or "/sys/fs/cgroup/x".
std::string CgroupDir(const std::string& path);

}  // namespace chaosdrill::injector
