// Shared pieces of the agent tests: a PKI in a temp dir, the agent under test started as a
// child (agent_test_server through LocalAgent, i.e. the runner's own code path), sleeper
// processes to pause, and child processes killed on scope exit.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "injector/agent/local_agent.h"
#include "injector/agent/pki.h"
#include "tests/test_support.h"

namespace chaosdrill::testing {

// A child process killed (SIGKILL) and reaped on destruction. Optionally with stdout piped.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv, bool pipe_stdout = false);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  // Reads stdout up to a newline (bounded by timeout_ms); "" on EOF/timeout.
  std::string ReadLine(int timeout_ms);
  void Kill();

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffered_;
};

// `sleep 1000`, our pause target; returns once it runs sleep (its cmdline is "sleep ..."
// rather than the forked test's: the allowlist matches on it).
std::unique_ptr<Child> StartSleeper();

struct AgentHarness {
  TempDir dir;
  agent::PkiPaths pki;
  std::string journal;
  std::string audit;
  std::unique_ptr<agent::LocalAgent> agent;
  std::vector<std::string> command_prefix;  // e.g. {"/usr/sbin/ip", "netns", "exec", NS}
  std::vector<std::string> serve_flags;     // after "agent serve", e.g. --tls-allowed-subject

  AgentHarness();
  // Starts (or restarts) the agent; `tcp` adds a 127.0.0.1:0 mTLS listener.
  void Start(bool tcp = false, const std::string& extra_config = "");
  std::unique_ptr<agent::AgentClient> UnixClient() const;
  std::unique_ptr<agent::AgentClient> TcpClient(const std::string& cert,
                                                const std::string& key) const;
  std::string AuditText() const;
  // The audit lines (parsed) whose text contains every one of `needles`.
  std::vector<std::string> AuditLines(const std::vector<std::string>& needles) const;
};

// The default allowlist of the tests.
extern const char kTestAllowlist[];

int CountEntries(const std::string& dir);  // entries of /proc/PID/fd etc.

}  // namespace chaosdrill::testing
