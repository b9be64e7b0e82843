#include "tests/injector/network_netns.h"

#include <sys/socket.h>

#include <atomic>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace chaosdrill::testing {

std::string ToolPath(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    std::string p = dir + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

bool CanMakeNetns(std::string* why) {
  if (!IsRoot()) {
    *why = "needs root (network namespaces, qdiscs, nftables)";
    return false;
  }
  if (ToolPath("ip").empty()) {
    *why = "needs iproute2's ip to set up test namespaces";
    return false;
  }
  return true;
}

NetnsPair::NetnsPair() {
  static std::atomic<int> counter{0};
  int n = counter++;
  std::string base = absl::StrCat("cdtest-", getpid(), "-", n);
  ns_a_ = base + "-a";
  ns_b_ = base + "-b";
  int subnet = (getpid() + n) % 250 + 1;
  addr_a_ = absl::StrCat("10.231.", subnet, ".1");
  addr_b_ = absl::StrCat("10.231.", subnet, ".2");
  const std::string ip = ToolPath("ip");
  auto run = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), ip);
    CommandResult r = RunCommand(argv, 30'000);
    if (r.exit_code != 0) {
      std::string cmd;
      for (const auto& a : argv) absl::StrAppend(&cmd, a, " ");
      // Clean up what was made so far; the destructor does not run on a throw.
      RunCommand({ip, "netns", "del", ns_a_}, 10'000);
      RunCommand({ip, "netns", "del", ns_b_}, 10'000);
      throw std::runtime_error(absl::StrCat(cmd, "failed: ", r.out, r.err));
    }
  };
  run({"netns", "add", ns_a_});
  run({"netns", "add", ns_b_});
  run({"link", "add", "veth0", "netns", ns_a_, "type", "veth", "peer", "name", "veth0", "netns",
       ns_b_});
  run({"-n", ns_a_, "addr", "add", addr_a_ + "/24", "dev", "veth0"});
  run({"-n", ns_b_, "addr", "add", addr_b_ + "/24", "dev", "veth0"});
  for (const std::string& ns : {ns_a_, ns_b_}) {
    run({"-n", ns, "link", "set", "lo", "up"});
    run({"-n", ns, "link", "set", "veth0", "up"});
  }
}

NetnsPair::~NetnsPair() {
  const std::string ip = ToolPath("ip");
  RunCommand({ip, "netns", "del", ns_a_}, 10'000);
  RunCommand({ip, "netns", "del", ns_b_}, 10'000);
}

CommandResult NetnsPair::Exec(const std::string& ns, std::vector<std::string> argv,
                              int timeout_ms) const {
  std::vector<std::string> full = {ToolPath("ip"), "netns", "exec", ns};
  full.insert(full.end(), argv.begin(), argv.end());
  return RunCommand(full, timeout_ms);
}

std::string NetnsPair::Qdiscs(const std::string& ns) const {
  CommandResult r = Exec(ns, {ToolPath("tc"), "-j", "qdisc", "show", "dev", kInterface});
  return absl::StrCat("rc=", r.exit_code, " ", r.out, r.err);
}

std::string NetnsPair::Ruleset(const std::string& ns) const {
  CommandResult r = Exec(ns, {ToolPath("nft"), "-j", "list", "ruleset"});
  return absl::StrCat("rc=", r.exit_code, " ", r.out, r.err);
}

int NetnsPair::Socket(const std::string& ns, int domain, int type) const {
  return In(ns, [&] { return socket(domain, type | SOCK_CLOEXEC, 0); });
}

}  // namespace chaosdrill::testing
