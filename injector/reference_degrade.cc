// reference.degrade: switches a reference replica (`chaosdrill reference replica`) into a
// degraded mode at run time through its admin socket, and back on revert. The replica
// stays live and ready while degraded, so `wrong-answers` is the gray failure that only a
// semantic (golden) probe sees, `errors` a replica that fails every inference while its
// readiness check passes, `slow` one that answers late (docs/reference-inference.md).
//
// Targets are processes, chosen like process.* targets (pid, exe, cmdline, cgroup; the
// runner resolves `role: replica[i]` to a pid), so the agent's process allowlist and the
// hard rules (PID 1, chaosdrill itself) apply. The socket is the target's own
// `--admin-socket PATH` argument, relative paths taken from the target's working
// directory; a target started without one is refused. The socket's directory is opened
// with O_PATH and the socket reached as /proc/self/fd/N/NAME, so a long path does not
// hit the 108-byte sun_path limit.
//
// Revert restores the mode the replica had before (read with `status` on inject) and
// verifies it with `status`; a replica that is gone, or is another process now, counts as
// reverted (a restarted replica starts undegraded).
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "injector/child_process.h"
#include "injector/fault_params.h"
#include "injector/fault_registry.h"
#include "injector/process_target.h"

namespace chaosdrill::injector {
namespace {

constexpr char kKind[] = "reference.degrade";
constexpr absl::Duration kIoTimeout = absl::Seconds(2);

const FaultKindInfo& DegradeInfo() {
  static const FaultKindInfo* info = [] {
    auto* i = new FaultKindInfo;
    i->kind = kKind;
    i->summary =
        "switch a reference replica into a degraded mode (wrong answers, errors, slow) "
        "through its admin socket; restore it on revert";
    i->takes_duration = true;
    i->params.push_back(
        {"mode",
         ParamType::kEnum,
         false,
         "wrong-answers",
         "wrong-answers (ready, every output + 1.0), errors (ready, UNAVAILABLE), slow (ready, "
         "late answers)",
         {"wrong-answers", "errors", "slow"}});
    for (ParamSpec& p : ProcessSelectorParams()) i->params.push_back(std::move(p));
    return i;
  }();
  return *info;
}

// The socket of one target: directory (absolute) and file name.
struct AdminTarget {
  ProcessId id;
  std::string dir;
  std::string name;
  std::string previous = "none";  // mode before inject

  std::string path() const { return dir + "/" + name; }
  nlohmann::json ToJson() const {
    nlohmann::json j = id.ToJson();
    j["socket"] = path();
    j["previous"] = previous;
    return j;
  }
};

absl::StatusOr<std::vector<std::string>> ReadCmdline(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/cmdline"), std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("reading /proc/", pid, "/cmdline"));
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args = absl::StrSplit(all, '\0', absl::SkipEmpty());
  return args;
}

// The target's `--admin-socket PATH` (or `--admin-socket=PATH`), made absolute.
absl::StatusOr<AdminTarget> FindAdminSocket(const ProcessId& id) {
  ASSIGN_OR_RETURN(std::vector<std::string> args, ReadCmdline(id.pid));
  std::string path;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--admin-socket" && i + 1 < args.size()) path = args[i + 1];
    if (absl::StartsWith(args[i], "--admin-socket=")) path = args[i].substr(15);
  }
  if (path.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        kKind, ": pid ", id.pid, " (", absl::StrJoin(args, " ").substr(0, 120),
        ") was not started with --admin-socket; only reference replicas can be degraded"));
  }
  if (path.front() != '/') {
    char cwd[4096];
    ssize_t n = readlink(absl::StrCat("/proc/", id.pid, "/cwd").c_str(), cwd, sizeof(cwd) - 1);
    if (n <= 0) {
      return ErrnoStatus(absl::StrCat(kKind, ": reading the working directory of pid ", id.pid));
    }
    path = absl::StrCat(std::string(cwd, static_cast<size_t>(n)), "/", path);
  }
  size_t slash = path.rfind('/');
  AdminTarget t{.id = id, .dir = path.substr(0, slash), .name = path.substr(slash + 1)};
  if (t.dir.empty()) t.dir = "/";
  return t;
}

