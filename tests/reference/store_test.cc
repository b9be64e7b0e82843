// The session store against real Redis: a primary, a replica and three sentinels started
// by the reference supervisor (store only, or with one inference replica and the gateway
// when the writes go through the gateway's SessionService). Failovers are real: the
// primary is SIGKILLed (pid from the topology) and the sentinels promote the replica.
// With a replication link (ReferenceServiceOptions::open_store_link), the link is a
// proxy.* fault of this process (injector::ProxyManager), as the runner's agent would own
// it, and a proxy.bandwidth fault on it slows replication alone. After each service stops,
// /proc must hold none of its processes.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "injector/fault_registry.h"
#include "reference/child_process.h"
#include "reference/redis_connection.h"
#include "reference/session_store.h"
#include "reference/supervisor.h"
#include "tests/reference/service_test_util.h"
#include "tests/test_support.h"

namespace chaosdrill::reference {
namespace {

using chaosdrill::testing::TempDir;
using testing::AckLog;
using testing::HaveCliReference;
using testing::HaveRedis;
using testing::Leftovers;
using testing::Remember;
using testing::SessionClient;
using testing::SessionWriters;

std::unique_ptr<ReferenceService> StartService(const TempDir& dir, ReferenceServiceOptions o) {
  o.dir = dir.path();
  auto svc = ReferenceService::Start(o);
  if (!svc.ok()) {
    // Show why: the children's logs.
    for (const char* name : {"redis-0.log", "redis-1.log", "sentinel-0.log", "sentinel-1.log",
                             "sentinel-2.log", "replica-0.log", "gateway.log"}) {
      chaosdrill::testing::CommandResult r =
          chaosdrill::testing::RunCommand({"/usr/bin/tail", "-n", "20", dir.path() + "/" + name});
      UNSCOPED_INFO(name << ":\n" << r.out);
    }
  }
  REQUIRE(svc.status().ToString() == "OK");
  return std::move(*svc);
}

std::unique_ptr<ReferenceService> StartStore(const TempDir& dir) {
  ReferenceServiceOptions o;
  o.replicas = 0;
  return StartService(dir, o);
}

// The store behind one small inference replica and the gateway, for writes through the
// gateway's SessionService.
ReferenceServiceOptions WithGateway(const std::string& replication) {
  ReferenceServiceOptions o;
  o.replicas = 1;
  o.width = 32;
  o.depth = 2;
  o.replication = replication;
  o.chaosdrill_binary = chaosdrill::testing::ChaosdrillBinary();
  return o;
}

// The replication links, as the runner's agent would hold them: a pass-through
// proxy.latency fault (latency 0) per link, in this process. Outlives the service.
class Links {
 public:
  Links() { injector::RegisterBuiltinFaults(); }
  ~Links() {
    for (auto& f : faults_) (void)f->Revert();
  }
  absl::Status Open(const std::string& listen, const std::string& upstream) {
    auto f = Make("proxy.latency", {{"listen", listen}, {"upstream", upstream}, {"latency", "0"}});
    if (!f.ok()) return f.status();
    if (absl::Status st = (*f)->Inject(); !st.ok()) return st;
    faults_.push_back(*std::move(f));
    return absl::OkStatus();
  }
  static absl::StatusOr<injector::FaultPtr> Make(const std::string& kind,
                                                 std::map<std::string, std::string> params) {
    auto factory = injector::FaultRegistry::Global().Find(kind);
    if (!factory.ok()) return factory.status();
    return (*factory)->Create(FaultSpec{.kind = kind, .params = std::move(params)});
  }

