// The reference supervisor with real processes: crashed children come back after a
// growing delay and topology.json follows; `reference up/down` through the CLI leaves no
// process behind (checked in /proc).
#include "reference/supervisor.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "reference/child_process.h"
#include "reference/topology.h"
#include "tests/test_support.h"

namespace chaosdrill::reference {
namespace {

using testing::TempDir;

bool HaveRedis() {
  return !FindExecutable("redis-server").empty() && !FindExecutable("redis-sentinel").empty();
}

bool HaveCliReference() {
  if (access(testing::ChaosdrillBinary().c_str(), X_OK) != 0) return false;
  testing::CommandResult r =
      testing::RunCommand({testing::ChaosdrillBinary(), "reference", "--help"}, 10'000);
  return r.exit_code == 0;
}

struct ProcStat {
  pid_t pid = 0, ppid = 0, pgid = 0, sid = 0;
};

// Every process in /proc with its parent, group and session.
std::vector<ProcStat> AllProcesses() {
  std::vector<ProcStat> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
    std::string line;
    if (!std::getline(in, line)) continue;
    size_t paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(line.substr(paren + 2), ' ');
    if (f.size() < 4 || f[0] == "Z") continue;  // zombies hold nothing
    ProcStat p;
    p.pid = pid;
    (void)absl::SimpleAtoi(f[1], &p.ppid);
    (void)absl::SimpleAtoi(f[2], &p.pgid);
    (void)absl::SimpleAtoi(f[3], &p.sid);
    out.push_back(p);
  }
  closedir(d);
  return out;
}

// Processes that belong to what a supervisor started: any pid it ever reported, any
// member of their process groups, or (for a daemon) of its session.
std::vector<ProcStat> Leftovers(const std::set<pid_t>& pids, pid_t session) {
  std::vector<ProcStat> left;
  for (const ProcStat& p : AllProcesses()) {
    if (pids.count(p.pid) || pids.count(p.pgid) || (session > 0 && p.sid == session)) {
      left.push_back(p);
    }
  }
  return left;
}

void Remember(const Topology& t, std::set<pid_t>& pids) {
  for (const auto& [role, r] : t.roles) {
    if (r.pid > 0) pids.insert(r.pid);
  }
}

TEST_CASE(
    "supervisor restarts a SIGKILLed child after a doubling delay and rewrites "
    "topology.json",
    "[redis][slow]") {
  if (testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  TempDir dir;
  std::set<pid_t> pids;
  {
    ReferenceServiceOptions o;
    o.dir = dir.path();
    o.replicas = 0;
    o.restart_base = absl::Seconds(1);
    auto svc = ReferenceService::Start(o);
    REQUIRE(svc.status().ToString() == "OK");
    Remember((*svc)->topology(), pids);

    std::vector<absl::Duration> delays;
    for (int round = 1; round <= 2; ++round) {
      const pid_t old_pid = (*svc)->topology().roles.at("sentinel[1]").pid;
      REQUIRE(kill(old_pid, SIGKILL) == 0);
      const absl::Time killed = absl::Now();
      REQUIRE((*svc)->WaitForTopology(
          [&](const Topology& t) {
            const RoleInfo& r = t.roles.at("sentinel[1]");
            return r.alive && r.pid != old_pid && r.restarts == round;
          },
          absl::Seconds(30)));
      delays.push_back(absl::Now() - killed);
      // The file on disk says the same as the in-memory topology.
      auto on_disk = Topology::Load(TopologyPath(dir.path()));
      REQUIRE(on_disk.ok());
      CHECK(on_disk->roles.at("sentinel[1]").pid == (*svc)->topology().roles.at("sentinel[1]").pid);
      CHECK(on_disk->roles.at("sentinel[1]").restarts == round);
      CHECK(on_disk->running);
      Remember((*svc)->topology(), pids);
    }
    // Backoff: 1s, then 2s (lower bounds only: a loaded machine may be slower).
    CHECK(delays[0] >= absl::Milliseconds(900));
    CHECK(delays[1] >= absl::Milliseconds(1900));
    std::printf("restart delays: %s, %s\n", absl::FormatDuration(delays[0]).c_str(),
                absl::FormatDuration(delays[1]).c_str());
    REQUIRE((*svc)->Stop().ok());
    auto final_topology = Topology::Load(TopologyPath(dir.path()));
    REQUIRE(final_topology.ok());
    CHECK_FALSE(final_topology->running);
  }
  CHECK(Leftovers(pids, 0).empty());
}

TEST_CASE("supervisor restarts a SIGKILLed inference replica and the gateway stays ready",
          "[redis][slow]") {
  if (testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  if (testing::SkipUnless(HaveCliReference(), "needs the chaosdrill binary (reference command)"))
    return;
  TempDir dir;
  std::set<pid_t> pids;
  {
    ReferenceServiceOptions o;
    o.dir = dir.path();
    o.replicas = 2;
    o.width = 32;
    o.depth = 2;
    o.chaosdrill_binary = testing::ChaosdrillBinary();
    auto svc = ReferenceService::Start(o);
    REQUIRE(svc.status().ToString() == "OK");
    Topology t = (*svc)->topology();
    CHECK_FALSE(t.gateway.empty());
    CHECK(t.roles.count("gateway") == 1);
    CHECK(t.roles.count("replica[1]") == 1);
    Remember(t, pids);
    const pid_t old_pid = t.roles.at("replica[0]").pid;
    REQUIRE(kill(old_pid, SIGKILL) == 0);
    REQUIRE((*svc)->WaitForTopology(
        [&](const Topology& x) {
          const RoleInfo& r = x.roles.at("replica[0]");
          return r.alive && r.pid != old_pid && r.restarts == 1;
        },
        absl::Seconds(30)));
    Remember((*svc)->topology(), pids);
  }
  CHECK(Leftovers(pids, 0).empty());
}

TEST_CASE("reference up daemonizes, status reports it, and down leaves no process behind",
          "[redis][slow]") {
  if (testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  if (testing::SkipUnless(HaveCliReference(), "needs the chaosdrill binary (reference command)"))
    return;
  TempDir dir;
  const std::string bin = testing::ChaosdrillBinary();
  testing::CommandResult up =
      testing::RunCommand({bin, "reference", "up", "--replicas", "1", "--replication", "sync",
                           "--width", "32", "--depth", "2", "--dir", dir.path()},
                          120'000);
  INFO(up.out << up.err);
  REQUIRE(up.exit_code == 0);
  CHECK_THAT(up.out, Catch::Contains("gateway 127.0.0.1:"));
  auto t = Topology::Load(TopologyPath(dir.path()));
  REQUIRE(t.ok());
  std::set<pid_t> pids;
  Remember(*t, pids);
  pids.insert(t->supervisor_pid);

  testing::CommandResult status =
      testing::RunCommand({bin, "reference", "status", "--dir", dir.path()}, 30'000);
  CHECK(status.exit_code == 0);
  CHECK_THAT(status.out, Catch::Contains("store.primary"));
  CHECK_THAT(status.out, Catch::Contains("sentinel[2]"));

  // A crash under way when it is stopped: the replica is down and about to be restarted.
  kill(t->roles.at("replica[0]").pid, SIGKILL);

  testing::CommandResult down =
      testing::RunCommand({bin, "reference", "down", "--dir", dir.path()}, 60'000);
  INFO(down.out << down.err);
  CHECK(down.exit_code == 0);
  auto last = Topology::Load(TopologyPath(dir.path()));
  if (last.ok()) Remember(*last, pids);
  std::vector<ProcStat> left = Leftovers(pids, t->supervisor_pid);
  for (const ProcStat& p : left) UNSCOPED_INFO("left behind: pid " << p.pid);
  CHECK(left.empty());
}

}  // namespace
}  // namespace chaosdrill::reference
