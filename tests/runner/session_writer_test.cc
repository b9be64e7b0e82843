// The session writer against an in-memory SessionService on loopback that can drop
// acknowledged entries or fail appends, so RPO inputs are known exactly.
#include "runner/session_writer.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>

namespace chaosdrill::runner {
namespace {

constexpr int64_t kMs = 1'000'000;

class MemoryStore final : public reference::v1::SessionService::Service {
 public:
  std::mutex mu;
  std::map<std::string, std::vector<reference::v1::Entry>> data;
  bool fail_appends = false;
  int failing_reads = 0;  // this many reads answer UNAVAILABLE (a store failing over)
  int reads = 0;

  grpc::Status Append(grpc::ServerContext*, const reference::v1::AppendRequest* req,
                      reference::v1::AppendResponse* resp) override {
    std::lock_guard lock(mu);
    if (fail_appends) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no primary");
    auto& entries = data[req->session()];
    auto* e = &entries.emplace_back();
    e->set_seq(req->seq());
    e->set_payload(req->payload());
    resp->set_session(req->session());
    resp->set_seq(req->seq());
    return grpc::Status::OK;
  }
  grpc::Status Read(grpc::ServerContext*, const reference::v1::ReadRequest* req,
                    reference::v1::ReadResponse* resp) override {
    std::lock_guard lock(mu);
    ++reads;
    if (failing_reads > 0) {
      --failing_reads;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no primary (failing over)");
    }
    for (const auto& e : data[req->session()]) *resp->add_entries() = e;
    return grpc::Status::OK;
  }
};

struct Server {
  MemoryStore store;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  Server() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&store);
    server = builder.BuildAndStart();
  }
  ~Server() { server->Shutdown(std::chrono::system_clock::now()); }
};

WriteOptions Options(const Server& s) {
  return {.address = "127.0.0.1:" + std::to_string(s.port),
          .rate = 100,
          .sessions = 4,
          .payload_size = 32,
          .session_prefix = "t"};
}

TEST_CASE("appends go round-robin with per-session sequence numbers, all acknowledged",
          "[runner][writes]") {
  Server server;
  MonotonicClock& clock = MonotonicClock::Get();
  SessionWriter writer(Options(server), clock, clock.NowNanos());
  REQUIRE(writer.Start(0).ok());
  clock.SleepUntil(clock.NowNanos() + 250 * kMs);
  writer.Stop();
  auto log = writer.Log();
  REQUIRE(log.size() >= 20);
  CHECK(log[0].session == "t-0");
  CHECK(log[1].session == "t-1");
  CHECK(log[4].session == "t-0");
  CHECK(log[4].seq == 2);
  for (const auto& w : log) {
    REQUIRE(w.ack_ns.has_value());
    CHECK(*w.ack_ns >= w.sent_ns);
  }
  auto back = writer.ReadBack(absl::Seconds(5));
  REQUIRE(back.ok());
  size_t total = 0;
  for (const auto& [session, seqs] : back->sessions) total += seqs.size();
  CHECK(total == log.size());
  CHECK(server.store.data["t-1"][0].payload() == SessionWriter::Payload("t-1", 1, 32));
}

TEST_CASE("failed appends are recorded as unacknowledged and lost entries show in read-back",
          "[runner][writes]") {
  Server server;
  server.store.fail_appends = true;
  MonotonicClock& clock = MonotonicClock::Get();
  SessionWriter writer(Options(server), clock, clock.NowNanos());
  REQUIRE(writer.Start(0).ok());
  clock.SleepUntil(clock.NowNanos() + 100 * kMs);
  {
    std::lock_guard lock(server.store.mu);
    server.store.fail_appends = false;
  }
  clock.SleepUntil(clock.NowNanos() + 150 * kMs);
  writer.Stop();
  auto log = writer.Log();
  CHECK_FALSE(log.front().ack_ns.has_value());
  CHECK(log.back().ack_ns.has_value());
  {
    // The store "loses" session t-0 entirely (a failover that dropped its tail).
    std::lock_guard lock(server.store.mu);
    server.store.data.erase("t-0");
  }
  auto back = writer.ReadBack(absl::Seconds(5));
  REQUIRE(back.ok());
  CHECK(back->sessions.at("t-0").empty());
  CHECK_FALSE(back->sessions.at("t-1").empty());
  CHECK(back->corrupt.empty());
}