// One request line, one answer line (reference/admin_socket.h's protocol). Unavailable
// when nothing listens at the socket.
absl::StatusOr<std::string> AdminRequest(const std::string& dir, const std::string& name,
                                         const std::string& line) {
  const std::string context = absl::StrCat(kKind, ": admin socket ", dir, "/", name);
  int dir_fd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Annotate(ErrnoStatus("opening its directory"), context);
  std::string via = absl::StrCat("/proc/self/fd/", dir_fd, "/", name);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (via.size() >= sizeof(addr.sun_path)) {
    close(dir_fd);
    return absl::InvalidArgumentError(absl::StrCat(context, ": socket name too long"));
  }
  std::memcpy(addr.sun_path, via.c_str(), via.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    close(dir_fd);
    return Annotate(ErrnoStatus("socket"), context);
  }
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  int connect_errno = errno;
  close(dir_fd);
  if (rc != 0) {
    close(fd);
    absl::Status s = ErrnoStatus("connecting", connect_errno);
    if (connect_errno == ENOENT || connect_errno == ECONNREFUSED) {
      s = absl::UnavailableError(absl::StrCat("connecting: ", std::strerror(connect_errno)));
    }
    return Annotate(s, context);
  }
  const absl::Time deadline = absl::Now() + kIoTimeout;
  std::string out = line + "\n";
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s = ErrnoStatus("sending");
      close(fd);
      return Annotate(s, context);
    }
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  while (answer.find('\n') == std::string::npos) {
    int left_ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    int r = left_ms > 0 ? poll(&p, 1, left_ms) : 0;
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      close(fd);
      return absl::DeadlineExceededError(absl::StrCat(context, ": no answer to '", line, "' in ",
                                                      absl::FormatDuration(kIoTimeout)));
    }
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  size_t nl = answer.find('\n');
  if (nl == std::string::npos) {
    return absl::UnavailableError(absl::StrCat(context, ": closed without an answer"));
  }
  return answer.substr(0, nl);
}

// The mode in a `status` answer ("ok ready=1 degrade=none ...").
absl::StatusOr<std::string> CurrentMode(const AdminTarget& t) {
  ASSIGN_OR_RETURN(std::string answer, AdminRequest(t.dir, t.name, "status"));
  for (absl::string_view field : absl::StrSplit(answer, ' ')) {
    if (absl::StartsWith(field, "degrade=")) return std::string(field.substr(8));
  }
  return absl::InternalError(
      absl::StrCat(kKind, ": unexpected status answer from ", t.path(), ": ", answer));
}

absl::Status SetMode(const AdminTarget& t, const std::string& mode) {
  ASSIGN_OR_RETURN(std::string answer, AdminRequest(t.dir, t.name, "degrade " + mode));
  if (answer != "ok degrade=" + mode) {
    return absl::InternalError(absl::StrCat(kKind, ": pid ", t.id.pid, " answered '", answer,
                                            "' to 'degrade ", mode, "'"));
  }
  return absl::OkStatus();
}

// Puts one target back to its previous mode and checks it. Gone or replaced: reverted.
absl::Status Restore(const AdminTarget& t) {
  if (!StatIfSameAndAlive(t.id)) return absl::OkStatus();
  absl::Status s = SetMode(t, t.previous);
  if (absl::IsUnavailable(s) && !StatIfSameAndAlive(t.id)) return absl::OkStatus();
  RETURN_IF_ERROR(s);
  ASSIGN_OR_RETURN(std::string now, CurrentMode(t));
  if (now != t.previous) {
    return absl::InternalError(absl::StrCat(kKind, " revert: pid ", t.id.pid, " reports degrade=",
                                            now, " after restoring ", t.previous));
  }
  return absl::OkStatus();
}

