#include "injector/process_target.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status.h"

namespace chaosdrill::injector {
namespace {

std::optional<std::string> ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return ss.str();
}

std::optional<std::string> Exe(pid_t pid) {
  char buf[4096];
  std::string link = absl::StrCat("/proc/", pid, "/exe");
  ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

std::optional<std::string> Cmdline(pid_t pid) {
  auto raw = ReadFileText(absl::StrCat("/proc/", pid, "/cmdline"));
  if (!raw) return std::nullopt;
  std::string s = *raw;
  while (!s.empty() && s.back() == '\0') s.pop_back();
  std::replace(s.begin(), s.end(), '\0', ' ');
  return s;
}

// The process's cgroup v2 path ("/system.slice/x.service"), from its "0::" line.
std::optional<std::string> CgroupOf(pid_t pid) {
  auto raw = ReadFileText(absl::StrCat("/proc/", pid, "/cgroup"));
  if (!raw) return std::nullopt;
  std::istringstream in(*raw);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return std::nullopt;
}

// "/sys/fs/cgroup/a/b/" and "a/b" -> "/a/b".
std::string NormalizeCgroup(std::string path) {
  absl::string_view v = path;
  absl::ConsumePrefix(&v, "/sys/fs/cgroup");
  std::string out(v);
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out.empty() || out[0] != '/') out = "/" + out;
  return out;
}

// Why a pid may never be a target, or empty.
std::string ForbiddenReason(pid_t pid, const ProcStat& st) {
  if (pid == 1) return "PID 1 (init)";
  if (pid == getpid()) return "chaosdrill itself";
  if (pid == getppid()) return "chaosdrill's parent";
  if (pid == 2 || st.ppid == 2) return "a kernel thread";
  return "";
}

const std::pair<const char*, int> kSignals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},
    {"KILL", SIGKILL},     {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

}  // namespace

absl::StatusOr<int> ParseSignal(absl::string_view text) {
  std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  int number = 0;
  if (absl::SimpleAtoi(upper, &number)) {
    if (number >= 1 && number <= SIGRTMAX) return number;
  } else {
    absl::string_view name = upper;
    absl::ConsumePrefix(&name, "SIG");
    for (const auto& [n, sig] : kSignals) {
      if (name == n) return sig;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", text, "\" is not a signal (expected a name like SIGKILL, KILL, TERM or a number)"));
}

std::string SignalName(int signal) {
  for (const auto& [n, sig] : kSignals) {
    if (sig == signal) return absl::StrCat("SIG", n);
  }
  return absl::StrCat("SIG", signal);
}

std::string ProcessSelector::Describe() const {
  std::vector<std::string> parts;
  if (pid) parts.push_back(absl::StrCat("pid ", *pid));
  if (exe_pattern) parts.push_back(absl::StrCat("exe ~ /", *exe_pattern, "/"));
  if (cmdline_pattern) parts.push_back(absl::StrCat("cmdline ~ /", *cmdline_pattern, "/"));
  if (cgroup) parts.push_back(absl::StrCat("cgroup ", *cgroup));
  std::string out = absl::StrJoin(parts, ", ");
  if (count) absl::StrAppend(&out, " (at most ", *count, ")");
  if (percent) absl::StrAppend(&out, " (", *percent, "% of matches)");
  return out;
}

std::vector<ParamSpec> ProcessSelectorParams() {
  return {
      {"pid", ParamType::kInt, false, "", "target this process id", {}},
      {"exe",
       ParamType::kRegex,
       false,
       "",
       "target processes whose executable path (/proc/PID/exe) matches this regex (search; "
       "anchor with ^ and $)",
       {}},
      {"cmdline",
       ParamType::kRegex,
       false,
       "",
       "target processes whose command line (arguments joined by spaces) matches this regex",
       {}},
      {"cgroup",
       ParamType::kString,
       false,
       "",
       "target processes in this cgroup v2 (e.g. /system.slice/x.service) or below it",
       {}},
      {"count",
       ParamType::kInt,
       false,
       "",
       "act on at most this many matching processes, chosen at random (default: all)",
       {}},
      {"percent",
       ParamType::kPercent,
       false,
       "",
       "act on this share of the matching processes, rounded up, chosen at random",
       {}},
  };
}

