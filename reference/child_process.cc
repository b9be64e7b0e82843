#include "reference/child_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace chaosdrill::reference {

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::vector<std::string>& argv, const std::string& log_path, int netns_fd) {
  if (argv.empty()) return absl::InvalidArgumentError("spawn: empty argv");
  if (access(argv[0].c_str(), X_OK) != 0) {
    return ErrnoStatus(absl::StrCat("spawn: ", argv[0], " is not executable"));
  }
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return ErrnoStatus(absl::StrCat("spawn ", argv[0], ": opening log ", log_path));
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    int err = errno;
    close(log_fd);
    return ErrnoStatus("spawn: opening /dev/null", err);
  }
  // Everything the child needs is prepared before fork: only async-signal-safe calls
  // happen between fork and exec.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(log_fd);
    close(null_fd);
    return ErrnoStatus(absl::StrCat("spawn ", argv[0], ": fork"), err);
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before PDEATHSIG was armed
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD}) signal(sig, SIG_DFL);
    dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) {
      static const char kMsg[] = "chaosdrill: cannot enter the replica's network namespace\n";
      (void)!write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
      _exit(126);
    }
    close_range(3, ~0U, 0);
    execv(args[0], args.data());
    _exit(127);
  }
  close(log_fd);
  close(null_fd);
  // Also from the parent, so a signal to the group right after Spawn reaches it.
  setpgid(pid, pid);
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid));
}

ChildProcess::~ChildProcess() { Stop(absl::Seconds(5)); }

bool ChildProcess::Poll() {
  if (exit_status_) return true;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = status;
    return true;
  }
  if (r < 0 && errno == ECHILD) {  // reaped elsewhere; treat as gone
    exit_status_ = 0;
    return true;
  }
  return false;
}

std::string ChildProcess::ExitDescription() const {
  if (!exit_status_) return "running";
  int s = *exit_status_;
  if (WIFEXITED(s)) return absl::StrCat("exited with status ", WEXITSTATUS(s));
  if (WIFSIGNALED(s)) return absl::StrCat("killed by signal ", WTERMSIG(s));
  return "ended";
}

void ChildProcess::Signal(int sig) {
  if (!Poll()) kill(pid_, sig);
}

void ChildProcess::Stop(absl::Duration grace) {
  if (Poll()) {
    // The leader is gone; make sure nothing it started in its group lingers.
    kill(-pid_, SIGKILL);
    return;
  }
  kill(-pid_, SIGTERM);
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + grace;
  while (!Poll() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  kill(-pid_, SIGKILL);
  if (!exit_status_) {
    int status = 0;
    if (waitpid(pid_, &status, 0) == pid_)
      exit_status_ = status;
    else
      exit_status_ = 0;
  }
}

std::string FindExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = absl::StrCat(path ? path : "/usr/bin:/bin", ":/usr/sbin:/usr/local/bin");
  for (absl::string_view dir : absl::StrSplit(dirs, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

}  // namespace chaosdrill::reference