TEST_CASE("read-back of an unreachable store is Unavailable, naming the session",
          "[runner][writes]") {
  MonotonicClock& clock = MonotonicClock::Get();
  WriteOptions o{.address = "127.0.0.1:1", .rate = 10, .sessions = 1, .session_prefix = "x"};
  SessionWriter writer(o, clock, clock.NowNanos());
  REQUIRE(writer.Start(0).ok());
  writer.Stop();
  auto back = writer.ReadBack(absl::Milliseconds(300));
  REQUIRE_FALSE(back.ok());
  CHECK(back.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(back.status().message()), Catch::Contains("x-0"));
}

TEST_CASE("read-back retries through a store failover (UNAVAILABLE) until it answers",
          "[runner][writes]") {
  Server server;
  MonotonicClock& clock = MonotonicClock::Get();
  SessionWriter writer(Options(server), clock, clock.NowNanos());
  REQUIRE(writer.Start(0).ok());
  clock.SleepUntil(clock.NowNanos() + 100 * kMs);
  writer.Stop();
  {
    std::lock_guard lock(server.store.mu);
    server.store.failing_reads = 3;
  }
  auto back = writer.ReadBack(absl::Seconds(10));
  REQUIRE(back.ok());
  CHECK(back->retries == 3);
  size_t total = 0;
  for (const auto& [session, seqs] : back->sessions) total += seqs.size();
  CHECK(total == writer.Log().size());

  // A store that stays unavailable past the deadline: Unavailable, saying how many tries.
  {
    std::lock_guard lock(server.store.mu);
    server.store.failing_reads = 1'000'000;
  }
  auto failed = writer.ReadBack(absl::Milliseconds(700));
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(failed.status().message()), Catch::Contains("tries"));
  CHECK_THAT(std::string(failed.status().message()), Catch::Contains("failing over"));
}

TEST_CASE("read-back reports an entry whose payload differs instead of accepting it",
          "[runner][writes]") {
  Server server;
  MonotonicClock& clock = MonotonicClock::Get();
  SessionWriter writer(Options(server), clock, clock.NowNanos());
  REQUIRE(writer.Start(0).ok());
  clock.SleepUntil(clock.NowNanos() + 100 * kMs);
  writer.Stop();
  {
    std::lock_guard lock(server.store.mu);
    REQUIRE(server.store.data["t-2"].size() >= 2);
    server.store.data["t-2"][1].set_payload("somebody else's bytes");
  }
  auto back = writer.ReadBack(absl::Seconds(5));
  REQUIRE(back.ok());
  REQUIRE(back->corrupt.count("t-2") == 1);
  CHECK(back->corrupt.at("t-2") == std::vector<int64_t>{2});
  const auto& intact = back->sessions.at("t-2");
  CHECK(std::find(intact.begin(), intact.end(), 2) == intact.end());
  CHECK(std::find(intact.begin(), intact.end(), 1) != intact.end());
}

TEST_CASE("read-back honours cancellation while the store is unavailable", "[runner][writes]") {
  Server server;
  MonotonicClock& clock = MonotonicClock::Get();
  SessionWriter writer(Options(server), clock, clock.NowNanos());
  REQUIRE(writer.Start(0).ok());
  writer.Stop();
  {
    std::lock_guard lock(server.store.mu);
    server.store.failing_reads = 1'000'000;
  }
  const absl::Time start = absl::Now();
  auto back = writer.ReadBack(absl::Seconds(20),
                              [&] { return absl::Now() - start > absl::Milliseconds(300); });
  const absl::Duration took = absl::Now() - start;
  REQUIRE_FALSE(back.ok());
  CHECK(back.status().code() == absl::StatusCode::kCancelled);
  INFO("took " << absl::FormatDuration(took));
  CHECK(took < absl::Seconds(5));  // not the 20 s timeout
}

}  // namespace
}  // namespace chaosdrill::runner
