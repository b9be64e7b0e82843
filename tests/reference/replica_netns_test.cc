// network: netns — each replica in its own network namespace on its own veth link
// (reference/replica_netns.h). The range choice is checked on plain data; the rest with
// the real kernel, as root, inside a throwaway namespace standing in for the host
// (tests/reference/netns_host.h): what the replicas can be reached on, that each has a
// link and a namespace of its own, that a restart keeps both, that Stop and a SIGKILLed
// supervisor leave nothing, and what a non-root user is told.
#include "reference/replica_netns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "reference/supervisor.h"
#include "reference/topology.h"
#include "tests/injector/network_netns.h"
#include "tests/reference/netns_host.h"
#include "tests/reference/service_test_util.h"
#include "tests/test_support.h"

namespace chaosdrill::reference {
namespace {

using chaosdrill::testing::CommandResult;
using chaosdrill::testing::LinksNamed;
using chaosdrill::testing::RunCommand;
using chaosdrill::testing::RunInFreshNetns;
using chaosdrill::testing::SkipUnless;
using chaosdrill::testing::TempDir;
using chaosdrill::testing::ToolPath;

uint32_t Ip(const char* text) {
  in_addr a{};
  REQUIRE(inet_pton(AF_INET, text, &a) == 1);
  return ntohl(a.s_addr);
}

std::string NetnsOf(pid_t pid) {
  char buf[128] = {};
  ssize_t n = readlink(absl::StrCat("/proc/", pid, "/ns/net").c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// The interfaces of the namespace `pid` is in (/proc/PID/net/dev shows that namespace's).
std::set<std::string> InterfacesOf(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/net/dev"));
  std::set<std::string> out;
  std::string line;
  for (int n = 0; std::getline(in, line); ++n) {
    if (n < 2) continue;  // two header lines
    std::string name(absl::StripAsciiWhitespace(line.substr(0, line.find(':'))));
    out.insert(name);
  }
  return out;
}

// Whether a TCP connection to host:port is accepted within a second.
bool Connects(const std::string& address) {
  const size_t colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) return false;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  close(fd);
  return ok;
}

std::string PortOf(const std::string& address) { return address.substr(address.rfind(':') + 1); }
std::string HostOf(const std::string& address) { return address.substr(0, address.rfind(':')); }

// Every namespace identity ("net:[N]") any process or any of our descriptors still holds.
std::set<std::string> HeldNamespaces() {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::atoi(name.c_str());
    if (std::string ns = NetnsOf(pid); !ns.empty()) out.insert(ns);
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    char buf[128] = {};
    ssize_t n = readlink(e.path().c_str(), buf, sizeof(buf) - 1);
    if (n > 0 && absl::StartsWith(buf, "net:[")) out.insert(buf);
  }
  return out;
}

ReferenceServiceOptions NetnsOptions(const std::string& dir, int replicas) {
  ReferenceServiceOptions o;
  o.dir = dir;
  o.replicas = replicas;
  o.network = "netns";
  o.chaosdrill_binary = chaosdrill::testing::ChaosdrillBinary();
  o.width = 32;
  o.depth = 2;
  return o;
}

// Polls the gateway's replica_routable for `address` until it equals `want`.
bool WaitRoutable(const Topology& t, const std::string& address, double want,
                  absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto v = testing::ScrapeValue(t.metrics, "chaosdrill_gateway_replica_routable",
                                  {{"replica", address}});
    if (v && *v == want) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

TEST_CASE("replica links: a free range is picked past the names and prefixes in use",
          "[reference]") {
  auto first = PickRunRange({"lo", "eth0"}, {{Ip("192.0.2.2"), 24}, {Ip("0.0.0.0"), 0}});
  REQUIRE(first.ok());
  CHECK(first->k == 0);
  CHECK(first->InterfaceName(1) == "cdr0-1");
  CHECK(first->HostIp(1) == "10.213.0.5");
  CHECK(first->ReplicaIp(1) == "10.213.0.6");
  CHECK(first->ReplicaIp(63) == "10.213.0.254");
  CHECK(first->InterfaceName(63).size() <= 15);

  // Another run's link name, an address in 10.213.1.0/24 and a route over 10.213.2.0/23.
  auto later =
      PickRunRange({"cdr0-0", "cdr0-1"}, {{Ip("10.213.1.77"), 32}, {Ip("10.213.2.0"), 23}});
  REQUIRE(later.ok());
  CHECK(later->k == 4);
  CHECK(later->base == "10.213.4");
  // `skip` continues after a range another run claimed first.
  auto skipped = PickRunRange({}, {}, 7);
  REQUIRE(skipped.ok());
  CHECK(skipped->k == 7);

  // A route over all of 10.0.0.0/8 moves the run to 172.29.0.0/16 (names cdr256-...).
  auto moved = PickRunRange({}, {{Ip("10.0.0.0"), 8}});
  REQUIRE(moved.ok());
  CHECK(moved->k == 256);
  CHECK(moved->base == "172.29.0");
  CHECK(moved->InterfaceName(63) == "cdr256-63");

  auto none = PickRunRange({}, {{Ip("10.0.0.0"), 8}, {Ip("172.16.0.0"), 12}});
  REQUIRE(absl::IsFailedPrecondition(none.status()));
  CHECK_THAT(std::string(none.status().message()),
             Catch::Contains("10.213.0.0/24 overlaps 10.0.0.0/8") &&
                 Catch::Contains("172.29.0.0/24 overlaps 172.16.0.0/12"));
}

TEST_CASE("netns: each replica in its own namespace on its own link and gone after Stop",
          "[root][netns][redis]") {
  if (!RunInFreshNetns()) return;
  if (SkipUnless(testing::HaveRedis(), "needs redis-server and redis-sentinel")) return;
  if (SkipUnless(testing::HaveCliReference(), "needs build/chaosdrill")) return;
  TempDir dir;
  const std::string host_ns = NetnsOf(getpid());
  std::set<std::string> replica_ns;
  std::set<pid_t> pids;
  {
    auto svc = ReferenceService::Start(NetnsOptions(dir.path(), 3));
    REQUIRE(svc.status().ToString() == "OK");
    const Topology t = (*svc)->topology();
    testing::Remember(t, pids);
    CHECK(t.network == "netns");
    auto on_disk = Topology::Load(TopologyPath(dir.path()));
    REQUIRE(on_disk.ok());
    std::set<std::string> interfaces;
    for (int i = 0; i < 3; ++i) {
      const std::string role = absl::StrCat("replica[", i, "]");
      const RoleInfo& r = t.roles.at(role);
      INFO(role << " at " << r.address << " link " << r.interface << " " << r.interface_address);
      CHECK(on_disk->roles.at(role).interface == r.interface);
      CHECK(absl::StartsWith(r.interface, "cdr"));
      CHECK(absl::EndsWith(r.interface, absl::StrCat("-", i)));
      interfaces.insert(r.interface);
      // Host .4i+1 and replica .4i+2 of one /30.
      const uint32_t host =
          Ip(r.interface_address.substr(0, r.interface_address.find('/')).c_str());
      const uint32_t replica = Ip(HostOf(r.address).c_str());
      CHECK(absl::EndsWith(r.interface_address, "/30"));
      CHECK(replica == host + 1);
      CHECK((host & 3u) == 1u);
      // Its own namespace, holding lo and its end of the link only.
      const std::string ns = NetnsOf(r.pid);
      CHECK(!ns.empty());
      CHECK(ns != host_ns);
      replica_ns.insert(ns);
      CHECK(InterfacesOf(r.pid) == std::set<std::string>{"lo", "eth0"});
      // Reachable at its own address only: nothing listens on our loopback at its port.
      CHECK(Connects(r.address));
      CHECK_FALSE(Connects(absl::StrCat("127.0.0.1:", PortOf(r.address))));
      // The gateway reaches it through its link (its health checks pass).
      CHECK(WaitRoutable(t, r.address, 1, absl::Seconds(10)));
    }
    CHECK(replica_ns.size() == 3);
    CHECK(interfaces.size() == 3);
    // The host side: exactly those links, each peered into a different namespace.
    std::vector<std::string> links = LinksNamed("cdr");
    CHECK(std::set<std::string>(links.begin(), links.end()) == interfaces);
    CommandResult ip = RunCommand({ToolPath("ip"), "-j", "link", "show"}, 10'000);
    nlohmann::json j = nlohmann::json::parse(ip.out, nullptr, false);
    REQUIRE(j.is_array());
    std::set<int> peers;
    for (const auto& l : j) {
      if (interfaces.count(l.value("ifname", "")) > 0) peers.insert(l.value("link_netnsid", -1));
    }
    CHECK(peers.size() == 3);
    std::printf("netns: replicas %s on links %s\n", absl::StrJoin(replica_ns, ", ").c_str(),
                absl::StrJoin(links, ", ").c_str());
    CHECK((*svc)->Stop().ok());
  }
  // Nothing left: no link, no process, no namespace held by any process or descriptor.
  CHECK(LinksNamed("cdr").empty());
  CHECK(testing::Leftovers(pids).empty());
  std::set<std::string> held = HeldNamespaces();
  for (const std::string& ns : replica_ns) {
    INFO("namespace " << ns);
    CHECK(held.count(ns) == 0);
  }
  // The namespaces were never named: no file under /run/netns is ours (the test's is there).
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    CHECK_FALSE(absl::StartsWith(e.path().filename().string(), "cdr"));
  }
}

TEST_CASE("netns: a SIGKILLed replica comes back in the same namespace at the same address",
          "[root][netns][redis]") {
  if (!RunInFreshNetns()) return;
  if (SkipUnless(testing::HaveRedis(), "needs redis-server and redis-sentinel")) return;
  if (SkipUnless(testing::HaveCliReference(), "needs build/chaosdrill")) return;
  TempDir dir;
  auto svc = ReferenceService::Start(NetnsOptions(dir.path(), 2));
  REQUIRE(svc.status().ToString() == "OK");
  const RoleInfo before = (*svc)->topology().roles.at("replica[1]");
  const std::string ns = NetnsOf(before.pid);
  REQUIRE(kill(before.pid, SIGKILL) == 0);
  REQUIRE((*svc)->WaitForTopology(
      [&](const Topology& t) {
        const RoleInfo& r = t.roles.at("replica[1]");
        return r.alive && r.pid != before.pid && r.restarts == 1;
      },
      absl::Seconds(30)));
  const Topology t = (*svc)->topology();
  const RoleInfo& after = t.roles.at("replica[1]");
  CHECK(NetnsOf(after.pid) == ns);
  CHECK(after.address == before.address);
  CHECK(after.interface == before.interface);
  CHECK(after.interface_address == before.interface_address);
  // Re-admitted by the gateway through the same link.
  CHECK(WaitRoutable(t, after.address, 1, absl::Seconds(20)));
  std::printf("netns restart: replica[1] pid %d -> %d, %s, %s via %s\n", before.pid, after.pid,
              ns.c_str(), after.address.c_str(), after.interface.c_str());
  CHECK((*svc)->Stop().ok());
  CHECK(LinksNamed("cdr").empty());
}

TEST_CASE("netns: ranges and names in use on the host are skipped", "[root][netns][redis]") {
  if (!RunInFreshNetns()) return;
  if (SkipUnless(testing::HaveRedis(), "needs redis-server and redis-sentinel")) return;
  const std::string ip = ToolPath("ip");
  // 10.213.0.0/24 is in use here, and a link named like run 1's first one exists.
  REQUIRE(RunCommand({ip, "addr", "add", "10.213.0.1/24", "dev", "lo"}).exit_code == 0);
  REQUIRE(RunCommand({ip, "link", "add", "cdr1-0", "type", "veth", "peer", "name", "cdr1-0p"})
              .exit_code == 0);
  TempDir dir;
  {
    auto svc = ReferenceService::Start(NetnsOptions(dir.path(), 1));
    REQUIRE(svc.status().ToString() == "OK");
    const RoleInfo r = (*svc)->topology().roles.at("replica[0]");
    CHECK(r.interface == "cdr2-0");
    CHECK(HostOf(r.address) == "10.213.2.2");
    CHECK(r.interface_address == "10.213.2.1/30");
    CHECK((*svc)->Stop().ok());
  }
  // Ours gone, the one we did not make untouched.
  std::vector<std::string> left = LinksNamed("cdr");
  CHECK(std::set<std::string>(left.begin(), left.end()) ==
        std::set<std::string>{"cdr1-0", "cdr1-0p"});
  CHECK(RunCommand({ip, "link", "del", "cdr1-0"}).exit_code == 0);
}

TEST_CASE("netns: a SIGKILLed supervisor leaves no link and no process", "[root][netns][redis]") {
  if (!RunInFreshNetns()) return;
  if (SkipUnless(testing::HaveRedis(), "needs redis-server and redis-sentinel")) return;
  if (SkipUnless(testing::HaveCliReference(), "needs build/chaosdrill")) return;
  TempDir dir;
  CommandResult up =
      RunCommand({chaosdrill::testing::ChaosdrillBinary(), "reference", "up", "--network", "netns",
                  "--replicas", "2", "--width", "32", "--depth", "2", "--dir", dir.path()},
                 120'000);
  INFO(up.out << up.err);
  REQUIRE(up.exit_code == 0);
  auto t = Topology::Load(TopologyPath(dir.path()));
  REQUIRE(t.ok());
  CHECK(t->network == "netns");
  std::set<pid_t> pids;
  testing::Remember(*t, pids);
  CHECK(LinksNamed("cdr").size() == 2);
  REQUIRE(kill(t->supervisor_pid, SIGKILL) == 0);
  // The kernel closes its namespace descriptors, PDEATHSIG takes the replicas, the
  // namespaces die with them and their veths with the namespaces.
  const absl::Time killed = absl::Now();
  std::vector<std::string> left;
  do {
    left = LinksNamed("cdr");
    if (left.empty() && testing::Leftovers(pids).empty()) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() - killed < absl::Seconds(15));
  INFO("left: " << absl::StrJoin(left, ", "));
  CHECK(left.empty());
  CHECK(testing::Leftovers(pids).empty());
  std::printf("netns crash: links gone %s after SIGKILL of the supervisor\n",
              absl::FormatDuration(absl::Now() - killed).c_str());
}

TEST_CASE("netns: without root validate --preflight and run say what is missing", "[root]") {
  if (SkipUnless(chaosdrill::testing::IsRoot(), "needs root (to run a command as nobody)")) return;
  const std::string setpriv = ToolPath("setpriv");
  if (SkipUnless(!setpriv.empty(), "needs util-linux's setpriv")) return;
  if (SkipUnless(testing::HaveCliReference(), "needs build/chaosdrill")) return;
  TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
  const std::string file = dir.Write(
      "netns.yaml",
      "apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: netns-nobody}\n"
      "target:\n  reference: {replicas: 3, network: netns}\nload: {rate: 10/s}\n"
      "phases: {baseline: 2s, observe: 4s, hold: 1s}\n"
      "faults:\n  - {name: kill, kind: process.kill, at: 3s, target: {role: \"replica[1]\"}}\n");
  std::filesystem::permissions(file, std::filesystem::perms::all);
  auto as_nobody = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {
        setpriv, "--reuid=65534", "--regid=65534",      "--clear-groups",
        "--",    "/usr/bin/env",  "HOME=" + dir.path(), chaosdrill::testing::ChaosdrillBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, 60'000);
  };
  CommandResult probe = as_nobody({"version"});
  if (SkipUnless(probe.exit_code == 0, "user nobody cannot run build/chaosdrill here")) return;

  CommandResult plain = as_nobody({"validate", file});
  CHECK(plain.exit_code == 0);  // valid as written: root is a property of the node
  CommandResult pre = as_nobody({"validate", "--preflight", file});
  INFO(pre.out << pre.err);
  CHECK(pre.exit_code == 4);
  CHECK_THAT(pre.err, Catch::Contains(absl::StrCat(file, ":5:")) &&
                          Catch::Contains("target.reference.network") &&
                          Catch::Contains("CAP_NET_ADMIN") && Catch::Contains("run as root"));
  CommandResult dry = as_nobody(
      {"run", "--dry-run", "--progress", "none", "--report-dir", dir.path() + "/reports", file});
  INFO(dry.out << dry.err);
  CHECK(dry.exit_code == 4);
  CHECK_THAT(dry.out + dry.err, Catch::Contains("CAP_NET_ADMIN"));
  CommandResult run =
      as_nobody({"run", "--progress", "none", "--report-dir", dir.path() + "/reports", file});
  INFO(run.out << run.err);
  CHECK(run.exit_code == 4);
  CHECK_THAT(run.out + run.err, Catch::Contains("CAP_NET_ADMIN") && Catch::Contains("run as root"));
}

}  // namespace
}  // namespace chaosdrill::reference
