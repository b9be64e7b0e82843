#include "tests/agent/agent_harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace chaosdrill::testing {

const char kTestAllowlist[] =
    "lease_ttl: 10s\n"
    "allowlist:\n"
    "  kinds: [\"test.*\", \"testslow.*\", \"network.*\"]\n"
    "  processes: [\"sleep\"]\n"
    "  interfaces: [\"veth*\", \"lo\", \"d0\"]\n";

Child::Child(const std::vector<std::string>& argv, bool pipe_stdout) {
  int fds[2] = {-1, -1};
  if (pipe_stdout) REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  std::vector<char*> cargv;
  std::vector<std::string> copy = argv;
  for (auto& a : copy) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_ = fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    if (pipe_stdout) dup2(fds[1], 1);
    setpgid(0, 0);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  if (pipe_stdout) {
    close(fds[1]);
    out_ = fds[0];
  }
}

Child::~Child() {
  Kill();
  if (out_ >= 0) close(out_);
}

void Child::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  kill(pid_, SIGCONT);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::unique_ptr<Child> StartSleeper() {
  auto child = std::make_unique<Child>(std::vector<std::string>{"/bin/sleep", "1000"});
  std::string path = absl::StrCat("/proc/", child->pid(), "/cmdline");
  for (int i = 0; i < 5000; ++i) {  // exec has no event to await; at most ~10 s
    std::ifstream in(path, std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.rfind(std::string("/bin/sleep\0", 11), 0) == 0) return child;
    usleep(2000);
  }
  FAIL("sleep did not start");
  return child;
}

std::string Child::ReadLine(int timeout_ms) {
  while (buffered_.find('\n') == std::string::npos) {
    pollfd p{out_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return "";
    char buf[256];
    ssize_t n = read(out_, buf, sizeof(buf));
    if (n <= 0) return "";
    buffered_.append(buf, static_cast<size_t>(n));
  }
  size_t nl = buffered_.find('\n');
  std::string line = buffered_.substr(0, nl);
  buffered_.erase(0, nl + 1);
  return line;
}

AgentHarness::AgentHarness() {
  agent::InitPkiOptions opts;
  opts.out_dir = dir.path() + "/pki";
  auto paths = agent::InitPki(opts);
  REQUIRE(paths.ok());
  pki = *paths;
  journal = dir.path() + "/journal";
  audit = dir.path() + "/audit.jsonl";
}

void AgentHarness::Start(bool tcp, const std::string& extra_config) {
  agent::LocalAgentOptions opts;
  opts.command = command_prefix;
  opts.command.insert(opts.command.end(),
                      {BinaryPath("tests/agent/agent_test_server"), "agent", "serve"});
  opts.command.insert(opts.command.end(), serve_flags.begin(), serve_flags.end());
  opts.extra_config = extra_config.empty() ? kTestAllowlist : extra_config;
  opts.journal = journal;
  opts.audit_log = audit;
  if (tcp) {
    opts.tcp_listen = "127.0.0.1:0";
    opts.tls_ca = pki.ca_cert;
    opts.tls_cert = pki.agent_cert;
    opts.tls_key = pki.agent_key;
  }
  auto started = agent::LocalAgent::Start(opts);
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  agent = std::move(started).value();
}

std::unique_ptr<agent::AgentClient> AgentHarness::UnixClient() const {
  auto c = agent->Connect();
  REQUIRE(c.ok());
  (*c)->set_rpc_timeout(absl::Seconds(20));
  return std::move(c).value();
}

std::unique_ptr<agent::AgentClient> AgentHarness::TcpClient(const std::string& cert,
                                                            const std::string& key) const {
  auto c = agent::AgentClient::Connect({.tcp_target = absl::StrCat("127.0.0.1:", agent->tcp_port()),
                                        .ca_file = pki.ca_cert,
                                        .cert_file = cert,
                                        .key_file = key});
  REQUIRE(c.ok());
  (*c)->set_rpc_timeout(absl::Seconds(20));
  return std::move(c).value();
}

std::string AgentHarness::AuditText() const {
  std::ifstream in(audit);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> AgentHarness::AuditLines(const std::vector<std::string>& needles) const {
  std::vector<std::string> out;
  std::istringstream in(AuditText());
  std::string line;
  while (std::getline(in, line)) {
    bool all = true;
    for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
    if (all) out.push_back(line);
  }
  return out;
}

int CountEntries(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

}  // namespace chaosdrill::testing