 private:
  std::vector<injector::FaultPtr> faults_;
};

int Port(const std::string& address) {
  int port = 0;
  (void)absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port);
  return port;
}

std::unique_ptr<SessionStore> MakeStore(const Topology& t, const std::string& replication) {
  SessionStoreOptions o;
  o.sentinels = t.sentinels;
  o.master_name = t.master_name;
  o.replication = replication;
  o.failover_budget = absl::Seconds(2);
  auto store = SessionStore::Create(o);
  REQUIRE(store.ok());
  return std::move(*store);
}

absl::StatusOr<RedisValue> Ask(const std::string& address, const std::vector<std::string>& cmd) {
  auto c = RedisConnection::Connect(address, absl::Seconds(1), absl::Seconds(2));
  if (!c.ok()) return c.status();
  return (*c)->CommandOk(cmd);
}

// True when the store is ready for a failover: the replica's link to the primary is up
// and every sentinel lists the replica as healthy (not down, not disconnected).
bool FailoverReady(const Topology& t) {
  auto primary = t.roles.find("store.primary");
  auto replica = t.roles.find("store.replica");
  if (primary == t.roles.end() || replica == t.roles.end() || !primary->second.alive ||
      !replica->second.alive) {
    return false;
  }
  // The replica replicates from the primary, or from the link in front of it.
  auto link = t.roles.find("store.link");
  const std::string source = link != t.roles.end() ? link->second.address : primary->second.address;
  auto info = Ask(replica->second.address, {"INFO", "replication"});
  if (!info.ok() || InfoField(info->str, "master_link_status") != "up" ||
      InfoField(info->str, "master_port") != absl::StrCat(Port(source))) {
    return false;
  }
  for (const std::string& s : t.sentinels) {
    auto reps = Ask(s, {"SENTINEL", "replicas", t.master_name});
    if (!reps.ok()) return false;
    bool ok = false;
    for (const RedisValue& r : reps->elements) {
      std::map<std::string, std::string> fields;
      for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
        fields[r.elements[i].str] = r.elements[i + 1].str;
      }
      if (fields["name"] == replica->second.address &&
          fields["flags"].find("down") == std::string::npos &&
          fields["flags"].find("disconnected") == std::string::npos &&
          fields["master-link-status"] == "ok") {
        ok = true;
      }
    }
    if (!ok) return false;
  }
  return true;
}

// Polls FailoverReady (each check asks Redis; no topology event covers it).
bool WaitFailoverReady(ReferenceService& svc, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (FailoverReady(svc.topology())) return true;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return false;
}

std::string PrimaryAddress(const Topology& t) { return t.roles.at("store.primary").address; }

TEST_CASE("session store appends and reads back entries in order on real redis", "[redis]") {
  if (chaosdrill::testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  TempDir dir;
  auto svc = StartStore(dir);
  Topology t = svc->topology();
  CHECK(t.roles.count("store.primary") == 1);
  CHECK(t.roles.count("store.replica") == 1);
  CHECK(t.roles.count("sentinel[2]") == 1);
  auto store = MakeStore(t, "async");
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    auto ack = store->Append("alice", seq, absl::StrCat("payload:", seq, "\n\0binary"));
    REQUIRE(ack.ok());
    CHECK(ack->length == seq);
    CHECK(ack->primary == PrimaryAddress(t));
  }
  REQUIRE(store->Append("bob", 7, "x").ok());
  auto read = store->Read("alice");
  REQUIRE(read.ok());
  REQUIRE(read->entries.size() == 5);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    CHECK(read->entries[seq - 1].seq == seq);
    CHECK(read->entries[seq - 1].payload == absl::StrCat("payload:", seq, "\n\0binary"));
  }
  auto empty = store->Read("nobody");
  REQUIRE(empty.ok());
  CHECK(empty->entries.empty());
  CHECK(store->Append("", 1, "x").status().code() == absl::StatusCode::kInvalidArgument);

  auto sync_store = MakeStore(t, "sync");
  auto ack = sync_store->Append("carol", 1, "x");
  REQUIRE(ack.ok());
  CHECK(ack->replicas_acked == 1);
}