class DegradeFault : public Fault {
 public:
  DegradeFault(ProcessSelector selector, std::string mode)
      : selector_(std::move(selector)), mode_(std::move(mode)) {}

  absl::Status Prepare() override {
    if (prepared_) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::vector<ProcessId> found, SelectProcesses(selector_));
    for (const ProcessId& p : found) {
      ASSIGN_OR_RETURN(AdminTarget t, FindAdminSocket(p));
      targets_.push_back(std::move(t));
    }
    prepared_ = true;
    return absl::OkStatus();
  }

  absl::Status Inject() override {
    RETURN_IF_ERROR(Prepare());
    for (size_t i = 0; i < targets_.size(); ++i) {
      AdminTarget& t = targets_[i];
      absl::Status s = [&]() -> absl::Status {
        ASSIGN_OR_RETURN(t.previous, CurrentMode(t));
        return SetMode(t, mode_);
      }();
      if (!s.ok()) {
        for (size_t j = 0; j < i; ++j) (void)Restore(targets_[j]);
        return s;
      }
      applied_ = i + 1;
    }
    return absl::OkStatus();
  }

  absl::Status Revert() override {
    absl::Status first;
    for (size_t i = 0; i < applied_; ++i) {
      absl::Status s = Restore(targets_[i]);
      if (first.ok()) first = s;
    }
    if (first.ok()) applied_ = 0;
    return first;
  }

  nlohmann::json RevertRecord() const override {
    nlohmann::json targets = nlohmann::json::array();
    for (const AdminTarget& t : targets_) targets.push_back(t.ToJson());
    return {{"kind", kKind}, {"mode", mode_}, {"targets", targets}};
  }

  std::string Describe() const override {
    std::vector<std::string> pids;
    for (const AdminTarget& t : targets_) pids.push_back(absl::StrCat(t.id.pid));
    return absl::StrCat("degrade ", mode_, " on ",
                        pids.empty() ? selector_.Describe() : "pid " + absl::StrJoin(pids, ", "));
  }

 private:
  const ProcessSelector selector_;
  const std::string mode_;
  bool prepared_ = false;
  std::vector<AdminTarget> targets_;
  size_t applied_ = 0;  // targets_[0, applied_) were switched
};

class ReferenceDegradeFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override { return DegradeInfo(); }
  PreflightResult Preflight() const override {
    // Only needs /proc and a Unix socket; whose replicas can be reached is decided per
    // target by the socket's permissions (0600: the replica's user, or root).
    return {.available = true, .reason = "", .fix = ""};
  }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    RETURN_IF_ERROR(ValidateFaultSpec(info(), spec));
    FaultParams params(info(), spec);
    ASSIGN_OR_RETURN(ProcessSelector selector, ProcessSelectorFromParams(params));
    return FaultPtr(new DegradeFault(std::move(selector), *params.String("mode")));
  }
  absl::Status RevertFromRecord(const nlohmann::json& record) const override {
    if (!record.contains("targets") || !record["targets"].is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(kKind, " revert record: no targets list"));
    }
    absl::Status first;
    for (const nlohmann::json& j : record["targets"]) {
      auto id = ProcessId::FromJson(j);
      if (!id.ok() || !j.contains("socket") || !j["socket"].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(kKind, " revert record: bad target ", j.dump()));
      }
      std::string path = j["socket"].get<std::string>();
      size_t slash = path.rfind('/');
      if (slash == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(kKind, " revert record: bad socket ", path));
      }
      AdminTarget t{.id = *id,
                    .dir = slash == 0 ? "/" : path.substr(0, slash),
                    .name = path.substr(slash + 1),
                    .previous = j.value("previous", std::string("none"))};
      absl::Status s = Restore(t);
      if (first.ok()) first = s;
    }
    return first;
  }
};

}  // namespace

CHAOSDRILL_REGISTER_FAULT(ReferenceDegradeFactory)

}  // namespace chaosdrill::injector
