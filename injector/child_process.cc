#include "injector/child_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "injector/fault.h"

namespace chaosdrill::injector {
namespace {

// What a worker writes on its ready pipe: stage 0 = ready; otherwise the setup step that
// failed and its errno.
struct ReadyMessage {
  int32_t stage;
  int32_t err;
};
constexpr int32_t kStageReady = 0;
constexpr int32_t kStageCgroup = 1;
constexpr int32_t kStageBody = 2;
constexpr int32_t kStageLifeline = 3;

void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void ReportStage(int fd, int32_t stage, int32_t err) {
  ReadyMessage m{stage, err};
  WriteAll(fd, &m, sizeof(m));
}

// Scans /proc for live (non-zombie) members of process group `pgid`.
std::vector<pid_t> LiveGroupMembers(pid_t pgid) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    auto st = ReadProcStat(pid);
    if (st.ok() && st->pgid == pgid && !IsDeadState(st->state)) out.push_back(pid);
  }
  closedir(d);
  return out;
}

}  // namespace

absl::StatusOr<ProcStat> ReadProcStat(pid_t pid) {
  std::string path = absl::StrCat("/proc/", pid, "/stat");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat("reading ", path));
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  int err = errno;
  close(fd);
  // ESRCH: the process exited between open and read.
  if (n < 0) return ErrnoStatus(absl::StrCat("reading ", path), err == ESRCH ? ENOENT : err);
  std::string text(buf, static_cast<size_t>(n));
  // comm may contain spaces and parentheses: it ends at the last ')'.
  size_t open_paren = text.find('(');
  size_t close_paren = text.rfind(')');
  if (open_paren == std::string::npos || close_paren == std::string::npos ||
      close_paren + 2 >= text.size()) {
    return absl::InternalError(absl::StrCat("unexpected format in ", path));
  }
  ProcStat st;
  st.pid = pid;
  st.comm = text.substr(open_paren + 1, close_paren - open_paren - 1);
  std::vector<std::string> f = absl::StrSplit(text.substr(close_paren + 2), ' ');
  // f[0] is field 3 (state); field k is f[k-3].
  if (f.size() < 20 || f[0].empty()) {
    return absl::InternalError(absl::StrCat("unexpected format in ", path));
  }
  st.state = f[0][0];
  int64_t ppid = 0, pgid = 0;
  if (!absl::SimpleAtoi(f[1], &ppid) || !absl::SimpleAtoi(f[2], &pgid) ||
      !absl::SimpleAtoi(f[11], &st.utime_ticks) || !absl::SimpleAtoi(f[12], &st.stime_ticks) ||
      !absl::SimpleAtoi(f[19], &st.start_ticks)) {
    return absl::InternalError(absl::StrCat("unexpected numbers in ", path));
  }
  st.ppid = static_cast<pid_t>(ppid);
  st.pgid = static_cast<pid_t>(pgid);
  return st;
}

nlohmann::json ProcessId::ToJson() const { return {{"pid", pid}, {"start", start_ticks}}; }

absl::StatusOr<ProcessId> ProcessId::FromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer() ||
      !j.contains("start") || !j["start"].is_number_unsigned()) {
    return absl::InvalidArgumentError(
        absl::StrCat("process id record must be {\"pid\":N,\"start\":T}, found ", j.dump()));
  }
  ProcessId id;
  id.pid = j["pid"].get<pid_t>();
  id.start_ticks = j["start"].get<uint64_t>();
  if (id.pid <= 0) return absl::InvalidArgumentError("process id record has pid <= 0");
  return id;
}

absl::StatusOr<ProcessId> ProcessId::Of(pid_t pid) {
  ASSIGN_OR_RETURN(ProcStat st, ReadProcStat(pid));
  return ProcessId{pid, st.start_ticks};
}

std::optional<ProcStat> StatIfSameAndAlive(const ProcessId& id) {
  auto st = ReadProcStat(id.pid);
  if (!st.ok() || st->start_ticks != id.start_ticks || IsDeadState(st->state)) {
    return std::nullopt;
  }
  return *st;
}