TEST_CASE("session store options are validated", "[redis]") {
  SessionStoreOptions o;
  CHECK(SessionStore::Create(o).status().code() == absl::StatusCode::kInvalidArgument);
  o.sentinels = {"127.0.0.1"};
  CHECK(SessionStore::Create(o).status().code() == absl::StatusCode::kInvalidArgument);
  o.sentinels = {"127.0.0.1:26379"};
  o.replication = "semi";
  CHECK(SessionStore::Create(o).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("sync append is refused, not falsely acknowledged, when no replica confirms", "[redis]") {
  if (chaosdrill::testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  TempDir dir;
  auto svc = StartStore(dir);
  Topology t = svc->topology();
  auto store = MakeStore(t, "sync");
  REQUIRE(store->Append("s", 1, "before").ok());
  // A stopped replica cannot acknowledge: WAIT 1 times out.
  const pid_t replica = t.roles.at("store.replica").pid;
  REQUIRE(kill(replica, SIGSTOP) == 0);
  auto ack = store->Append("s", 2, "during");
  kill(replica, SIGCONT);
  REQUIRE_FALSE(ack.ok());
  CHECK(ack.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(ack.status().message()), Catch::Contains("no replica confirmed"));
}

// Every acknowledged (session, seq) that a direct read-back of the store lacks.
std::map<std::string, std::set<uint64_t>> Lost(
    SessionStore& store, const std::map<std::string, std::set<uint64_t>>& acked) {
  std::map<std::string, std::set<uint64_t>> lost;
  for (const auto& [session, seqs] : acked) {
    auto read = store.Read(session);
    REQUIRE(read.ok());
    std::set<uint64_t> have;
    for (const SessionEntry& e : read->entries) have.insert(e.seq);
    for (uint64_t s : seqs) {
      if (!have.count(s)) lost[session].insert(s);
    }
  }
  return lost;
}

size_t Count(const std::map<std::string, std::set<uint64_t>>& m) {
  size_t n = 0;
  for (const auto& [k, v] : m) n += v.size();
  return n;
}

TEST_CASE(
    "sync replication through the gateway's SessionService loses no acknowledged entry across "
    "5 primary SIGKILLs",
    "[redis][slow]") {
  if (chaosdrill::testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  if (chaosdrill::testing::SkipUnless(HaveCliReference(),
                                      "needs the chaosdrill binary (reference command)"))
    return;
  TempDir dir;
  std::set<pid_t> pids;
  {
    auto svc = StartService(dir, WithGateway("sync"));
    const std::string gateway = svc->topology().gateway;
    Remember(svc->topology(), pids);
    SessionClient client(gateway);
    SessionWriters writers(gateway, 4, 64);
    for (int kill_no = 1; kill_no <= 5; ++kill_no) {
      INFO("kill " << kill_no);
      REQUIRE(WaitFailoverReady(*svc, absl::Seconds(60)));
      REQUIRE(writers.WaitAcks(writers.acks() + 50, absl::Seconds(30)));
      Topology before = svc->topology();
      Remember(before, pids);
      const std::string old_primary = PrimaryAddress(before);
      REQUIRE(kill(before.roles.at("store.primary").pid, SIGKILL) == 0);
      REQUIRE(svc->WaitForTopology(
          [&](const Topology& t) { return PrimaryAddress(t) != old_primary; }, absl::Seconds(60)));
      REQUIRE(writers.WaitAcks(writers.acks() + 50, absl::Seconds(30)));
      auto lost = testing::LostAcks(client, writers.log());
      REQUIRE(lost.status().ToString() == "OK");
      CHECK(Count(*lost) == 0);
    }
    writers.Stop();
    auto lost = testing::LostAcks(client, writers.log());
    REQUIRE(lost.status().ToString() == "OK");
    CHECK(Count(*lost) == 0);
    std::printf(
        "sync via the gateway: %lld acknowledged appends, %lld refused, %zu lost over 5 primary "
        "kills\n",
        static_cast<long long>(writers.acks()), static_cast<long long>(writers.errors()),
        Count(*lost));
    Remember(svc->topology(), pids);
    REQUIRE(svc->Stop().ok());
  }
  CHECK(Leftovers(pids).empty());
}

TEST_CASE(
    "async replication loses the acknowledged tail when the primary dies ahead of a "
    "stalled replica, and the read-back names it",
    "[redis][slow]") {
  if (chaosdrill::testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  TempDir dir;
  std::set<pid_t> pids;
  auto svc = StartStore(dir);
  Remember(svc->topology(), pids);
  REQUIRE(WaitFailoverReady(*svc, absl::Seconds(60)));
  Topology t = svc->topology();
  auto store = MakeStore(t, "async");
  // Entries written while the replica runs reach it.
  std::set<uint64_t> acked;
  uint64_t seq = 0;
  for (; seq < 20; ++seq) {
    REQUIRE(store->Append("rpo", seq + 1, "small").ok());
    acked.insert(seq + 1);
  }
  const uint64_t last_before_stall = seq;
  // Slow the replication link to a stop: SIGSTOP the replica process. The primary keeps
  // acknowledging (async) and queues the stream. Up to the kernel's socket buffers
  // (a few MiB on loopback) would still reach the replica after SIGCONT, so enough is
  // written (32 MiB) that most of it only exists in the primary's replica output buffer.
  const pid_t replica = t.roles.at("store.replica").pid;
  REQUIRE(kill(replica, SIGSTOP) == 0);
  const std::string big(256 * 1024, 'x');
  for (int i = 0; i < 128; ++i) {
    ++seq;
    auto ack = store->Append("rpo", seq, big);
    if (!ack.ok()) {
      kill(replica, SIGCONT);
      FAIL(ack.status().ToString());
    }
    acked.insert(seq);
  }
  const std::string old_primary = PrimaryAddress(t);
  REQUIRE(kill(t.roles.at("store.primary").pid, SIGKILL) == 0);
  REQUIRE(kill(replica, SIGCONT) == 0);
  REQUIRE(svc->WaitForTopology([&](const Topology& x) { return PrimaryAddress(x) != old_primary; },
                               absl::Seconds(60)));
  auto lost = Lost(*store, {{"rpo", acked}});
  REQUIRE(lost.count("rpo") == 1);
  const std::set<uint64_t>& gone = lost["rpo"];
  std::printf("async: %zu of %zu acknowledged entries lost: seq %llu..%llu\n", gone.size(),
              acked.size(), static_cast<unsigned long long>(*gone.begin()),
              static_cast<unsigned long long>(*gone.rbegin()));
  // Only entries written during the stall are lost, and they are a tail: the new
  // primary has a prefix of the acknowledged stream.
  CHECK(*gone.begin() > last_before_stall);
  CHECK(*gone.rbegin() == seq);
  CHECK(gone.size() == seq - *gone.begin() + 1);
  Remember(svc->topology(), pids);
  REQUIRE(svc->Stop().ok());
  CHECK(Leftovers(pids).empty());
}

// Replication offsets from INFO replication: the primary's master_repl_offset and the
// replica's slave_repl_offset (what it has applied).
int64_t Offset(const std::string& address, const char* field) {
  auto info = Ask(address, {"INFO", "replication"});
  int64_t v = -1;
  if (info.ok()) (void)absl::SimpleAtoi(InfoField(info->str, field), &v);
  return v;
}

// Polls the sentinels' logs in `dir` for `text` (bounded).
bool WaitSentinelLog(const std::string& dir, const std::string& text, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    for (int i = 0; i < 3; ++i) {
      std::ifstream in(absl::StrCat(dir, "/sentinel-", i, ".log"));
      std::stringstream ss;
      ss << in.rdbuf();
      if (ss.str().find(text) != std::string::npos) return true;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

TEST_CASE(
    "async replication through a slowed store.link loses exactly the unreplicated tail of "
    "the acknowledged entries, and the read-back names them",
    "[redis][slow]") {
  if (chaosdrill::testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  if (chaosdrill::testing::SkipUnless(HaveCliReference(),
                                      "needs the chaosdrill binary (reference command)"))
    return;
  Links links;  // outlives the service
  TempDir dir;
  std::set<pid_t> pids;
  {
    ReferenceServiceOptions o = WithGateway("async");
    o.open_store_link = [&links](const std::string& listen, const std::string& upstream) {
      return links.Open(listen, upstream);
    };
    auto svc = StartService(dir, o);
    Topology t = svc->topology();
    Remember(t, pids);
    REQUIRE(t.roles.count("store.link") == 1);
    const RoleInfo link = t.roles.at("store.link");
    const std::string old_primary = PrimaryAddress(t);
    CHECK(link.upstream == old_primary);
    CHECK(link.node == t.roles.at("store.primary").node);
    REQUIRE(WaitFailoverReady(*svc, absl::Seconds(60)));
    // The sentinels see a replica whose master address is not the primary's and try to
    // re-point it (+fix-slave-config, failover-timeout = 3 s after they found it); the ACL
    // refuses, so it still replicates through the link.
    REQUIRE(WaitSentinelLog(dir.path(), "+fix-slave-config", absl::Seconds(30)));
    const std::string replica = t.roles.at("store.replica").address;
    CHECK(InfoField(Ask(replica, {"INFO", "replication"})->str, "master_port") ==
          absl::StrCat(Port(link.address)));

    SessionWriters writers(t.gateway, 4, 1024);
    REQUIRE(writers.WaitAcks(200, absl::Seconds(30)));
    // Slow the link: 16 KiB/s, while the writers produce far more. The primary keeps
    // acknowledging (async); the replica falls behind.
    auto slow =
        Links::Make("proxy.bandwidth",
                    {{"listen", link.address}, {"upstream", link.upstream}, {"rate", "16KiB/s"}});
    REQUIRE(slow.status().ToString() == "OK");
    REQUIRE((*slow)->Inject().ToString() == "OK");
    REQUIRE(writers.WaitAcks(writers.acks() + 1500, absl::Seconds(60)));
    const int64_t lag =
        Offset(old_primary, "master_repl_offset") - Offset(replica, "slave_repl_offset");
    const int64_t acks_before_kill = writers.acks();
    REQUIRE(kill(t.roles.at("store.primary").pid, SIGKILL) == 0);
    REQUIRE(svc->WaitForTopology(
        [&](const Topology& x) { return PrimaryAddress(x) != old_primary; }, absl::Seconds(60)));
    const std::string new_primary = PrimaryAddress(svc->topology());
    // Writes resume on the new primary.
    REQUIRE(writers.WaitAcks(writers.acks() + 200, absl::Seconds(30)));
    CHECK((*slow)->Revert().ok());
    writers.Stop();

    const AckLog log = writers.log();
    SessionClient client(t.gateway);
    auto lost = testing::LostAcks(client, log);
    REQUIRE(lost.status().ToString() == "OK");
    size_t from_old = 0, from_new = 0;
    for (const auto& [session, acks] : log) {
      INFO(session);
      std::set<uint64_t> old_acks;
      for (const testing::Ack& a : acks) {
        if (a.primary == old_primary) {
          old_acks.insert(a.seq);
          ++from_old;
        } else {
          CHECK(a.primary == new_primary);
          ++from_new;
        }
      }
      auto it = lost->find(session);
      if (it == lost->end()) continue;
      const std::set<uint64_t>& gone = it->second;
      // Only what the old primary acknowledged is lost, and it is a tail of its stream:
      // the new primary holds every old acknowledgement up to the first lost one and none
      // after it (the replica stopped at one point of the replication stream).
      for (uint64_t seq : gone) CHECK(old_acks.count(seq) == 1);
      std::set<uint64_t> tail(old_acks.lower_bound(*gone.begin()), old_acks.end());
      CHECK(gone == tail);
      std::printf("  %s: lost seq %llu..%llu (%zu entries) of %zu acknowledged by %s\n",
                  session.c_str(), static_cast<unsigned long long>(*gone.begin()),
                  static_cast<unsigned long long>(*gone.rbegin()), gone.size(), old_acks.size(),
                  old_primary.c_str());
    }
    std::printf(
        "async via a 16 KiB/s store.link: replica %lld bytes behind at the kill; %zu "
        "acknowledged entries lost (%zu acknowledged by the old primary, %lld before the kill, "
        "%zu by the new one, %lld refused)\n",
        static_cast<long long>(lag), Count(*lost), from_old,
        static_cast<long long>(acks_before_kill), from_new,
        static_cast<long long>(writers.errors()));
    CHECK(lag > 256 * 1024);  // the 16 KiB/s link cannot have carried the stream
    CHECK(Count(*lost) > 0);  // RPO > 0
    CHECK(from_new > 0);
    Remember(svc->topology(), pids);
    REQUIRE(svc->Stop().ok());
  }
  CHECK(Leftovers(pids).empty());
}

TEST_CASE(
    "with a store.link the supervisor points a primary that comes back after a failover at "
    "the new primary's link",
    "[redis][slow]") {
  if (chaosdrill::testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  Links links;
  TempDir dir;
  std::set<pid_t> pids;
  {
    ReferenceServiceOptions o;
    o.replicas = 0;
    o.open_store_link = [&links](const std::string& listen, const std::string& upstream) {
      return links.Open(listen, upstream);
    };
    auto svc = StartService(dir, o);
    Topology t = svc->topology();
    Remember(t, pids);
    REQUIRE(WaitFailoverReady(*svc, absl::Seconds(60)));
    const std::string old_link = t.roles.at("store.link").address;
    const RoleInfo old_primary = t.roles.at("store.primary");
    // Paused past down-after-milliseconds: the sentinels fail over; when it resumes it
    // is a second master with stale data.
    REQUIRE(kill(old_primary.pid, SIGSTOP) == 0);
    const bool failed_over = svc->WaitForTopology(
        [&](const Topology& x) { return PrimaryAddress(x) != old_primary.address; },
        absl::Seconds(60));
    REQUIRE(kill(old_primary.pid, SIGCONT) == 0);
    REQUIRE(failed_over);
    Topology after = svc->topology();
    const RoleInfo new_link = after.roles.at("store.link");
    CHECK(new_link.upstream == PrimaryAddress(after));
    CHECK(new_link.address != old_link);
    CHECK(after.roles.at("store.replica").pid == old_primary.pid);  // not restarted
    // The supervisor (not a sentinel: they may not) makes it a replica of the new
    // primary's link.
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    std::string role, port, link_status;
    while (absl::Now() < deadline) {
      auto info = Ask(old_primary.address, {"INFO", "replication"});
      if (info.ok()) {
        role = InfoField(info->str, "role");
        port = InfoField(info->str, "master_port");
        link_status = InfoField(info->str, "master_link_status");
        if (role == "slave" && port == absl::StrCat(Port(new_link.address)) && link_status == "up")
          break;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    CHECK(role == "slave");
    CHECK(port == absl::StrCat(Port(new_link.address)));
    CHECK(link_status == "up");
    CHECK(WaitFailoverReady(*svc, absl::Seconds(30)));
    Remember(svc->topology(), pids);
    REQUIRE(svc->Stop().ok());
  }
  CHECK(Leftovers(pids).empty());
}

}  // namespace
}  // namespace chaosdrill::reference
