// The session store against real Redis: a primary, a replica and three sentinels started
// by the reference supervisor (store only, no replicas or gateway). Failovers are real:
// the primary is SIGKILLed (pid from the topology) and the sentinels promote the replica.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "reference/child_process.h"
#include "reference/redis_connection.h"
#include "reference/session_store.h"
#include "reference/supervisor.h"
#include "tests/test_support.h"

namespace chaosdrill::reference {
namespace {

using testing::TempDir;

bool HaveRedis() {
  return !FindExecutable("redis-server").empty() && !FindExecutable("redis-sentinel").empty();
}

std::unique_ptr<ReferenceService> StartStore(const TempDir& dir) {
  ReferenceServiceOptions o;
  o.dir = dir.path();
  o.replicas = 0;
  auto svc = ReferenceService::Start(o);
  if (!svc.ok()) {
    // Show why: the children's logs.
    for (const char* name :
         {"redis-0.log", "redis-1.log", "sentinel-0.log", "sentinel-1.log", "sentinel-2.log"}) {
      testing::CommandResult r =
          testing::RunCommand({"/usr/bin/tail", "-n", "20", dir.path() + "/" + name});
      UNSCOPED_INFO(name << ":\n" << r.out);
    }
  }
  REQUIRE(svc.status().ToString() == "OK");
  return std::move(*svc);
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
  auto info = Ask(replica->second.address, {"INFO", "replication"});
  if (!info.ok() || InfoField(info->str, "master_link_status") != "up" ||
      InfoField(info->str, "master_port") !=
          primary->second.address.substr(primary->second.address.rfind(':') + 1)) {
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
  if (testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
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
  if (testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
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

// Appends to several sessions from several threads until stopped, recording which
// (session, seq) were acknowledged.
class Writers {
 public:
  Writers(SessionStore& store, int sessions) : store_(store) {
    for (int i = 0; i < sessions; ++i) {
      threads_.emplace_back([this, i] {
        const std::string session = absl::StrCat("session-", i);
        uint64_t seq = 0;
        while (!stop_.load()) {
          ++seq;
          auto ack = store_.Append(session, seq, absl::StrCat("entry ", seq));
          absl::MutexLock lock(&mu_);
          if (ack.ok()) {
            acked_[session].insert(seq);
            ++acks_;
          } else {
            ++errors_;
          }
        }
      });
    }
  }
  ~Writers() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int64_t acks() {
    absl::MutexLock lock(&mu_);
    return acks_;
  }
  bool WaitAcks(int64_t at_least, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&] { return acks_ >= at_least; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::map<std::string, std::set<uint64_t>> acked() {
    absl::MutexLock lock(&mu_);
    return acked_;
  }
  int64_t errors() {
    absl::MutexLock lock(&mu_);
    return errors_;
  }

 private:
  SessionStore& store_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  std::map<std::string, std::set<uint64_t>> acked_ ABSL_GUARDED_BY(mu_);
  int64_t acks_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t errors_ ABSL_GUARDED_BY(mu_) = 0;
};

// Every acknowledged (session, seq) that a read-back does not have.
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

TEST_CASE("sync replication loses no acknowledged entry across 5 primary SIGKILLs",
          "[redis][slow]") {
  if (testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  TempDir dir;
  auto svc = StartStore(dir);
  auto store = MakeStore(svc->topology(), "sync");
  Writers writers(*store, 4);
  for (int kill_no = 1; kill_no <= 5; ++kill_no) {
    INFO("kill " << kill_no);
    REQUIRE(WaitFailoverReady(*svc, absl::Seconds(60)));
    REQUIRE(writers.WaitAcks(writers.acks() + 50, absl::Seconds(30)));
    Topology before = svc->topology();
    const std::string old_primary = PrimaryAddress(before);
    REQUIRE(kill(before.roles.at("store.primary").pid, SIGKILL) == 0);
    REQUIRE(svc->WaitForTopology(
        [&](const Topology& t) { return PrimaryAddress(t) != old_primary; }, absl::Seconds(60)));
    REQUIRE(writers.WaitAcks(writers.acks() + 50, absl::Seconds(30)));
    auto lost = Lost(*store, writers.acked());
    CHECK(lost.empty());
  }
  writers.Stop();
  auto lost = Lost(*store, writers.acked());
  CHECK(lost.empty());
  std::printf("sync: %lld acknowledged appends, %lld refused, 0 lost over 5 primary kills\n",
              static_cast<long long>(writers.acks()), static_cast<long long>(writers.errors()));
}

TEST_CASE(
    "async replication loses the acknowledged tail when the primary dies ahead of a "
    "stalled replica, and the read-back names it",
    "[redis][slow]") {
  if (testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  TempDir dir;
  auto svc = StartStore(dir);
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
}

}  // namespace
}  // namespace chaosdrill::reference
