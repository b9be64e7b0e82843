// The load generator against a real gRPC server on loopback that answers, fails, stalls
// or lies on demand.
#include "runner/load_generator.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <limits>
#include <thread>

namespace chaosdrill::runner {
namespace {

constexpr int64_t kMs = 1'000'000;

// A fake OIP server: ModelInfer echoes one FP32 value, or misbehaves as told.
class FakeInference final : public inference::GRPCInferenceService::Service {
 public:
  enum class Mode { kAnswer, kUnavailable, kStall, kWrongAnswer };
  std::atomic<Mode> mode{Mode::kAnswer};
  std::atomic<int> calls{0};

  grpc::Status ModelInfer(grpc::ServerContext* context, const inference::ModelInferRequest*,
                          inference::ModelInferResponse* response) override {
    ++calls;
    switch (mode.load()) {
      case Mode::kUnavailable:
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "replica down");
      case Mode::kStall:
        // Holds the call past the client's deadline (simulated hang, not synchronisation).
        while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return grpc::Status(grpc::StatusCode::CANCELLED, "client gave up");
      case Mode::kWrongAnswer:
        response->add_outputs()->mutable_contents()->add_fp32_contents(-1);
        return grpc::Status::OK;
      case Mode::kAnswer:
        break;
    }
    response->add_outputs()->mutable_contents()->add_fp32_contents(42);
    return grpc::Status::OK;
  }
};

struct Server {
  FakeInference service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  Server() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
  }
  ~Server() { server->Shutdown(std::chrono::system_clock::now()); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

LoadOptions Options(const Server& s, double rate) {
  LoadOptions o;
  o.address = s.address();
  o.rate = rate;
  o.connections = 2;
  o.timeout = absl::Milliseconds(200);
  o.request.set_model_name("tiny-mlp");
  o.golden_every = 2;
  o.check_answer = [](const inference::ModelInferResponse& r) {
    return r.outputs_size() == 1 && r.outputs(0).contents().fp32_contents_size() == 1 &&
           r.outputs(0).contents().fp32_contents(0) == 42;
  };
  return o;
}

TEST_CASE("constant-rate schedule: exactly rate x duration requests, evenly spaced",
          "[runner][load]") {
  ArrivalSchedule s(200, false, 1, 1000);
  for (int k = 0; k < 200; ++k) CHECK(s.Next() == 1000 + k * 5 * kMs);
}

TEST_CASE("Poisson schedule is reproducible and has the requested mean rate", "[runner][load]") {
  ArrivalSchedule a(1000, true, 7, 0), b(1000, true, 7, 0), c(1000, true, 8, 0);
  int64_t last = 0, differs = 0;
  for (int k = 0; k < 20000; ++k) {
    int64_t ta = a.Next();
    CHECK(ta == b.Next());
    if (ta != c.Next()) ++differs;
    CHECK(ta >= last);
    last = ta;
  }
  CHECK(differs > 19000);
  // 20,000 exponential gaps of mean 1 ms: the sum is 20 s within a few standard deviations
  // (sd of the sum = sqrt(20000) ms = 141 ms).
  CHECK(std::abs(last - 20'000 * kMs) < 5 * 142 * kMs);
}

TEST_CASE("every request intended in a window is sent, answered and timed", "[runner][load]") {
  Server server;
  MonotonicClock& clock = MonotonicClock::Get();
  LoadGenerator load(Options(server, 200), clock, clock.NowNanos());
  REQUIRE(load.Start(0).ok());
  clock.SleepUntil(clock.NowNanos() + 1'300 * kMs);  // the drill's duration, not a sync point
  load.Stop();
  LoadWindow w = load.Window(0, 1'000 * kMs);
  CHECK(w.sent == 200);
  CHECK(w.completed == 200);
  CHECK(w.ok == 200);
  CHECK(w.errors == 0);
  for (const auto& r : load.Log()) {
    CHECK(r.completed_ns > 0);  // Stop() waited for every in-flight request
    CHECK(r.sent_ns >= r.intended_ns);
    CHECK(r.completed_ns >= r.sent_ns);
  }
  // Half of the requests (every 2nd) had their answer checked, and all matched.
  size_t checked = 0;
  for (const auto& r : load.Log()) {
    if (r.flags & reports::RequestRecord::kGoldenChecked) ++checked;
    CHECK((r.flags & reports::RequestRecord::kGoldenMismatch) == 0);
  }
  CHECK(checked == (load.Log().size() + 1) / 2);
  CHECK(load.SendSkew().count() == load.Log().size());
}

TEST_CASE("errors, stalls and wrong answers are recorded as what they are", "[runner][load]") {
  Server server;
  MonotonicClock& clock = MonotonicClock::Get();
  SECTION("UNAVAILABLE") {
    server.service.mode = FakeInference::Mode::kUnavailable;
    LoadGenerator load(Options(server, 100), clock, clock.NowNanos());
    REQUIRE(load.Start(0).ok());
    clock.SleepUntil(clock.NowNanos() + 300 * kMs);
    load.Stop();
    LoadWindow w = load.Window(0, 200 * kMs);
    CHECK(w.sent == 20);
    CHECK(w.errors == 20);
    CHECK(w.success_ratio() == 0);
    CHECK(load.Log()[0].code == static_cast<uint8_t>(grpc::StatusCode::UNAVAILABLE));
  }
  SECTION("a stalled server: requests time out at their deadline") {
    server.service.mode = FakeInference::Mode::kStall;
    LoadGenerator load(Options(server, 50), clock, clock.NowNanos());
    REQUIRE(load.Start(0).ok());
    clock.SleepUntil(clock.NowNanos() + 200 * kMs);
    load.Stop();  // waits for the stalled calls' deadlines
    for (const auto& r : load.Log()) {
      CHECK((r.flags & reports::RequestRecord::kTimeout) != 0);
      CHECK(r.code == static_cast<uint8_t>(grpc::StatusCode::DEADLINE_EXCEEDED));
      CHECK(r.service_ns() >= 190 * kMs);
    }
    CHECK(load.Window(0, std::numeric_limits<int64_t>::max()).timeouts == load.Log().size());
  }
  SECTION("wrong answers on checked requests") {
    server.service.mode = FakeInference::Mode::kWrongAnswer;
    LoadGenerator load(Options(server, 100), clock, clock.NowNanos());
    REQUIRE(load.Start(0).ok());
    clock.SleepUntil(clock.NowNanos() + 250 * kMs);
    load.Stop();
    LoadWindow w = load.Window(0, 200 * kMs);
    CHECK(w.sent == 20);
    CHECK(w.errors == 10);  // the 10 checked ones; unchecked answers count as OK
  }
}

TEST_CASE("bad load options are refused before anything is sent", "[runner][load]") {
  Server server;
  MonotonicClock& clock = MonotonicClock::Get();
  LoadOptions o = Options(server, 0);
  LoadGenerator load(o, clock, clock.NowNanos());
  CHECK(load.Start(0).code() == absl::StatusCode::kInvalidArgument);
  LoadOptions c = Options(server, 10);
  c.connections = 0;
  LoadGenerator load2(c, clock, clock.NowNanos());
  CHECK(load2.Start(0).code() == absl::StatusCode::kInvalidArgument);
  CHECK(server.service.calls == 0);
}

}  // namespace
}  // namespace chaosdrill::runner
