// process.pause: SIGSTOP the matching processes (a hung, not dead, replica) and SIGCONT
// them on revert.
//
// Holder death: unless `watchdog=false`, Inject first forks a small watchdog process that
// blocks reading a pipe whose only write end is held (O_CLOEXEC) by the holder. A normal
// revert writes "x" (stand down); if the holder dies instead, however it dies (SIGKILL
// included), the kernel closes the write end, the watchdog reads EOF and SIGCONTs every
// target that is still the same process (pid and start time). The watchdog ignores
// SIGINT/SIGTERM/SIGHUP and sits in its own process group, so Ctrl-C on the holder's
// terminal does not take it down. The journal record lists the targets too, so
// `chaosdrill revert` resumes them even if the watchdog was killed as well.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status.h"
#include "injector/child_process.h"
#include "injector/fault_params.h"
#include "injector/fault_registry.h"
#include "injector/preflight.h"
#include "injector/process_target.h"

namespace chaosdrill::injector {
namespace {

const FaultKindInfo& PauseInfo() {
  static const FaultKindInfo* info = [] {
    auto* i = new FaultKindInfo;
    i->kind = "process.pause";
    i->summary = "SIGSTOP matching processes for the duration, SIGCONT on revert";
    i->takes_duration = true;
    for (ParamSpec& p : ProcessSelectorParams()) i->params.push_back(std::move(p));
    i->params.push_back({"watchdog",
                         ParamType::kBool,
                         false,
                         "true",
                         "fork a watchdog that SIGCONTs the targets if the holder dies",
                         {}});
    return i;
  }();
  return *info;
}

// What the watchdog needs, prepared before fork (it may not allocate afterwards).
struct WatchTarget {
  pid_t pid;
  uint64_t start_ticks;
  char stat_path[32];
};

// Field 22 (start time) of a /proc/PID/stat text, without allocating.
bool ParseStartTicks(const char* buf, size_t n, uint64_t* out) {
  size_t i = n;
  while (i > 0 && buf[i - 1] != ')') --i;
  if (i == 0) return false;
  int field = 2;  // buf[i-1] ends field 2 (comm); each space passed starts the next field
  for (; i < n && field < 22; ++i) {
    if (buf[i] == ' ') ++field;
  }
  if (field != 22 || i >= n) return false;
  uint64_t v = 0;
  bool any = false;
  for (; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) {
    v = v * 10 + static_cast<uint64_t>(buf[i] - '0');
    any = true;
  }
  *out = v;
  return any;
}

[[noreturn]] void WatchdogMain(int read_fd, const std::vector<WatchTarget>& targets) {
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  CloseFdsExcept(read_fd);
  char c = 0;
  ssize_t n;
  do {
    n = read(read_fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  if (n == 1 && c == 'x') _exit(0);  // the holder reverted
  // EOF: the holder is gone without reverting. Resume what is still ours.
  for (const WatchTarget& t : targets) {
    int fd = open(t.stat_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[1024];
    ssize_t len = read(fd, buf, sizeof(buf));
    close(fd);
    uint64_t start = 0;
    if (len > 0 && ParseStartTicks(buf, static_cast<size_t>(len), &start) &&
        start == t.start_ticks) {
      kill(t.pid, SIGCONT);
    }
  }
  _exit(0);
}

absl::Status ResumeAndVerify(const std::vector<ProcessId>& targets) {
  for (const ProcessId& t : targets) {
    RETURN_IF_ERROR(Annotate(SignalProcess(t, SIGCONT), "process.pause revert"));
  }
  std::vector<pid_t> stopped;
  bool ok = PollUntil(
      [&] {
        stopped.clear();
        for (const ProcessId& t : targets) {
          auto st = StatIfSameAndAlive(t);
          if (st && IsStoppedState(st->state)) stopped.push_back(t.pid);
        }
        return stopped.empty();
      },
      absl::Seconds(5));
  if (!ok) {
    return absl::InternalError(absl::StrCat("process.pause revert: ", absl::StrJoin(stopped, ", "),
                                            " still stopped after SIGCONT"));
  }
  return absl::OkStatus();
}

class PauseFault : public Fault {
 public:
  PauseFault(ProcessSelector selector, bool watchdog)
      : selector_(std::move(selector)), use_watchdog_(watchdog) {}
  ~PauseFault() override {
    // Not a revert: the owner decides that. Just do not leak the watchdog's pipe; closing
    // it makes the watchdog resume the targets, which is the safe side.
    if (watchdog_fd_ >= 0) close(watchdog_fd_);
    if (watchdog_.pid > 0) waitpid(watchdog_.pid, nullptr, WNOHANG);
  }

  absl::Status Prepare() override {
    if (prepared_) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::vector<ProcessId> found, SelectProcesses(selector_));
    // Someone else's stopped process is not ours to resume later.
    for (const ProcessId& p : found) {
      auto st = StatIfSameAndAlive(p);
      if (st && !IsStoppedState(st->state)) targets_.push_back(p);
    }
    if (targets_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "process.pause: every process matching ", selector_.Describe(), " is already stopped"));
    }
    prepared_ = true;
    return absl::OkStatus();
  }

  absl::Status Inject() override {
    if (applied_) return absl::OkStatus();
    RETURN_IF_ERROR(Prepare());
    if (use_watchdog_) RETURN_IF_ERROR(StartWatchdog());
    absl::Status s = StopAll();
    if (!s.ok()) {
      absl::Status r = ResumeAndVerify(targets_);
      StopWatchdog();
      return WithRollbackFailure(s, r);
    }
    applied_ = true;
    return absl::OkStatus();
  }

  absl::Status Revert() override {
    if (!applied_) return absl::OkStatus();
    RETURN_IF_ERROR(ResumeAndVerify(targets_));
    StopWatchdog();
    applied_ = false;
    return absl::OkStatus();
  }

  nlohmann::json RevertRecord() const override {
    nlohmann::json targets = nlohmann::json::array();
    for (const ProcessId& t : targets_) targets.push_back(t.ToJson());
    nlohmann::json r = {{"kind", "process.pause"}, {"targets", targets}};
    if (watchdog_.pid > 0) r["watchdog"] = watchdog_.ToJson();
    return r;
  }

  std::string Describe() const override {
    std::vector<pid_t> pids;
    for (const ProcessId& t : targets_) pids.push_back(t.pid);
    if (pids.empty()) return absl::StrCat("SIGSTOP ", selector_.Describe());
    return absl::StrCat("SIGSTOP pid ", absl::StrJoin(pids, ", "));
  }

 private:
  absl::Status StopAll() {
    for (const ProcessId& t : targets_) {
      RETURN_IF_ERROR(Annotate(SignalProcess(t, SIGSTOP), "process.pause"));
    }
    std::vector<pid_t> running;
    bool ok = PollUntil(
        [&] {
          running.clear();
          for (const ProcessId& t : targets_) {
            auto st = StatIfSameAndAlive(t);
            if (st && !IsStoppedState(st->state)) running.push_back(t.pid);
          }
          return running.empty();
        },
        absl::Seconds(5));
    if (!ok) {
      return absl::InternalError(absl::StrCat("process.pause: ", absl::StrJoin(running, ", "),
                                              " not stopped 5s after SIGSTOP"));
    }
    return absl::OkStatus();
  }

  absl::Status StartWatchdog() {
    std::vector<WatchTarget> watch;
    for (const ProcessId& t : targets_) {
      WatchTarget w{t.pid, t.start_ticks, {}};
      std::snprintf(w.stat_path, sizeof(w.stat_path), "/proc/%d/stat", t.pid);
      watch.push_back(w);
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("process.pause: watchdog pipe");
    pid_t pid = fork();
    if (pid < 0) {
      absl::Status s = ErrnoStatus("process.pause: forking the watchdog");
      close(fds[0]);
      close(fds[1]);
      return s;
    }
    if (pid == 0) WatchdogMain(fds[0], watch);
    close(fds[0]);
    watchdog_fd_ = fds[1];
    auto id = ProcessId::Of(pid);
    watchdog_ = id.ok() ? *id : ProcessId{pid, 0};
    return absl::OkStatus();
  }

  void StopWatchdog() {
    if (watchdog_fd_ < 0) return;
    ssize_t n;
    do {
      n = write(watchdog_fd_, "x", 1);
    } while (n < 0 && errno == EINTR);
    close(watchdog_fd_);
    watchdog_fd_ = -1;
    while (waitpid(watchdog_.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    watchdog_ = ProcessId{};
  }

  const ProcessSelector selector_;
  const bool use_watchdog_;
  bool prepared_ = false;
  bool applied_ = false;
  std::vector<ProcessId> targets_;
  int watchdog_fd_ = -1;
  ProcessId watchdog_;
};

class ProcessPauseFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override { return PauseInfo(); }
  PreflightResult Preflight() const override { return SignalPreflight(); }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    RETURN_IF_ERROR(ValidateFaultSpec(info(), spec));
    FaultParams params(info(), spec);
    ASSIGN_OR_RETURN(ProcessSelector selector, ProcessSelectorFromParams(params));
    ASSIGN_OR_RETURN(auto watchdog, params.Bool("watchdog"));
    return FaultPtr(new PauseFault(std::move(selector), watchdog.value_or(true)));
  }
  absl::Status RevertFromRecord(const nlohmann::json& record) const override {
    if (!record.is_object() || !record.contains("targets") || !record["targets"].is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat("process.pause record needs a \"targets\" array: ", record.dump()));
    }
    std::vector<ProcessId> targets;
    for (const auto& t : record["targets"]) {
      ASSIGN_OR_RETURN(ProcessId id, ProcessId::FromJson(t));
      targets.push_back(id);
    }
    RETURN_IF_ERROR(ResumeAndVerify(targets));
    // A watchdog whose holder lives on (a forced replay) has nothing left to guard.
    if (record.contains("watchdog")) {
      if (auto w = ProcessId::FromJson(record["watchdog"]); w.ok()) {
        (void)SignalProcess(*w, SIGKILL);
      }
    }
    return absl::OkStatus();
  }
};

}  // namespace

CHAOSDRILL_REGISTER_FAULT(ProcessPauseFactory)

}  // namespace chaosdrill::injector