bool PollUntil(const std::function<bool()>& done, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (done()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

void CloseFdsExcept(int keep, int keep2) {
  if (keep > keep2) std::swap(keep, keep2);  // keep <= keep2
#ifdef SYS_close_range
  // Close [3, keep), (keep, keep2), (keep2, inf), skipping empty ranges.
  bool ok = true;
  unsigned next = 3;
  for (int k : {keep, keep2}) {
    if (k < static_cast<int>(next)) continue;
    if (static_cast<unsigned>(k) > next) {
      ok = ok && syscall(SYS_close_range, next, static_cast<unsigned>(k - 1), 0u) == 0;
    }
    next = static_cast<unsigned>(k) + 1;
  }
  ok = ok && syscall(SYS_close_range, next, ~0u, 0u) == 0;
  if (ok) return;
#endif
  long max_fd = sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 65536) max_fd = 65536;
  for (int fd = 3; fd < max_fd; ++fd) {
    if (fd != keep && fd != keep2) close(fd);
  }
}

void ReportWorkerReady(int ready_fd) {
  ReportStage(ready_fd, kStageReady, 0);
  close(ready_fd);
}

WorkerGroup::~WorkerGroup() { (void)Stop(); }

absl::Status WorkerGroup::Start(int count, WorkerBody body, const void* arg,
                                const std::string& cgroup_dir, absl::Duration ready_timeout) {
  if (!workers_.empty() || !unreaped_.empty()) {
    return absl::FailedPreconditionError("worker group already started");
  }
  // Everything the child needs is prepared here: after fork it may not allocate.
  std::string procs_path = cgroup_dir.empty() ? "" : cgroup_dir + "/cgroup.procs";
  const char* procs = procs_path.empty() ? nullptr : procs_path.c_str();
  const pid_t parent = getpid();
  const bool on_main_thread = gettid() == parent;
  int lifeline[2];
  if (pipe2(lifeline, O_CLOEXEC) != 0) return ErrnoStatus("creating the workers' lifeline pipe");
  lifeline_fd_ = lifeline[1];
  absl::Status failure;
  std::vector<int> ready_fds;
  for (int i = 0; i < count; ++i) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      failure = ErrnoStatus("creating a worker's ready pipe");
      break;
    }
    pid_t group = pgid_;
    pid_t pid = fork();
    if (pid < 0) {
      failure = ErrnoStatus("forking a worker");
      close(fds[0]);
      close(fds[1]);
      break;
    }
    if (pid == 0) {
      // Child: async-signal-safe calls only from here on.
      if (on_main_thread) prctl(PR_SET_PDEATHSIG, SIGKILL);
      // The kernel SIGKILLs us when the holder's write end of the lifeline closes.
      if (fcntl(lifeline[0], F_SETOWN, getpid()) != 0 ||
          fcntl(lifeline[0], F_SETSIG, SIGKILL) != 0 ||
          fcntl(lifeline[0], F_SETFL, fcntl(lifeline[0], F_GETFL) | O_ASYNC) != 0) {
        ReportStage(fds[1], kStageLifeline, errno);
        _exit(124);
      }
      pollfd hup{lifeline[0], POLLIN, 0};
      if (poll(&hup, 1, 0) != 0 || getppid() != parent) _exit(126);  // the holder is gone
      setpgid(0, group);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);  // the holder may block SIGTERM for signalfd
      for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) signal(sig, SIG_DFL);
      CloseFdsExcept(fds[1], lifeline[0]);
      if (procs != nullptr) {
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) {
          ReportStage(fds[1], kStageCgroup, errno);
          _exit(125);
        }
        close(fd);
      }
      int rc = body(arg, fds[1]);
      ReportStage(fds[1], kStageBody, rc);  // a body that returns before ready failed
      _exit(rc);
    }
    close(fds[1]);
    if (pgid_ == 0) pgid_ = pid;
    setpgid(pid, pgid_);  // also from the parent, so the group exists before we return
    unreaped_.push_back(pid);
    auto id = ProcessId::Of(pid);
    workers_.push_back(id.ok() ? *id : ProcessId{pid, 0});
    ready_fds.push_back(fds[0]);
  }
  close(lifeline[0]);
  // Wait for every worker's ready message.
  absl::Time deadline = absl::Now() + ready_timeout;
  for (size_t i = 0; i < ready_fds.size(); ++i) {
    int fd = ready_fds[i];
    if (!failure.ok()) {
      close(fd);
      continue;
    }
    ReadyMessage m{-1, 0};
    size_t got = 0;
    while (got < sizeof(m)) {
      int wait_ms =
          static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
      pollfd p{fd, POLLIN, 0};
      int r = poll(&p, 1, wait_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      ssize_t n = read(fd, reinterpret_cast<char*>(&m) + got, sizeof(m) - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    close(fd);
    pid_t pid = workers_[i].pid;
    if (got < sizeof(m)) {
      if (absl::Now() >= deadline) {
        failure = absl::DeadlineExceededError(absl::StrCat(
            "worker ", pid, " did not report ready within ", absl::FormatDuration(ready_timeout)));
      } else {
        failure = absl::InternalError(
            absl::StrCat("worker ", pid,
                         " exited during setup (killed by the OOM killer or a resource limit?)"));
      }
    } else if (m.stage == kStageLifeline) {
      failure = ErrnoStatus(absl::StrCat("worker ", pid, " arming its lifeline"), m.err);
    } else if (m.stage == kStageCgroup) {
      failure =
          ErrnoStatus(absl::StrCat("worker ", pid, " moving itself into ", procs_path), m.err);
    } else if (m.stage != kStageReady) {
      failure = ErrnoStatus(absl::StrCat("worker ", pid, " setting up"), m.err);
    }
  }
  if (!failure.ok()) {
    return WithRollbackFailure(failure, Stop());
  }
  return absl::OkStatus();
}

absl::Status WorkerGroup::Stop() {
  if (lifeline_fd_ >= 0) {
    close(lifeline_fd_);  // by itself SIGKILLs every worker
    lifeline_fd_ = -1;
  }
  if (pgid_ == 0) return absl::OkStatus();
  // Our unreaped children keep their pids (and so the group id) from being reused.
  if (!unreaped_.empty()) {
    kill(-pgid_, SIGKILL);
    for (pid_t pid : unreaped_) kill(pid, SIGKILL);
  }
  std::vector<pid_t> left;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (pid_t pid : unreaped_) {
    while (true) {
      int status = 0;
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno == ECHILD)) break;
      if (r < 0 && errno == EINTR) continue;
      if (absl::Now() >= deadline) {
        left.push_back(pid);
        break;
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
  }
  unreaped_ = left;
  if (!left.empty()) {
    return absl::InternalError(absl::StrCat("workers ", absl::StrJoin(left, ", "), " of group ",
                                            pgid_, " did not exit after SIGKILL"));
  }
  std::vector<pid_t> live;
  bool gone = PollUntil(
      [&] {
        live = LiveGroupMembers(pgid_);
        return live.empty();
      },
      absl::Seconds(5));
  if (!gone) {
    return absl::InternalError(absl::StrCat("processes ", absl::StrJoin(live, ", "),
                                            " of worker group ", pgid_, " are still alive"));
  }
  pgid_ = 0;
  workers_.clear();
  return absl::OkStatus();
}

nlohmann::json WorkerGroup::ToJson() const {
  nlohmann::json ws = nlohmann::json::array();
  for (const ProcessId& w : workers_) ws.push_back(w.ToJson());
  return {{"pgid", pgid_}, {"workers", ws}};
}

absl::Status WorkerGroup::KillFromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("workers") || !j["workers"].is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker record needs a \"workers\" array, found ", j.dump()));
  }
  std::vector<ProcessId> ids;
  for (const auto& w : j["workers"]) {
    ASSIGN_OR_RETURN(ProcessId id, ProcessId::FromJson(w));
    ids.push_back(id);
  }
  // Only processes that are provably ours (same pid and start time) are signalled; the
  // group is never signalled as a whole from a record, since its id may have been reused.
  for (const ProcessId& id : ids) {
    if (StatIfSameAndAlive(id)) kill(id.pid, SIGKILL);
  }
  std::vector<pid_t> live;
  bool gone = PollUntil(
      [&] {
        live.clear();
        for (const ProcessId& id : ids) {
          if (StatIfSameAndAlive(id)) live.push_back(id.pid);
        }
        return live.empty();
      },
      absl::Seconds(10));
  if (!gone) {
    return absl::InternalError(
        absl::StrCat("workers ", absl::StrJoin(live, ", "), " still alive after SIGKILL"));
  }
  return absl::OkStatus();
}

std::string CgroupDir(const std::string& path) {
  const std::string root = "/sys/fs/cgroup";
  if (path.rfind(root, 0) == 0) return path;
  if (!path.empty() && path[0] == '/') return root + path;
  return root + "/" + path;
}

absl::Status CheckCgroupPlacement(const std::string& dir) {
  if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot place workers in ", dir,
        ": no cgroup v2 hierarchy at /sys/fs/cgroup (fix: boot with the unified hierarchy, "
        "systemd.unified_cgroup_hierarchy=1, or leave out `cgroup`)"));
  }
  std::string procs = dir + "/cgroup.procs";
  if (access(dir.c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("cgroup ", dir,
                                            " does not exist (fix: create it with mkdir, or "
                                            "name an existing cgroup)"));
  }
  if (access(procs.c_str(), W_OK) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", procs, ": ", std::strerror(errno),
                     " (fix: run as root, or delegate the cgroup to this user)"));
  }
  return absl::OkStatus();
}

}  // namespace chaosdrill::injector
