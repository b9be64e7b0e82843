#include "gpu_faults/helper_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace chaosdrill::gpu {
namespace {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

void SleepMs(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1'000'000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::string Errno(const std::string& what, int err) { return what + ": " + std::strerror(err); }

}  // namespace

uint64_t ProcessStartTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return 0;
  // The command name (field 2) may hold spaces and ')'; fields resume after the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  // rest starts at field 3 (state); starttime is field 22.
  for (int i = 3; i < 22; ++i) rest >> field;
  uint64_t start = 0;
  rest >> start;
  return start;
}

std::unique_ptr<HelperProcess> HelperProcess::Spawn(const SpawnOptions& options,
                                                    std::string* error) {
  if (options.argv.empty()) {
    *error = "no program to run";
    return nullptr;
  }
  // Everything the child needs is built before fork: after fork only async-signal-safe calls.
  std::vector<char*> argv;
  for (const std::string& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    bool replaced = false;
    for (const std::string& extra : options.env) {
      size_t eq = extra.find('=');
      if (entry.compare(0, eq + 1, extra, 0, eq + 1) == 0) replaced = true;
    }
    if (!replaced) env_strings.push_back(entry);
  }
  for (const std::string& extra : options.env) env_strings.push_back(extra);
  std::vector<char*> envp;
  for (const std::string& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int in_pipe[2], out_pipe[2], exec_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) {
    *error = Errno("pipe", errno);
    return nullptr;
  }
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    *error = Errno("pipe", errno);
    close(in_pipe[0]);
    close(in_pipe[1]);
    return nullptr;
  }
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    *error = Errno("pipe", errno);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) close(fd);
    return nullptr;
  }
  pid_t parent = getpid();
  // PR_SET_PDEATHSIG fires when the forking *thread* exits. The agent applies faults on
  // gRPC threads that gRPC may retire, so only the main thread may rely on it; the
  // holder's own lifeline is stdin: it exits when that pipe reaches EOF.
  const bool on_main_thread = gettid() == parent;
  pid_t pid = fork();
  if (pid < 0) {
    *error = Errno("fork", errno);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], exec_pipe[0], exec_pipe[1]}) {
      close(fd);
    }
    return nullptr;
  }
  if (pid == 0) {
    setpgid(0, 0);
    if (on_main_thread) prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before the lifeline was set
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    dup2(in_pipe[0], STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    execve(argv[0], argv.data(), envp.data());
    int err = errno;
    ssize_t ignored = write(exec_pipe[1], &err, sizeof(err));
    (void)ignored;
    _exit(127);
  }
  // Also from the parent, so the group exists before anyone signals it.
  setpgid(pid, pid);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(exec_pipe[1]);
  std::unique_ptr<HelperProcess> child(new HelperProcess());
  child->pid_ = pid;
  child->stdin_fd_ = in_pipe[1];
  child->stdout_fd_ = out_pipe[0];
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(exec_pipe[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  close(exec_pipe[0]);
  if (n == sizeof(exec_errno)) {
    *error = Errno("exec " + options.argv[0], exec_errno);
    child->Kill();
    return nullptr;
  }
  child->start_time_ = ProcessStartTime(pid);
  return child;
}

HelperProcess::~HelperProcess() {
  Kill();
  if (stdin_fd_ >= 0) close(stdin_fd_);
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

bool HelperProcess::ReadLine(int timeout_ms, std::string* line, std::string* error) {
  int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    if (size_t nl = buffer_.find('\n'); nl != std::string::npos) {
      *line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    int64_t left = deadline - NowMs();
    if (left <= 0) {
      *error = "no answer within " + std::to_string(timeout_ms) + "ms";
      return false;
    }
    pollfd pfd{stdout_fd_, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      *error = Errno("poll", errno);
      return false;
    }
    if (r == 0) continue;
    char buf[4096];
    ssize_t n = read(stdout_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Running();
      *error = "helper closed its output (" + ExitDescription() + ")";
      return false;
    }
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

bool HelperProcess::WriteLine(const std::string& line) {
  std::string data = line + "\n";
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(stdin_fd_, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

void HelperProcess::Kill() {
  if (reaped_ || pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  while (waitpid(pid_, &wait_status_, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
}

bool HelperProcess::Running() {
  if (reaped_) return false;
  pid_t r = waitpid(pid_, &wait_status_, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    kill(-pid_, SIGKILL);  // anything it left in its group
    return false;
  }
  return true;
}

std::string HelperProcess::ExitDescription() const {
  if (!reaped_) return "running";
  if (WIFEXITED(wait_status_)) return "exited with " + std::to_string(WEXITSTATUS(wait_status_));
  if (WIFSIGNALED(wait_status_)) {
    return "killed by signal " + std::to_string(WTERMSIG(wait_status_));
  }
  return "ended";
}

bool KillRecordedGroup(pid_t pid, uint64_t start_time, pid_t pgid, int timeout_ms,
                       std::string* error) {
  if (pid <= 0 || pgid <= 1) {
    *error = "bad pid/pgid in record";
    return false;
  }
  if (ProcessStartTime(pid) != start_time) return true;  // gone, or the pid was reused
  if (kill(-pgid, SIGKILL) != 0 && errno != ESRCH) {
    *error = Errno("kill process group " + std::to_string(pgid), errno);
    return false;
  }
  int64_t deadline = NowMs() + timeout_ms;
  while (ProcessStartTime(pid) == start_time) {
    // Our own child would stay a zombie until reaped; reap it if it is ours.
    waitpid(pid, nullptr, WNOHANG);
    if (NowMs() >= deadline) {
      *error = "process " + std::to_string(pid) + " still there " + std::to_string(timeout_ms) +
               "ms after SIGKILL";
      return false;
    }
    SleepMs(10);
  }
  return true;
}

}  // namespace chaosdrill::gpu
