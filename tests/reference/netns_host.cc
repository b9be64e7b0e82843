#include "tests/reference/netns_host.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/injector/network_netns.h"

namespace chaosdrill::testing {
namespace {

constexpr char kEnv[] = "CHAOSDRILL_TEST_FRESH_NETNS";

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

std::vector<std::string> LinksNamedIn(const std::vector<std::string>& prefix_argv,
                                      const std::string& prefix) {
  std::vector<std::string> argv = prefix_argv;
  argv.insert(argv.end(), {"-j", "link", "show"});
  CommandResult r = RunCommand(argv, 10'000);
  std::vector<std::string> out;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) {
    out.push_back(absl::StrCat("<ip -j link failed: rc=", r.exit_code, " ", r.err, ">"));
    return out;
  }
  for (const auto& link : j) {
    std::string name = link.value("ifname", "");
    if (absl::StartsWith(name, prefix)) out.push_back(name);
  }
  return out;
}

}  // namespace

bool InFreshNetns() { return std::getenv(kEnv) != nullptr; }

bool RunInFreshNetns(int timeout_ms) {
  if (InFreshNetns()) return true;
  std::string why;
  const bool can = CanMakeNetns(&why);  // before SkipUnless reads `why`
  if (SkipUnless(can, why)) return false;
  const std::string ip = ToolPath("ip");
  static std::atomic<int> counter{0};
  const std::string ns = absl::StrCat("cdtest-", getpid(), "-h", counter++);
  CommandResult made = RunCommand({ip, "netns", "add", ns}, 10'000);
  REQUIRE(made.exit_code == 0);
  CommandResult lo = RunCommand({ip, "-n", ns, "link", "set", "lo", "up"}, 10'000);
  CHECK(lo.exit_code == 0);
  const std::string test = Catch::getResultCapture().getCurrentTestName();
  setenv(kEnv, ns.c_str(), 1);
  CommandResult inner = RunCommand({ip, "netns", "exec", ns, SelfExe(), test}, timeout_ms);
  unsetenv(kEnv);
  std::printf("--- inside network namespace %s ---\n%s%s--- end of %s ---\n", ns.c_str(),
              inner.out.c_str(), inner.err.c_str(), ns.c_str());
  // What the run left in its "host": links die with the namespaces they join, which the
  // kernel frees asynchronously after the last process is gone.
  std::vector<std::string> left;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    left = LinksNamedIn({ip, "-n", ns}, "cdr");
    if (left.empty()) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  CommandResult deleted = RunCommand({ip, "netns", "del", ns}, 10'000);
  CHECK(deleted.exit_code == 0);
  INFO("links left in the namespace after the run: " << absl::StrJoin(left, ", "));
  CHECK(left.empty());
  CHECK(inner.exit_code == 0);
  return false;
}

std::vector<std::string> LinksNamed(const std::string& prefix) {
  return LinksNamedIn({ToolPath("ip")}, prefix);
}

std::string NftRuleset() {
  CommandResult r = RunCommand({ToolPath("nft"), "-j", "list", "ruleset"}, 10'000);
  return r.exit_code == 0 ? r.out : absl::StrCat("rc=", r.exit_code, " ", r.err);
}

std::string TcQdiscs(const std::string& iface) {
  CommandResult r = RunCommand({ToolPath("tc"), "-j", "qdisc", "show", "dev", iface}, 10'000);
  return r.exit_code == 0 ? r.out : absl::StrCat("rc=", r.exit_code, " ", r.err);
}

}  // namespace chaosdrill::testing