absl::StatusOr<ProcessSelector> ProcessSelectorFromParams(const FaultParams& params) {
  ProcessSelector sel;
  ASSIGN_OR_RETURN(auto pid, params.Int("pid"));
  if (pid) {
    if (*pid <= 0 || *pid > 0x3fffffff) return params.Error("pid", "must be a positive pid");
    sel.pid = static_cast<pid_t>(*pid);
  }
  sel.exe_pattern = params.String("exe");
  sel.cmdline_pattern = params.String("cmdline");
  sel.cgroup = params.String("cgroup");
  ASSIGN_OR_RETURN(sel.count, params.Int("count"));
  ASSIGN_OR_RETURN(sel.percent, params.Percent("percent"));
  if (!sel.pid && !sel.exe_pattern && !sel.cmdline_pattern && !sel.cgroup) {
    return params.Error("pid", "no target: give pid, exe, cmdline or cgroup");
  }
  if (sel.count && sel.percent) return params.Error("count", "give count or percent, not both");
  if (sel.count && *sel.count == 0) return params.Error("count", "must be at least 1");
  if (sel.percent && *sel.percent <= 0) return params.Error("percent", "must be above 0%");
  for (const auto* pattern : {&sel.exe_pattern, &sel.cmdline_pattern}) {
    if (!*pattern) continue;
    try {
      std::regex re(**pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return params.Error(pattern == &sel.exe_pattern ? "exe" : "cmdline", e.what());
    }
  }
  return sel;
}

absl::StatusOr<std::vector<ProcessId>> SelectProcesses(const ProcessSelector& selector) {
  std::optional<std::regex> exe_re, cmd_re;
  try {
    if (selector.exe_pattern) exe_re.emplace(*selector.exe_pattern, std::regex::ECMAScript);
    if (selector.cmdline_pattern) {
      cmd_re.emplace(*selector.cmdline_pattern, std::regex::ECMAScript);
    }
  } catch (const std::regex_error& e) {
    return absl::InvalidArgumentError(absl::StrCat("bad target regex: ", e.what()));
  }
  std::optional<std::string> cgroup;
  if (selector.cgroup) cgroup = NormalizeCgroup(*selector.cgroup);

  std::vector<pid_t> candidates;
  if (selector.pid) {
    candidates.push_back(*selector.pid);
  } else {
    DIR* d = opendir("/proc");
    if (d == nullptr) return ErrnoStatus("listing /proc");
    while (dirent* e = readdir(d)) {
      int pid = 0;
      if (absl::SimpleAtoi(e->d_name, &pid) && pid > 0) candidates.push_back(pid);
    }
    closedir(d);
  }

  std::vector<ProcessId> matches;
  for (pid_t pid : candidates) {
    auto st = ReadProcStat(pid);
    if (!st.ok()) {
      if (selector.pid) {
        return absl::NotFoundError(absl::StrCat("no process with pid ", pid));
      }
      continue;
    }
    if (IsDeadState(st->state)) continue;
    std::string forbidden = ForbiddenReason(pid, *st);
    if (!forbidden.empty()) {
      if (selector.pid) {
        return absl::PermissionDeniedError(
            absl::StrCat("refusing to target pid ", pid, ": it is ", forbidden));
      }
      continue;
    }
    if (exe_re) {
      auto exe = Exe(pid);
      if (!exe || !std::regex_search(*exe, *exe_re)) continue;
    }
    if (cmd_re) {
      auto cmd = Cmdline(pid);
      if (!cmd || !std::regex_search(*cmd, *cmd_re)) continue;
    }
    if (cgroup) {
      auto cg = CgroupOf(pid);
      if (!cg) continue;
      if (*cgroup != "/" && *cg != *cgroup && cg->rfind(*cgroup + "/", 0) != 0) continue;
    }
    matches.push_back(ProcessId{pid, st->start_ticks});
  }
  if (matches.empty()) {
    return absl::NotFoundError(absl::StrCat("no process matches ", selector.Describe()));
  }
  size_t want = matches.size();
  if (selector.count) want = std::min<size_t>(want, static_cast<size_t>(*selector.count));
  if (selector.percent) {
    want = static_cast<size_t>(
        std::ceil(static_cast<double>(matches.size()) * *selector.percent / 100.0 - 1e-9));
    want = std::clamp<size_t>(want, 1, matches.size());
  }
  if (want < matches.size()) {
    std::mt19937_64 rng(std::random_device{}());
    std::shuffle(matches.begin(), matches.end(), rng);
    matches.resize(want);
    std::sort(matches.begin(), matches.end(),
              [](const ProcessId& a, const ProcessId& b) { return a.pid < b.pid; });
  }
  return matches;
}

absl::Status SignalProcess(const ProcessId& id, int signal, bool* sent) {
  if (sent != nullptr) *sent = false;
#ifdef SYS_pidfd_open
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, id.pid, 0));
  if (pidfd >= 0) {
    // The pidfd pins the process: if it is still the one we chose now, it is the one we hit.
    absl::Status result = absl::OkStatus();
    if (StatIfSameAndAlive(id)) {
      if (syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0) == 0) {
        if (sent != nullptr) *sent = true;
      } else if (errno != ESRCH) {
        result = ErrnoStatus(absl::StrCat("sending ", SignalName(signal), " to pid ", id.pid));
      }
    }
    close(pidfd);
    return result;
  }
  if (errno == ESRCH) return absl::OkStatus();
#endif
  if (!StatIfSameAndAlive(id)) return absl::OkStatus();
  if (kill(id.pid, signal) != 0) {
    if (errno == ESRCH) return absl::OkStatus();
    return ErrnoStatus(absl::StrCat("sending ", SignalName(signal), " to pid ", id.pid));
  }
  if (sent != nullptr) *sent = true;
  return absl::OkStatus();
}

}  // namespace chaosdrill::injector
