// The load generator against a real gRPC server on loopback that answers, fails, stalls
// or lies on demand.
#include "runner/load_generator.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <thread>

#include "runner/analysis.h"

namespace chaosdrill::runner {
namespace {

constexpr int64_t kMs = 1'000'000;

// A fake OIP server: ModelInfer echoes one FP32 value, or misbehaves as told.
class FakeInference final : public inference::GRPCInferenceService::Service {
 public:
  enum class Mode { kAnswer, kUnavailable, kStall, kWrongAnswer };
  std::atomic<Mode> mode{Mode::kAnswer};
  std::atomic<int> calls{0};
  // Requests whose id (the load generator's index k) is in [delay_from, delay_to) are
  // answered only after delay_ms: a server that stalls for a while.
  std::atomic<int> delay_from{-1}, delay_to{-1}, delay_ms{0};

  grpc::Status ModelInfer(grpc::ServerContext* context, const inference::ModelInferRequest* request,
                          inference::ModelInferResponse* response) override {
    ++calls;
    int id = std::atoi(request->id().c_str());
    if (id >= delay_from && id < delay_to) {
      // A simulated stall, not synchronisation.
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms.load());
      while (std::chrono::steady_clock::now() < until && !context->IsCancelled()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
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
  CHECK(w.good == 200);  // no good_latency given: every ok request is good
  CHECK(w.ok_p99_ns > 0);
  CHECK(w.ok_p99_ns <= w.p99_ns);
  // With a good_latency no answer can meet, none is good.
  CHECK(load.Window(0, 1'000 * kMs, 0).good == 0);
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

namespace chaosdrill::runner {
namespace {

// A real clock whose sender-side sleep stalls once: the first SleepUntil at or after drill
// time `at` blocks until `until`, as a descheduled or paused sender thread would.
class StallingClock final : public Clock {
 public:
  StallingClock(int64_t origin, int64_t at, int64_t until)
      : origin_(origin), at_(at), until_(until) {}
  int64_t NowNanos() const override { return real_.NowNanos(); }
  void SleepUntil(int64_t deadline) override {
    if (!stalled_.load() && real_.NowNanos() - origin_ >= at_) {
      began_ = real_.NowNanos() - origin_;
      stalled_ = true;
      real_.SleepUntil(origin_ + until_);
    }
    real_.SleepUntil(deadline);
  }
  bool stalled() const { return stalled_; }
  int64_t began() const { return began_; }  // drill time the stall began (after stalled())

 private:
  MonotonicClock& real_ = MonotonicClock::Get();
  const int64_t origin_, at_, until_;
  std::atomic<int64_t> began_{0};
  std::atomic<bool> stalled_{false};
};

TEST_CASE("a stalled sender does not hide its stall: latency counts from the intended time",
          "[runner][load]") {
  Server server;
  MonotonicClock& real = MonotonicClock::Get();
  const int64_t origin = real.NowNanos();
  StallingClock clock(origin, 100 * kMs, 300 * kMs);
  LoadOptions o = Options(server, 100);
  o.golden_every = 0;
  o.timeout = absl::Seconds(2);
  LoadGenerator load(o, clock, origin);
  REQUIRE(load.Start(0).ok());
  real.SleepUntil(origin + 600 * kMs);  // the drill's duration
  load.Stop();
  REQUIRE(clock.stalled());
  // The stall begins at the sender's first sleep after 100 ms (later if it was behind).
  const int64_t began = clock.began();
  std::printf("sender stall from %.1f ms to 300 ms\n", began / 1e6);
  REQUIRE(began < 190 * kMs);
  std::vector<reports::RequestRecord> log = load.Log();
  REQUIRE(log.size() >= 50);
  int late = 0, expected_late = 0;
  for (int64_t t = 0; t < 300 * kMs; t += 10 * kMs) expected_late += t > began ? 1 : 0;
  for (size_t k = 0; k < 50; ++k) {
    const auto& r = log[k];
    // The schedule is kept: intended times are the schedule's, not the actual sends.
    CHECK(r.intended_ns == static_cast<int64_t>(k) * 10 * kMs);
    CHECK(r.code == 0);
    if (r.intended_ns > began && r.intended_ns < 300 * kMs) {
      // Sent after the stall, in a burst; latency includes the wait, service time does not.
      CHECK(r.sent_ns >= 300 * kMs);
      CHECK(r.latency_ns() >= 300 * kMs - r.intended_ns);
      CHECK(r.latency_ns() == r.service_ns() + (r.sent_ns - r.intended_ns));
      ++late;
    }
  }
  CHECK(late == expected_late);
  CHECK(late >= 11);
  const auto& first_late = log[static_cast<size_t>(30 - late)];
  std::printf("sender stall: request @%.0f ms latency %.1f ms, service %.1f ms\n",
              first_late.intended_ns / 1e6, first_late.latency_ns() / 1e6,
              first_late.service_ns() / 1e6);
  CHECK(load.SendSkew().max() >= 300 * kMs - first_late.intended_ns);
  // The analysis sees the stall as bad requests though every answer was fast.
  AnalysisInput in{.requests = log, .request_interval_ns = 10 * kMs};
  in.phases = {.baseline_end_ns = 0, .faults_end_ns = 0, .observe_end_ns = 500 * kMs};
  in.good_latency_ns = 100 * kMs;
  reports::AnalysisResult a = Analyze(in);
  // Every request that waited more than good_latency is bad; the first late one waited at
  // least 300 - 190 = 110 ms.
  uint64_t slow = 0;
  for (size_t k = 0; k < 50; ++k) slow += log[k].latency_ns() > 100 * kMs ? 1 : 0;
  CHECK(slow >= 1);
  CHECK(a.requests - a.good == slow);
}

TEST_CASE("a stalled server does not slow the sender: open loop, latency from intended time",
          "[runner][load]") {
  Server server;
  server.service.delay_from = 10;
  server.service.delay_to = 30;
  server.service.delay_ms = 500;
  MonotonicClock& clock = MonotonicClock::Get();
  LoadOptions o = Options(server, 100);
  o.golden_every = 0;
  o.timeout = absl::Seconds(2);
  LoadGenerator load(o, clock, clock.NowNanos());
  REQUIRE(load.Start(0).ok());
  clock.SleepUntil(clock.NowNanos() + 500 * kMs);
  load.Stop();  // waits for the stalled answers
  std::vector<reports::RequestRecord> log = load.Log();
  REQUIRE(log.size() >= 40);
  for (size_t k = 11; k < 30; ++k) {
    // Sent before the previous (stalled, 500 ms) answer came back: nobody waited for it.
    CHECK(log[k].sent_ns < log[k - 1].completed_ns);
    CHECK(log[k].service_ns() >= 500 * kMs);
    CHECK(log[k].latency_ns() >= log[k].service_ns());
  }
  LatencyHistogram skew;
  for (size_t k = 10; k < 30; ++k) skew.Record(log[k].sent_ns - log[k].intended_ns);
  std::printf("server stall: send skew during the stall p50 %.2f ms max %.2f ms\n",
              skew.ValueAtQuantile(0.5) / 1e6, skew.max() / 1e6);
}

TEST_CASE("Window is the same as a scan of the log, in pieces of any size", "[runner][load]") {
  Server server;
  server.service.mode = FakeInference::Mode::kUnavailable;
  MonotonicClock& clock = MonotonicClock::Get();
  LoadOptions o = Options(server, 10'000);  // enough records for two 4096-record chunks
  o.golden_every = 0;
  LoadGenerator load(o, clock, clock.NowNanos());
  REQUIRE(load.Start(0).ok());
  clock.SleepUntil(clock.NowNanos() + 1'200 * kMs);
  load.Stop();
  std::vector<reports::RequestRecord> log = load.Log();
  REQUIRE(log.size() > 4200);
  for (auto [from, to] : std::vector<std::pair<int64_t, int64_t>>{
           {0, 500 * kMs}, {13 * kMs, 412 * kMs}, {499 * kMs, 500 * kMs}, {-5, 0}}) {
    LoadWindow w = load.Window(from, to, 1 * kMs);
    uint64_t sent = 0, errors = 0;
    for (const auto& r : log) {
      if (r.intended_ns < from || r.intended_ns >= to) continue;
      ++sent;
      if (IsCompleted(r) && !IsOk(r)) ++errors;
    }
    CHECK(w.sent == sent);
    CHECK(w.errors == errors);
    CHECK(w.ok == 0);
    CHECK(w.good == 0);
  }
}

TEST_CASE("load accuracy: 1,000 rps for 10 s is sent at 1,000 rps within 1 %",
          "[runner][load][slow]") {
  Server server;
  MonotonicClock& clock = MonotonicClock::Get();
  LoadOptions o = Options(server, 1000);
  o.connections = 4;
  o.golden_every = 0;
  o.timeout = absl::Seconds(2);
  const int64_t origin = clock.NowNanos();
  LoadGenerator load(o, clock, origin);
  REQUIRE(load.Start(0).ok());
  clock.SleepUntil(origin + 10'500 * kMs);  // the run, plus time for the last sends
  load.Stop();
  std::vector<reports::RequestRecord> log = load.Log();
  uint64_t sent = 0, ok = 0;
  LatencyHistogram skew, service, latency;
  for (const auto& r : log) {
    if (r.sent_ns < 0 || r.sent_ns >= 10'000 * kMs) continue;
    ++sent;
    if (IsOk(r)) ++ok;
    skew.Record(r.sent_ns - r.intended_ns);
    service.Record(r.service_ns());
    latency.Record(r.latency_ns());
  }
  const double rate = sent / 10.0;
  std::printf(
      "load accuracy: achieved %.1f rps (%llu sent in [0, 10 s), %llu ok); send skew p50 %.3f "
      "ms p99 %.3f ms max %.3f ms; service p50 %.3f ms p99 %.3f ms; latency p99 %.3f ms\n",
      rate, static_cast<unsigned long long>(sent), static_cast<unsigned long long>(ok),
      skew.ValueAtQuantile(0.5) / 1e6, skew.ValueAtQuantile(0.99) / 1e6, skew.max() / 1e6,
      service.ValueAtQuantile(0.5) / 1e6, service.ValueAtQuantile(0.99) / 1e6,
      latency.ValueAtQuantile(0.99) / 1e6);
  CHECK(rate >= 990);
  CHECK(rate <= 1010);
  CHECK(ok >= sent * 99 / 100);
}

}  // namespace
}  // namespace chaosdrill::runner
