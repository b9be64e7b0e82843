// The reference supervisor with real processes: crashed children come back after a
// growing delay and topology.json follows; `reference up/down` through the CLI leaves no
// process behind (checked in /proc).
#include "reference/supervisor.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "reference/child_process.h"
#include "reference/model_codec.h"
#include "reference/tiny_mlp.h"
#include "reference/topology.h"
#include "tests/reference/service_test_util.h"
#include "tests/test_support.h"

namespace chaosdrill::reference {
namespace {

using chaosdrill::testing::TempDir;
using testing::HaveCliReference;
using testing::HaveRedis;
using testing::Leftovers;
using testing::ProcStat;
using testing::Remember;
using testing::ScrapeValue;

TEST_CASE(
    "supervisor restarts a SIGKILLed child after a doubling delay and rewrites "
    "topology.json",
    "[redis][slow]") {
  if (chaosdrill::testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
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

std::unique_ptr<inference::GRPCInferenceService::Stub> Connect(const std::string& address) {
  return inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

bool ServerReady(inference::GRPCInferenceService::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  inference::ServerReadyRequest req;
  inference::ServerReadyResponse resp;
  return stub.ServerReady(&ctx, req, &resp).ok() && resp.ready();
}

// Polls `pred` every 20 ms until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

double Scrape(const std::string& metrics, const std::string& name,
              const std::map<std::string, std::string>& labels = {}) {
  return ScrapeValue(metrics, name, labels).value_or(-1);
}

ReferenceServiceOptions SmallService(const TempDir& dir, int replicas) {
  ReferenceServiceOptions o;
  o.dir = dir.path();
  o.replicas = replicas;
  o.width = 32;
  o.depth = 2;
  o.chaosdrill_binary = chaosdrill::testing::ChaosdrillBinary();
  return o;
}

TEST_CASE("supervisor restarts a SIGKILLed inference replica and the gateway stays ready",
          "[redis][slow]") {
  if (chaosdrill::testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  if (chaosdrill::testing::SkipUnless(HaveCliReference(),
                                      "needs the chaosdrill binary (reference command)"))
    return;
  TempDir dir;
  std::set<pid_t> pids;
  {
    auto svc = ReferenceService::Start(SmallService(dir, 2));
    REQUIRE(svc.status().ToString() == "OK");
    Topology t = (*svc)->topology();
    CHECK_FALSE(t.gateway.empty());
    CHECK(t.roles.count("gateway") == 1);
    CHECK(t.roles.count("replica[1]") == 1);
    Remember(t, pids);
    // The gateway is asked ServerReady every 20 ms from before the kill until the
    // replica is back: one replica stays routable, so it must never say no.
    auto stub = Connect(t.gateway);
    REQUIRE(ServerReady(*stub));
    std::atomic<bool> stop{false};
    std::atomic<int> asked{0}, not_ready{0};
    std::thread poller([&] {
      auto s = Connect(t.gateway);
      while (!stop) {
        ++asked;
        if (!ServerReady(*s)) ++not_ready;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
    const RoleInfo victim = t.roles.at("replica[0]");
    REQUIRE(kill(victim.pid, SIGKILL) == 0);
    // The gateway notices (the health check or outlier detection takes it out)...
    const bool out = Eventually(
        [&] {
          return Scrape(t.metrics, "chaosdrill_gateway_replica_routable",
                        {{"replica", victim.address}}) == 0;
        },
        absl::Seconds(20));
    // ...the supervisor restarts it...
    const bool restarted = (*svc)->WaitForTopology(
        [&](const Topology& x) {
          const RoleInfo& r = x.roles.at("replica[0]");
          return r.alive && r.pid != victim.pid && r.restarts == 1;
        },
        absl::Seconds(30));
    Remember((*svc)->topology(), pids);
    // ...and the gateway routes to both again.
    const bool back =
        Eventually([&] { return Scrape(t.metrics, "chaosdrill_gateway_routable_replicas") == 2; },
                   absl::Seconds(30));
    stop = true;
    poller.join();
    std::printf("gateway ServerReady asked %d times across the restart, %d not ready\n",
                asked.load(), not_ready.load());
    CHECK(out);
    CHECK(restarted);
    CHECK(back);
    CHECK(asked > 10);
    CHECK(not_ready == 0);
    CHECK(ServerReady(*stub));
    REQUIRE((*svc)->Stop().ok());
  }
  CHECK(Leftovers(pids).empty());
}

// A paced client of the gateway: `threads` threads, each sending a golden inference
// every `period` (so threads / period requests per second when answers are quick),
// counting answers by outcome.
class PacedLoad {
 public:
  PacedLoad(const std::string& address, int threads, absl::Duration period) {
    auto model = TinyMlp::Create({.width = 32, .depth = 2});
    golden_in_ = (*model)->golden_input();
    golden_out_ = (*model)->golden_output();
    for (int w = 0; w < threads; ++w) {
      threads_.emplace_back([this, address, period] {
        auto stub = Connect(address);
        inference::ModelInferRequest req =
            MakeInferRequest("tiny-mlp", TensorSpec{"INPUT0", "FP32", {}}, golden_in_, true);
        absl::Time next = absl::Now();
        while (!stop_) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
          inference::ModelInferResponse resp;
          grpc::Status s = stub->ModelInfer(&ctx, req, &resp);
          if (!s.ok()) {
            ++failed_;
          } else {
            auto out = DecodeOutput(resp);
            (out.ok() && MatchesGolden(*out, golden_out_) ? ok_ : wrong_)++;
          }
          next += period;
          const absl::Time now = absl::Now();
          if (next > now) absl::SleepFor(next - now);
        }
      });
    }
  }
  ~PacedLoad() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }
  int wrong() const { return wrong_; }
  bool WaitOk(int at_least, absl::Duration timeout) const {
    return Eventually([&] { return ok_ >= at_least; }, timeout);
  }

 private:
  std::vector<float> golden_in_, golden_out_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0}, wrong_{0};
  std::vector<std::thread> threads_;
};

TEST_CASE(
    "failover through the supervisor: a SIGKILLed replica under 100 rps is ejected, "
    "restarted and re-admitted, and failed requests stay within the retry policy",
    "[redis][slow]") {
  if (chaosdrill::testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  if (chaosdrill::testing::SkipUnless(HaveCliReference(),
                                      "needs the chaosdrill binary (reference command)"))
    return;
  TempDir dir;
  std::set<pid_t> pids;
  {
    auto svc = ReferenceService::Start(SmallService(dir, 3));
    REQUIRE(svc.status().ToString() == "OK");
    const Topology t = (*svc)->topology();
    Remember(t, pids);
    const std::string& m = t.metrics;
    const RoleInfo victim = t.roles.at("replica[1]");
    auto victim_ok = [&] {
      return Scrape(m, "chaosdrill_gateway_replica_requests_total",
                    {{"replica", victim.address}, {"code", "OK"}});
    };
    PacedLoad load(t.gateway, 4, absl::Milliseconds(40));  // 4 x 25/s
    REQUIRE(load.WaitOk(200, absl::Seconds(30)));
    CHECK(victim_ok() > 0);

    REQUIRE(kill(victim.pid, SIGKILL) == 0);
    const absl::Time killed = absl::Now();
    const bool ejected = Eventually(
        [&] {
          return Scrape(m, "chaosdrill_gateway_replica_routable", {{"replica", victim.address}}) ==
                 0;
        },
        absl::Seconds(20));
    const absl::Duration to_eject = absl::Now() - killed;
    const bool restarted = (*svc)->WaitForTopology(
        [&](const Topology& x) {
          const RoleInfo& r = x.roles.at("replica[1]");
          return r.alive && r.pid != victim.pid;
        },
        absl::Seconds(30));
    const absl::Duration to_restart = absl::Now() - killed;
    Remember((*svc)->topology(), pids);
    const bool readmitted = Eventually(
        [&] {
          return Scrape(m, "chaosdrill_gateway_replica_routable", {{"replica", victim.address}}) ==
                     1 &&
                 Scrape(m, "chaosdrill_gateway_routable_replicas") == 3;
        },
        absl::Seconds(30));
    const absl::Duration to_readmit = absl::Now() - killed;
    const double victim_ok_at_readmission = victim_ok();
    // Traffic reaches the restarted replica again.
    const bool serving =
        Eventually([&] { return victim_ok() > victim_ok_at_readmission + 10; }, absl::Seconds(20));
    load.Stop();

    double failed_tries = 0;
    for (const auto& [role, r] : t.roles) {
      if (role.rfind("replica[", 0) != 0) continue;
      for (const char* code :
           {"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "RESOURCE_EXHAUSTED"}) {
        failed_tries += std::max(0.0, Scrape(m, "chaosdrill_gateway_replica_requests_total",
                                             {{"replica", r.address}, {"code", code}}));
      }
    }
    const double retries = Scrape(m, "chaosdrill_gateway_retries_total");
    const double budget_exhausted =
        std::max(0.0, Scrape(m, "chaosdrill_gateway_retry_budget_exhausted_total"));
    const double ejections = std::max(
        0.0, Scrape(m, "chaosdrill_gateway_ejections_total", {{"replica", victim.address}}));
    const double unhealthy = std::max(
        0.0,
        Scrape(m, "chaosdrill_gateway_unhealthy_transitions_total", {{"replica", victim.address}}));
    std::printf(
        "failover via the supervisor (3 replicas, ~100 rps): %d ok, %d failed, %d wrong; "
        "failed tries %g, retries %g, retry budget exhausted %g; victim ejections %g, "
        "unhealthy %g; out of routing after %s, restarted after %s, re-admitted after %s\n",
        load.ok(), load.failed(), load.wrong(), failed_tries, retries, budget_exhausted, ejections,
        unhealthy, absl::FormatDuration(to_eject).c_str(), absl::FormatDuration(to_restart).c_str(),
        absl::FormatDuration(to_readmit).c_str());
    CHECK(ejected);
    CHECK(ejections + unhealthy >= 1);
    CHECK(restarted);
    CHECK(readmitted);
    CHECK(serving);
    CHECK(load.wrong() == 0);
    // The retry policy: a failed try is retried on another replica (max_tries 3) unless
    // the budget says no. So a client request fails only if a retry was refused, or if
    // all its tries failed: at most budget_exhausted + failed_tries / 3.
    CHECK(load.failed() <= budget_exhausted + failed_tries / 3);
    REQUIRE((*svc)->Stop().ok());
  }
  CHECK(Leftovers(pids).empty());
}

TEST_CASE("reference up daemonizes, status reports it, and down leaves no process behind",
          "[redis][slow]") {
  if (chaosdrill::testing::SkipUnless(HaveRedis(), "needs redis-server and redis-sentinel")) return;
  if (chaosdrill::testing::SkipUnless(HaveCliReference(),
                                      "needs the chaosdrill binary (reference command)"))
    return;
  TempDir dir;
  const std::string bin = chaosdrill::testing::ChaosdrillBinary();
  chaosdrill::testing::CommandResult up = chaosdrill::testing::RunCommand(
      {bin, "reference", "up", "--replicas", "1", "--replication", "sync", "--width", "32",
       "--depth", "2", "--dir", dir.path()},
      120'000);
  INFO(up.out << up.err);
  REQUIRE(up.exit_code == 0);
  CHECK_THAT(up.out, Catch::Contains("gateway 127.0.0.1:"));
  auto t = Topology::Load(TopologyPath(dir.path()));
  REQUIRE(t.ok());
  std::set<pid_t> pids;
  Remember(*t, pids);
  pids.insert(t->supervisor_pid);

  chaosdrill::testing::CommandResult status =
      chaosdrill::testing::RunCommand({bin, "reference", "status", "--dir", dir.path()}, 30'000);
  CHECK(status.exit_code == 0);
  CHECK_THAT(status.out, Catch::Contains("store.primary"));
  CHECK_THAT(status.out, Catch::Contains("sentinel[2]"));

  // --json: the topology, with liveness checked now.
  chaosdrill::testing::CommandResult js = chaosdrill::testing::RunCommand(
      {bin, "reference", "status", "--json", "--dir", dir.path()}, 30'000);
  INFO(js.out << js.err);
  CHECK(js.exit_code == 0);
  nlohmann::json j = nlohmann::json::parse(js.out, nullptr, /*allow_exceptions=*/false);
  REQUIRE_FALSE(j.is_discarded());
  auto parsed = Topology::FromJson(j);
  REQUIRE(parsed.ok());
  CHECK(parsed->running);
  CHECK(parsed->supervisor_pid == t->supervisor_pid);
  CHECK(parsed->replication == "sync");
  CHECK(parsed->gateway == t->gateway);
  CHECK(parsed->sentinels.size() == 3);
  for (const char* role : {"gateway", "replica[0]", "store.primary", "store.replica", "sentinel[0]",
                           "sentinel[1]", "sentinel[2]"}) {
    INFO(role);
    REQUIRE(parsed->roles.count(role) == 1);
    const RoleInfo& r = parsed->roles.at(role);
    CHECK(r.pid == t->roles.at(role).pid);
    CHECK(r.pid > 0);
    CHECK(r.alive);
    CHECK(r.address == t->roles.at(role).address);
  }
  CHECK(parsed->roles.size() == 7);

  // A crash under way when it is stopped: the replica is down and about to be restarted.
  kill(t->roles.at("replica[0]").pid, SIGKILL);

  chaosdrill::testing::CommandResult down =
      chaosdrill::testing::RunCommand({bin, "reference", "down", "--dir", dir.path()}, 60'000);
  INFO(down.out << down.err);
  CHECK(down.exit_code == 0);
  auto last = Topology::Load(TopologyPath(dir.path()));
  if (last.ok()) Remember(*last, pids);
  std::vector<ProcStat> left = Leftovers(pids, t->supervisor_pid);
  for (const ProcStat& p : left) UNSCOPED_INFO("left behind: pid " << p.pid);
  CHECK(left.empty());

  // After down: still valid JSON, nothing running, and a non-zero exit.
  chaosdrill::testing::CommandResult after = chaosdrill::testing::RunCommand(
      {bin, "reference", "status", "--json", "--dir", dir.path()}, 30'000);
  CHECK(after.exit_code != 0);
  nlohmann::json ja = nlohmann::json::parse(after.out, nullptr, /*allow_exceptions=*/false);
  REQUIRE_FALSE(ja.is_discarded());
  auto stopped = Topology::FromJson(ja);
  REQUIRE(stopped.ok());
  CHECK_FALSE(stopped->running);
  for (const auto& [role, r] : stopped->roles) {
    INFO(role);
    CHECK_FALSE(r.alive);
  }
}

}  // namespace
}  // namespace chaosdrill::reference
