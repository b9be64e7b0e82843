// Test helpers for process faults: spawn real child processes (/bin/sleep) that are
// killed and reaped when the guard goes, and /proc queries.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace chaosdrill::testing {

// A child process running argv (exec, no shell); SIGKILLed and reaped on destruction.
class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  pid_t pid() const { return pid_; }
  // Waits (bounded) for it to exit; returns the terminating signal, or -1 if it exited
  // normally or did not exit in time.
  int WaitForSignal(int timeout_ms);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// /proc/PID/stat state letter, or 0 if gone.
char ProcState(pid_t pid);
// Waits until the state of `pid` satisfies `want` (bounded); returns the last state.
bool WaitForState(pid_t pid, bool (*want)(char), int timeout_ms);
// Live (non-zombie) children of this process.
std::vector<pid_t> LiveChildren();

}  // namespace chaosdrill::testing
