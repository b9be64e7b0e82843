// The session writer against an in-memory SessionService on loopback that can drop
// acknowledged entries or fail appends, so RPO inputs are known exactly.
#include "runner/session_writer.h"

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
  for (const auto& [session, seqs] : *back) total += seqs.size();
  CHECK(total == log.size());
  CHECK(server.store.data["t-1"][0].payload() == SessionWriter::Payload("t-1", 1, 32));
}

TEST_CASE("failed appends are recorded as unacknowledged; lost entries show in read-back",
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
  CHECK(back->at("t-0").empty());
  CHECK_FALSE(back->at("t-1").empty());
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

}  // namespace
}  // namespace chaosdrill::runner
