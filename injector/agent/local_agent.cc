#include "injector/agent/local_agent.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "injector/agent/pki.h"

namespace chaosdrill::agent {
namespace {

std::string SelfExe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "chaosdrill";
}

std::string YamlQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Waits for the child to exit, up to `timeout`. Returns true and sets *status if it did.
bool WaitFor(pid_t pid, absl::Duration timeout, int* status) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (absl::Now() >= deadline) return false;
    // No event to wait on for a child without a pidfd in every kernel; poll gently.
    ::usleep(10'000);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalAgent>> LocalAgent::Start(const LocalAgentOptions& options) {
  std::unique_ptr<LocalAgent> agent(new LocalAgent());
  std::string tmpl = absl::StrCat(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp",
                                  "/chaosdrill-agent-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("creating private agent directory");
  agent->dir_ = tmpl;  // mkdtemp: mode 0700
  agent->socket_path_ = agent->dir_ + "/agent.sock";
  std::string config = absl::StrCat("listen:\n  unix: ", YamlQuote(agent->socket_path_), "\n");
  if (!options.tcp_listen.empty()) {
    absl::StrAppend(&config, "  tcp: ", YamlQuote(options.tcp_listen),
                    "\ntls:\n  ca: ", YamlQuote(options.tls_ca),
                    "\n  cert: ", YamlQuote(options.tls_cert),
                    "\n  key: ", YamlQuote(options.tls_key), "\n");
  }
  absl::StrAppend(
      &config, "audit_log: ",
      YamlQuote(options.audit_log.empty() ? agent->dir_ + "/audit.jsonl" : options.audit_log),
      "\n");
  if (!options.journal.empty())
    absl::StrAppend(&config, "journal: ", YamlQuote(options.journal), "\n");
  absl::StrAppend(&config, options.extra_config);
  std::string config_path = agent->dir_ + "/agent.yaml";
  RETURN_IF_ERROR(WritePrivateFile(config_path, config));

  std::vector<std::string> argv = options.command;
  if (argv.empty()) argv = {SelfExe(), "agent", "serve"};
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoStatus("pipe for agent readiness");
  argv.insert(argv.end(), {"--config", config_path, "--ready-fd", "3"});
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  // The environment, built before fork (the child may only make async-signal-safe calls):
  // ours, with CHAOSDRILL_LOG replaced when a level is given.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!options.log_level.empty() && absl::StartsWith(*e, "CHAOSDRILL_LOG=")) {
      continue;
    }
    env.emplace_back(*e);
  }
  if (!options.log_level.empty()) env.push_back("CHAOSDRILL_LOG=" + options.log_level);
  std::vector<char*> cenv;
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return ErrnoStatus("fork for local agent");
  }
  if (pid == 0) {
    // Async-signal-safe calls only until exec. Its own process group: a Ctrl-C on the
    // runner's terminal goes to the runner, which reverts through the agent; the agent
    // still dies with the runner (PR_SET_PDEATHSIG).
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    if (::dup2(pipefd[1], 3) < 0) ::_exit(127);  // dup2 clears O_CLOEXEC on fd 3
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  agent->pid_ = pid;
  ::setpgid(pid, pid);  // also from here, so it holds before the child runs (either may win)
  ::close(pipefd[1]);
  std::string line;
  absl::Time deadline = absl::Now() + options.start_timeout;
  while (line.find('\n') == std::string::npos) {
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) break;
    pollfd p{pipefd[0], POLLIN, 0};
    int r = ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char buf[128];
    ssize_t n = ::read(pipefd[0], buf, sizeof(buf));
    if (n <= 0) break;  // EOF: the child exited (or closed fd 3) without saying ready
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  if (line.rfind("ready", 0) != 0) {
    absl::Status st = agent->Stop(absl::Seconds(5));
    return absl::UnavailableError(
        absl::StrCat("local agent (", argv[0], ") did not become ready within ",
                     absl::FormatDuration(options.start_timeout), st.ok() ? "" : ": ", st.message(),
                     "; its log is on stderr, its audit log in ", agent->dir_));
  }
  if (size_t at = line.find("tcp_port="); at != std::string::npos) {
    agent->tcp_port_ = std::atoi(line.c_str() + at + 9);
  }
  if (size_t at = line.find("metrics_port="); at != std::string::npos) {
    agent->metrics_port_ = std::atoi(line.c_str() + at + 13);
  }
  return agent;
}

absl::Status LocalAgent::Stop(absl::Duration timeout) {
  if (pid_ <= 0) return absl::OkStatus();
  ::kill(pid_, SIGTERM);
  int status = 0;
  if (!WaitFor(pid_, timeout, &status)) {
    ::kill(pid_, SIGKILL);
    WaitFor(pid_, absl::Seconds(5), &status);
    pid_ = -1;
    return absl::DeadlineExceededError(absl::StrCat("local agent did not exit within ",
                                                    absl::FormatDuration(timeout), "; killed"));
  }
  pid_ = -1;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(
      "local agent exited with ", WIFEXITED(status) ? absl::StrCat("status ", WEXITSTATUS(status))
                                                    : absl::StrCat("signal ", WTERMSIG(status))));
}

LocalAgent::~LocalAgent() {
  (void)Stop();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

}  // namespace chaosdrill::agent
