// Test fixture for the network faults on a real kernel: two fresh network namespaces
// joined by a veth pair (each end is "veth0" inside its namespace, 10.231.N.1 and .2), so
// nothing outside the test is touched. The namespaces (and with them the veth pair, and
// every qdisc and nftables table in them) are deleted by the destructor, also when a test
// fails. Code runs inside a namespace on a short-lived thread that setns()es first;
// sockets created there stay in that namespace and can be used from any thread.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace chaosdrill::testing {

// Absolute path of an iproute2/nftables tool ("ip", "tc", "nft"), or "" if not installed.
std::string ToolPath(const std::string& name);

class NetnsPair {
 public:
  // Throws std::runtime_error (with the tool's output) if the namespaces cannot be made.
  NetnsPair();
  ~NetnsPair();
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;

  const std::string& a() const { return ns_a_; }
  const std::string& b() const { return ns_b_; }
  const std::string& addr_a() const { return addr_a_; }
  const std::string& addr_b() const { return addr_b_; }
  static constexpr const char* kInterface = "veth0";

  // Runs argv inside namespace `ns` (ip netns exec).
  CommandResult Exec(const std::string& ns, std::vector<std::string> argv,
                     int timeout_ms = 30'000) const;
  // `tc -j qdisc show dev veth0` and `nft -j list ruleset` in `ns`: the witnesses.
  std::string Qdiscs(const std::string& ns) const;
  std::string Ruleset(const std::string& ns) const;

  // A socket created inside `ns`; -1 on failure.
  int Socket(const std::string& ns, int domain, int type) const;

  // Runs fn() on a thread inside `ns` and returns its result.
  template <typename F>
  auto In(const std::string& ns, F&& fn) const -> decltype(fn()) {
    std::optional<decltype(fn())> result;
    std::string error;
    std::thread t([&] {
      std::string path = "/run/netns/" + ns;
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        error = "cannot enter network namespace " + ns;
        if (fd >= 0) close(fd);
        return;
      }
      close(fd);
      result.emplace(fn());
    });
    t.join();
    if (!error.empty()) throw std::runtime_error(error);
    return std::move(*result);
  }

 private:
  std::string ns_a_, ns_b_, addr_a_, addr_b_;
};

// Whether this machine can run the namespace tests (root, ip, network namespaces).
bool CanMakeNetns(std::string* why);

}  // namespace chaosdrill::testing
