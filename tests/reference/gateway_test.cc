// The gateway over real gRPC on loopback, in front of real replicas (in-process, or child
// processes where a test SIGKILLs one): balancing, readiness, failover under load with
// re-admission, gray-failure detection by the deep probe (and its absence with a
// readiness-only check), passive ejection with retries, and the /metrics endpoint.
#include "reference/gateway.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chaosdrill/reference/v1/session.grpc.pb.h"
#include "reference/metrics.h"
#include "reference/model_codec.h"
#include "reference/replica.h"
#include "reference/tiny_mlp.h"
#include "tests/reference/oip_test_util.h"
#include "tests/test_support.h"

namespace chaosdrill::reference {
namespace {

using testing::Connect;
using testing::Infer;
using testing::IsReady;
using testing::ReplicaProcess;

const std::vector<float>& GoldenInput() {
  static const std::vector<float> v = (*TinyMlp::Create({}))->golden_input();
  return v;
}
const std::vector<float>& GoldenOutput() {
  static const std::vector<float> v = (*TinyMlp::Create({}))->golden_output();
  return v;
}

// Fast health checking so the tests run in seconds.
GatewayOptions FastGateway(const std::vector<std::string>& replicas) {
  GatewayOptions o;
  o.replicas = replicas;
  o.metrics_listen = "127.0.0.1:0";
  o.health_interval_ms = 100;
  o.health_timeout_ms = 500;
  o.rise = 2;
  o.fall = 2;
  o.consecutive_failures = 3;
  o.base_ejection_ms = 1000;
  o.max_ejection_ms = 5000;
  o.per_try_timeout_ms = 1000;
  o.overall_timeout_ms = 3000;
  return o;
}

struct InProcessReplicas {
  explicit InProcessReplicas(int n) {
    for (int i = 0; i < n; ++i) {
      auto r = Replica::Start({});
      REQUIRE(r.ok());
      REQUIRE((*r)->WaitReady(20000));
      addresses.push_back((*r)->address());
      replicas.push_back(*std::move(r));
    }
  }
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::string> addresses;
};

double ReplicaOk(Gateway& g, const std::string& address) {
  return g.metrics().Value("chaosdrill_gateway_replica_requests_total",
                           {{"replica", address}, {"code", "OK"}});
}

// A minimal HTTP/1.0 GET on loopback; returns the whole response.
std::string HttpGet(const std::string& address, const std::string& path) {
  const size_t colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: x\r\n\r\n");
  (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, n);
  ::close(fd);
  return out;
}

TEST_CASE("gateway balances golden inferences across 3 replicas", "[reference]") {
  InProcessReplicas r(3);
  auto gateway = Gateway::Start(FastGateway(r.addresses));
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(3, 20000));
  auto stub = Connect((*gateway)->address());
  CHECK(IsReady(*stub));
  for (int i = 0; i < 60; ++i) {
    auto out = Infer(*stub, GoldenInput(), /*raw=*/i % 2 == 0);
    REQUIRE(out.ok());
    CHECK(MatchesGolden(*out, GoldenOutput()));
  }
  for (const std::string& a : r.addresses) {
    INFO(a);
    CHECK(ReplicaOk(**gateway, a) >= 10);  // 20 each when perfectly even
  }
  grpc::ClientContext ctx;
  inference::ModelMetadataRequest req;
  req.set_name("tiny-mlp");
  inference::ModelMetadataResponse md;
  REQUIRE(stub->ModelMetadata(&ctx, req, &md).ok());
  CHECK(md.name() == "tiny-mlp");
}

TEST_CASE("gateway is not ready and refuses inference with no healthy replica", "[reference]") {
  std::string dead;
  {
    auto r = Replica::Start({});
    REQUIRE(r.ok());
    dead = (*r)->address();
  }  // shut down: nothing listens there now
  auto gateway = Gateway::Start(FastGateway({dead}));
  REQUIRE(gateway.ok());
  auto stub = Connect((*gateway)->address());
  CHECK_FALSE(IsReady(*stub));
  CHECK(Infer(*stub, GoldenInput()).status().code() == absl::StatusCode::kUnavailable);
  CHECK(Gateway::Start(GatewayOptions{}).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("SIGKILL of a replica under load: ejected, clients keep succeeding, re-admitted",
          "[reference][slow]") {
  chaosdrill::testing::TempDir dir;
  std::vector<std::unique_ptr<ReplicaProcess>> procs;
  std::vector<std::string> addresses;
  for (int i = 0; i < 3; ++i) {
    auto p = ReplicaProcess::Start({"--listen", "127.0.0.1:0"}, dir.path());
    REQUIRE(p.ok());
    addresses.push_back((*p)->address());
    procs.push_back(*std::move(p));
  }
  auto gateway = Gateway::Start(FastGateway(addresses));
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(3, 20000));

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, wrong{0};
  std::vector<std::thread> load;
  for (int w = 0; w < 4; ++w) {
    load.emplace_back([&] {
      auto stub = Connect((*gateway)->address());
      while (!stop) {
        auto out = Infer(*stub, GoldenInput(), true, 3000);
        if (!out.ok()) {
          ++failed;
        } else if (!MatchesGolden(*out, GoldenOutput())) {
          ++wrong;
        } else {
          ++ok;
        }
      }
    });
  }
  auto wait_requests = [&](int n) {  // bounded: the load runs at hundreds per second
    const int target = ok + failed + n;
    for (int i = 0; i < 3000 && ok + failed < target; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  wait_requests(200);
  const std::string victim = addresses[1];
  procs[1]->Signal(SIGKILL);
  wait_requests(400);
  const bool excluded = (*gateway)->RoutableReplicas() == 2;
  const double victim_ok_while_dead = ReplicaOk(**gateway, victim);

  // The "kubelet" restarts it on the same address; it must pass health checks to return.
  auto again = ReplicaProcess::Start({"--listen", victim}, dir.path());
  REQUIRE(again.ok());
  procs[1] = *std::move(again);
  const bool readmitted = (*gateway)->WaitForRoutable(3, 20000);
  wait_requests(300);
  stop = true;
  for (auto& t : load) t.join();

  Metrics& m = (*gateway)->metrics();
  const double detections = m.Value("chaosdrill_gateway_detection_seconds_count",
                                    {{"replica", victim}, {"by", "health"}}) +
                            m.Value("chaosdrill_gateway_detection_seconds_count",
                                    {{"replica", victim}, {"by", "outlier"}});
  WARN("failover: " << ok << " ok, " << failed << " failed, " << wrong << " wrong; retries "
                    << m.Value("chaosdrill_gateway_retries_total") << "; health detection "
                    << m.Value("chaosdrill_gateway_last_detection_seconds",
                               {{"replica", victim}, {"by", "health"}})
                    << " s; ejections "
                    << m.Value("chaosdrill_gateway_ejections_total", {{"replica", victim}}));
  CHECK(excluded);
  CHECK(readmitted);
  CHECK(detections >= 1);
  CHECK(wrong == 0);
  CHECK(failed <= 5);  // retries on another replica absorb the kill (0 seen in practice)
  CHECK(ok >= 300);    // the load really ran (about 1200 on an idle box)
  CHECK(ReplicaOk(**gateway, victim) > victim_ok_while_dead);  // traffic came back
}

TEST_CASE("gray failure: the deep probe ejects a wrong-answers replica", "[reference]") {
  InProcessReplicas r(3);
  auto gateway = Gateway::Start(FastGateway(r.addresses));
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(3, 20000));
  REQUIRE(r.replicas[2]->SetDegrade("wrong-answers").ok());
  // Wait (bounded) for the deep probe to take it out.
  for (int i = 0; i < 500 && (*gateway)->RoutableReplicas() != 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE((*gateway)->RoutableReplicas() == 2);
  CHECK((*gateway)->metrics().Value("chaosdrill_gateway_replica_healthy",
                                    {{"replica", r.addresses[2]}}) == 0);
  auto stub = Connect((*gateway)->address());
  int wrong = 0;
  for (int i = 0; i < 60; ++i) {
    auto out = Infer(*stub, GoldenInput());
    REQUIRE(out.ok());
    wrong += !MatchesGolden(*out, GoldenOutput());
  }
  CHECK(wrong == 0);
  // Healed: the deep probe passes `rise` times and it is routed again.
  REQUIRE(r.replicas[2]->SetDegrade("none").ok());
  CHECK((*gateway)->WaitForRoutable(3, 20000));
}

TEST_CASE("gray failure: a readiness-only check keeps routing to a wrong-answers replica",
          "[reference]") {
  InProcessReplicas r(3);
  GatewayOptions options = FastGateway(r.addresses);
  options.deep_probe = false;
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(3, 20000));
  REQUIRE(r.replicas[2]->SetDegrade("wrong-answers").ok());
  // Give the checker ten intervals to (wrongly) notice nothing: we assert an absence.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK((*gateway)->RoutableReplicas() == 3);
  auto stub = Connect((*gateway)->address());
  int wrong = 0;
  for (int i = 0; i < 60; ++i) {
    auto out = Infer(*stub, GoldenInput());
    REQUIRE(out.ok());
    wrong += !MatchesGolden(*out, GoldenOutput());
  }
  WARN("readiness-only: " << wrong << " of 60 answers wrong");
  CHECK(wrong >= 10);  // about a third
}

TEST_CASE("a replica failing inferences is ejected passively and requests are retried",
          "[reference]") {
  InProcessReplicas r(3);
  GatewayOptions options = FastGateway(r.addresses);
  options.deep_probe = false;  // readiness passes: only outlier detection can catch it
  options.base_ejection_ms = 10000;
  options.max_ejection_ms = 10000;
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(3, 20000));
  REQUIRE(r.replicas[0]->SetDegrade("errors").ok());
  auto stub = Connect((*gateway)->address());
  int failed = 0;
  for (int i = 0; i < 60; ++i) failed += !Infer(*stub, GoldenInput()).ok();
  Metrics& m = (*gateway)->metrics();
  CHECK(failed == 0);
  CHECK(m.Value("chaosdrill_gateway_ejections_total", {{"replica", r.addresses[0]}}) == 1);
  CHECK(m.Value("chaosdrill_gateway_retries_total") >= 3);
  CHECK(m.Value("chaosdrill_gateway_replica_ejected", {{"replica", r.addresses[0]}}) == 1);
  CHECK((*gateway)->RoutableReplicas() == 2);
}

TEST_CASE("a slow replica hits the per-try deadline and the request is retried elsewhere",
          "[reference]") {
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::string> addresses;
  for (int i = 0; i < 2; ++i) {
    ReplicaOptions ro;
    ro.slow_delay_ms = 2000;
    auto r = Replica::Start(ro);
    REQUIRE(r.ok());
    REQUIRE((*r)->WaitReady(20000));
    addresses.push_back((*r)->address());
    replicas.push_back(*std::move(r));
  }
  GatewayOptions options = FastGateway(addresses);
  options.deep_probe = false;
  options.per_try_timeout_ms = 300;
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(2, 20000));
  REQUIRE(replicas[0]->SetDegrade("slow").ok());
  auto stub = Connect((*gateway)->address());
  int failed = 0;
  for (int i = 0; i < 10; ++i) failed += !Infer(*stub, GoldenInput(), true, 5000).ok();
  Metrics& m = (*gateway)->metrics();
  CHECK(failed == 0);
  CHECK(m.Value("chaosdrill_gateway_replica_requests_total",
                {{"replica", addresses[0]}, {"code", "DEADLINE_EXCEEDED"}}) >= 1);
  CHECK(m.Value("chaosdrill_gateway_ejections_total", {{"replica", addresses[0]}}) == 1);
}

double ReplicaTries(Gateway& g, const std::string& address) {
  double total = 0;
  for (const char* code : {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "INTERNAL",
                           "UNKNOWN", "RESOURCE_EXHAUSTED", "ABORTED", "INVALID_ARGUMENT"}) {
    total += g.metrics().Value("chaosdrill_gateway_replica_requests_total",
                               {{"replica", address}, {"code", code}});
  }
  return total;
}

// Runs `threads` closed-loop clients of golden inferences until `done()` or `timeout`.
void RunLoad(const std::string& address, int threads, const std::function<bool()>& done,
             absl::Duration timeout, int client_timeout_ms = 5000) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> load;
  for (int w = 0; w < threads; ++w) {
    load.emplace_back([&] {
      auto stub = Connect(address);
      while (!stop) (void)Infer(*stub, GoldenInput(), true, client_timeout_ms);
    });
  }
  const absl::Time deadline = absl::Now() + timeout;
  while (!done() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  stop = true;
  for (auto& t : load) t.join();
}

TEST_CASE("least outstanding requests shifts concurrent load away from a slow replica",
          "[reference]") {
  // Replica 0 answers after 500 ms, the others in about a millisecond. Under least-
  // outstanding-requests each pick goes to a replica with the fewest requests in flight,
  // so the slow one only gets a request when it is as idle as the fast ones: its share is
  // about fast latency / slow latency. Round-robin would give it exactly a third whatever
  // the latencies, which is what the bound below rejects.
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::string> addresses;
  for (int i = 0; i < 3; ++i) {
    ReplicaOptions ro;
    ro.slow_delay_ms = 500;
    ro.degrade = i == 0 ? "slow" : "none";
    auto r = Replica::Start(ro);
    REQUIRE(r.ok());
    REQUIRE((*r)->WaitReady(20000));
    addresses.push_back((*r)->address());
    replicas.push_back(*std::move(r));
  }
  GatewayOptions options = FastGateway(addresses);
  options.deep_probe = false;  // ServerReady is not slowed: the slow replica stays healthy
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(3, 20000));
  Gateway& g = **gateway;
  RunLoad(
      g.address(), 6,
      [&] { return ReplicaOk(g, addresses[1]) + ReplicaOk(g, addresses[2]) >= 600; },
      absl::Seconds(30));
  const double slow = ReplicaOk(g, addresses[0]);
  const double total = slow + ReplicaOk(g, addresses[1]) + ReplicaOk(g, addresses[2]);
  WARN("least outstanding requests: slow replica served " << slow << " of " << total
                                                          << " requests");
  CHECK(total >= 600);
  CHECK(slow >= 1);            // still routable, and still used
  CHECK(slow < 0.15 * total);  // round-robin: 1/3
  CHECK(g.RoutableReplicas() == 3);
  CHECK(g.metrics().Value("chaosdrill_gateway_ejections_total", {{"replica", addresses[0]}}) == 0);
}

// An OIP server whose ServerReady answer the test sets, recording for each probe what it
// answered and how many replicas the gateway found routable when the probe arrived. A
// probe starts only after the previous one's result was recorded, so the k-th entry sees
// the effect of the first k-1 probes exactly.
class ProbeRecorder final : public inference::GRPCInferenceService::Service {
 public:
  struct Probe {
    bool answered_ready;
    int routable_at_arrival;
  };
  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* response) override {
    absl::MutexLock lock(&mu_);
    const int routable = gateway_ != nullptr ? gateway_->RoutableReplicas() : -1;
    probes_.push_back({ready_, routable});
    response->set_ready(ready_);
    return grpc::Status::OK;
  }
  void SetReady(bool ready) {
    absl::MutexLock lock(&mu_);
    ready_ = ready;
    flip_at_ = probes_.size();
  }
  void SetGateway(Gateway* g) {
    absl::MutexLock lock(&mu_);
    gateway_ = g;
  }
  // Probes answered since the last SetReady, once there are at least `n` (bounded wait).
  std::vector<Probe> WaitProbesSinceFlip(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return probes_.size() >= flip_at_ + n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return std::vector<Probe>(probes_.begin() + static_cast<long>(flip_at_), probes_.end());
  }

 private:
  absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = true;
  size_t flip_at_ ABSL_GUARDED_BY(mu_) = 0;
  Gateway* gateway_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<Probe> probes_ ABSL_GUARDED_BY(mu_);
};

TEST_CASE("rise and fall: unhealthy after exactly fall failed probes, back after exactly rise",
          "[reference]") {
  ProbeRecorder recorder;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&recorder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  REQUIRE(server != nullptr);
  GatewayOptions options = FastGateway({absl::StrCat("127.0.0.1:", port)});
  options.deep_probe = false;
  options.health_interval_ms = 50;
  options.fall = 3;
  options.rise = 4;
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  recorder.SetGateway(gateway->get());
  REQUIRE((*gateway)->WaitForRoutable(1, 20000));

  recorder.SetReady(false);
  std::vector<ProbeRecorder::Probe> down =
      recorder.WaitProbesSinceFlip(options.fall + 2, absl::Seconds(20));
  REQUIRE(down.size() >= static_cast<size_t>(options.fall + 2));
  // down[0] may have been answered "ready" if it was in flight when the answer flipped.
  size_t first_fail = 0;
  while (first_fail < down.size() && down[first_fail].answered_ready) ++first_fail;
  REQUIRE(first_fail <= 1);
  REQUIRE(down.size() >= first_fail + options.fall + 1);
  for (int k = 0; k < options.fall; ++k) {
    INFO("failed probe " << k + 1);
    CHECK(down[first_fail + k].routable_at_arrival == 1);  // routable until the fall-th
  }
  CHECK(down[first_fail + options.fall].routable_at_arrival == 0);

  recorder.SetReady(true);
  std::vector<ProbeRecorder::Probe> up =
      recorder.WaitProbesSinceFlip(options.rise + 2, absl::Seconds(20));
  size_t first_pass = 0;
  while (first_pass < up.size() && !up[first_pass].answered_ready) ++first_pass;
  REQUIRE(first_pass <= 1);
  REQUIRE(up.size() >= first_pass + options.rise + 1);
  for (int k = 0; k < options.rise; ++k) {
    INFO("passed probe " << k + 1);
    CHECK(up[first_pass + k].routable_at_arrival == 0);  // out until the rise-th
  }
  CHECK(up[first_pass + options.rise].routable_at_arrival == 1);
  CHECK((*gateway)->metrics().Value("chaosdrill_gateway_unhealthy_transitions_total",
                                    {{"replica", options.replicas[0]}}) == 1);
  recorder.SetGateway(nullptr);
  gateway->reset();
  server->Shutdown();
}

TEST_CASE("the overall deadline ends a request that keeps timing out its tries", "[reference]") {
  // Five replicas that never answer in time: each try hits the 300 ms per-try timeout and
  // is retried elsewhere, up to 5 tries (1.5 s). The 700 ms overall deadline ends it
  // first, well inside the client's own 5 s.
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::string> addresses;
  for (int i = 0; i < 5; ++i) {
    ReplicaOptions ro;
    ro.slow_delay_ms = 5000;
    ro.degrade = "slow";
    auto r = Replica::Start(ro);
    REQUIRE(r.ok());
    REQUIRE((*r)->WaitReady(20000));
    addresses.push_back((*r)->address());
    replicas.push_back(*std::move(r));
  }
  GatewayOptions options = FastGateway(addresses);
  options.deep_probe = false;
  options.per_try_timeout_ms = 300;
  options.overall_timeout_ms = 700;
  options.max_tries = 5;
  options.consecutive_failures = 100;  // no ejection: every try has a replica to go to
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(5, 20000));
  auto stub = Connect((*gateway)->address());
  const absl::Time start = absl::Now();
  auto out = Infer(*stub, GoldenInput(), true, 5000);
  const absl::Duration elapsed = absl::Now() - start;
  const double retries = (*gateway)->metrics().Value("chaosdrill_gateway_retries_total");
  WARN("overall deadline: answered after " << absl::FormatDuration(elapsed) << " with "
                                           << out.status() << ", " << retries << " retries");
  CHECK(out.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(elapsed >= absl::Milliseconds(650));  // not before the overall deadline
  CHECK(elapsed < absl::Milliseconds(1400));  // 5 tries of 300 ms would take 1.5 s
  CHECK(retries >= 1);
  CHECK(retries <= 2);  // tries start at ~0, ~300, ~600 ms; the 700 ms deadline stops more
}

TEST_CASE("the gateway never routes to an ejected replica", "[reference]") {
  InProcessReplicas r(3);
  GatewayOptions options = FastGateway(r.addresses);
  options.deep_probe = false;
  options.base_ejection_ms = 20000;
  options.max_ejection_ms = 20000;
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(3, 20000));
  Gateway& g = **gateway;
  REQUIRE(r.replicas[0]->SetDegrade("errors").ok());
  auto stub = Connect(g.address());
  for (int i = 0; i < 200 && g.metrics().Value("chaosdrill_gateway_ejections_total",
                                               {{"replica", r.addresses[0]}}) < 1;
       ++i) {
    (void)Infer(*stub, GoldenInput());
  }
  REQUIRE(g.metrics().Value("chaosdrill_gateway_ejections_total", {{"replica", r.addresses[0]}}) ==
          1);
  // Healed but still ejected (20 s): nothing may reach it until the ejection ends.
  REQUIRE(r.replicas[0]->SetDegrade("none").ok());
  const double tries_at_ejection = ReplicaTries(g, r.addresses[0]);
  std::atomic<int> ok{0};
  std::vector<std::thread> load;
  for (int w = 0; w < 4; ++w) {
    load.emplace_back([&] {
      auto s = Connect(g.address());
      for (int i = 0; i < 50; ++i) ok += Infer(*s, GoldenInput()).ok();
    });
  }
  for (auto& t : load) t.join();
  CHECK(ok == 200);
  CHECK(ReplicaTries(g, r.addresses[0]) == tries_at_ejection);
  CHECK(g.metrics().Value("chaosdrill_gateway_replica_ejected", {{"replica", r.addresses[0]}}) ==
        1);
  CHECK(g.RoutableReplicas() == 2);
  // 2 of 3 in rotation is above the 50 % panic threshold: the ejection is honoured.
  CHECK(g.metrics().Value("chaosdrill_gateway_panic") == 0);
  CHECK(g.metrics().Value("chaosdrill_gateway_panic_routed_total", {{"replica", r.addresses[0]}}) ==
        0);
}

// Ejects the only replica (deep probe off, so its health checks keep passing: only outlier
// detection sees its errors), heals it, and returns how many of 20 inferences then succeed
// while it is still ejected (20 s).
int OkAfterEjectingTheOnlyReplica(int panic_threshold, Gateway** out_gateway,
                                  std::unique_ptr<Gateway>* holder, InProcessReplicas& r) {
  GatewayOptions options = FastGateway(r.addresses);
  options.deep_probe = false;
  options.base_ejection_ms = 20000;
  options.max_ejection_ms = 20000;
  options.panic_threshold_percent = panic_threshold;
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  *holder = *std::move(gateway);
  Gateway& g = **holder;
  *out_gateway = &g;
  REQUIRE(g.WaitForRoutable(1, 20000));
  CHECK(g.metrics().Value("chaosdrill_gateway_panic") == 0);
  REQUIRE(r.replicas[0]->SetDegrade("errors").ok());
  auto stub = Connect(g.address());
  int failed = 0;
  for (int i = 0; i < 3; ++i) failed += !Infer(*stub, GoldenInput()).ok();
  CHECK(failed == 3);  // one replica: a retry has nowhere else to go
  REQUIRE(g.metrics().Value("chaosdrill_gateway_ejections_total", {{"replica", r.addresses[0]}}) ==
          1);
  REQUIRE(r.replicas[0]->SetDegrade("none").ok());
  int ok = 0;
  absl::Status last;
  for (int i = 0; i < 20; ++i) {
    auto answer = Infer(*stub, GoldenInput());
    ok += answer.ok();
    if (!answer.ok()) last = answer.status();
  }
  std::printf(
      "panic threshold %d%%: %d of 20 OK after the only replica was ejected%s%s\n", panic_threshold,
      ok, last.ok() ? "" : "; last error: ", last.ok() ? "" : std::string(last.message()).c_str());
  CHECK(g.metrics().Value("chaosdrill_gateway_replica_ejected", {{"replica", r.addresses[0]}}) ==
        1);
  return ok;
}

TEST_CASE("panic: a burst of errors from the only replica does not leave the gateway refusing",
          "[reference]") {
  // With one replica, 3 failed tries eject it; below the 50 % panic threshold (0 of 1 in
  // rotation) the gateway keeps routing to it because its health checks still pass, so a
  // hiccup costs the failed tries, not the 20 s ejection.
  InProcessReplicas r(1);
  Gateway* g = nullptr;
  std::unique_ptr<Gateway> holder;
  CHECK(OkAfterEjectingTheOnlyReplica(50, &g, &holder, r) == 20);
  Metrics& m = g->metrics();
  CHECK(m.Value("chaosdrill_gateway_panic") == 1);
  CHECK(m.Value("chaosdrill_gateway_panic_routed_total", {{"replica", r.addresses[0]}}) == 20);
  CHECK(g->RoutableReplicas() == 1);
  CHECK(IsReady(*Connect(g->address())));
  // /metrics shows it, with the replica ejected yet routable.
  const std::string body = HttpGet(g->metrics_address(), "/metrics");
  INFO(body);
  CHECK(body.find("\nchaosdrill_gateway_panic 1\n") != std::string::npos);
  CHECK(body.find("# TYPE chaosdrill_gateway_panic gauge") != std::string::npos);
  CHECK(body.find(absl::StrCat("chaosdrill_gateway_replica_ejected{replica=\"", r.addresses[0],
                               "\"} 1")) != std::string::npos);
  CHECK(body.find(absl::StrCat("chaosdrill_gateway_replica_routable{replica=\"", r.addresses[0],
                               "\"} 1")) != std::string::npos);
  CHECK(body.find("chaosdrill_gateway_routable_replicas 1") != std::string::npos);
}

TEST_CASE("panic threshold 0: ejecting the only replica leaves nothing to route to",
          "[reference]") {
  // The control: with panic routing off the same burst takes the gateway down for the
  // ejection (the behaviour panic routing exists to prevent).
  InProcessReplicas r(1);
  Gateway* g = nullptr;
  std::unique_ptr<Gateway> holder;
  CHECK(OkAfterEjectingTheOnlyReplica(0, &g, &holder, r) == 0);
  CHECK(g->metrics().Value("chaosdrill_gateway_panic") == 0);
  CHECK(g->RoutableReplicas() == 0);
  CHECK_FALSE(IsReady(*Connect(g->address())));
  CHECK(Gateway::Start([&] {
          GatewayOptions o = FastGateway(r.addresses);
          o.panic_threshold_percent = 101;
          return o;
        }())
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("panic: with three replicas one ejection is honoured, a second one starts panic",
          "[reference]") {
  InProcessReplicas r(3);
  GatewayOptions options = FastGateway(r.addresses);
  options.deep_probe = false;
  options.base_ejection_ms = 20000;
  options.max_ejection_ms = 20000;
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  Gateway& g = **gateway;
  REQUIRE(g.WaitForRoutable(3, 20000));
  Metrics& m = g.metrics();
  auto stub = Connect(g.address());
  auto eject = [&](int i) {
    REQUIRE(r.replicas[i]->SetDegrade("errors").ok());
    for (int k = 0; k < 300 && m.Value("chaosdrill_gateway_ejections_total",
                                       {{"replica", r.addresses[i]}}) < 1;
         ++k) {
      (void)Infer(*stub, GoldenInput());
    }
    REQUIRE(m.Value("chaosdrill_gateway_ejections_total", {{"replica", r.addresses[i]}}) == 1);
    REQUIRE(r.replicas[i]->SetDegrade("none").ok());
  };
  auto ok_of = [&](int n) {
    int ok = 0;
    for (int k = 0; k < n; ++k) ok += Infer(*stub, GoldenInput()).ok();
    return ok;
  };
  // One ejected: 2 of 3 in rotation (67 % >= 50 %), it gets nothing.
  eject(0);
  const double tries0 = ReplicaTries(g, r.addresses[0]);
  CHECK(ok_of(30) == 30);
  CHECK(ReplicaTries(g, r.addresses[0]) == tries0);
  CHECK(m.Value("chaosdrill_gateway_panic") == 0);
  CHECK(g.RoutableReplicas() == 2);
  // Two ejected: 1 of 3 (33 % < 50 %): panic, all three healthy replicas take traffic again.
  eject(1);
  CHECK(m.Value("chaosdrill_gateway_panic") == 1);
  CHECK(g.RoutableReplicas() == 3);
  const double before0 = ReplicaTries(g, r.addresses[0]);
  const double before1 = ReplicaTries(g, r.addresses[1]);
  CHECK(ok_of(60) == 60);
  const double routed0 = ReplicaTries(g, r.addresses[0]) - before0;
  const double routed1 = ReplicaTries(g, r.addresses[1]) - before1;
  std::printf("panic with 2 of 3 ejected: 60 requests, %.0f and %.0f tries on the ejected ones\n",
              routed0, routed1);
  CHECK(routed0 > 0);
  CHECK(routed1 > 0);
  CHECK(m.Value("chaosdrill_gateway_panic_routed_total", {{"replica", r.addresses[0]}}) == routed0);
}

TEST_CASE("panic: a replica failing its active health checks stays out", "[reference]") {
  // The only replica answers errors with the deep probe on: 3 failed tries eject it and 2
  // failed probes mark it unhealthy. Panic ignores the ejection, not the health checks:
  // nothing is routable, the gateway answers UNAVAILABLE itself and the replica sees no
  // try. Healed, it comes back after `rise` passed probes, still ejected (20 s) but routed.
  InProcessReplicas r(1);
  GatewayOptions options = FastGateway(r.addresses);
  options.base_ejection_ms = 20000;
  options.max_ejection_ms = 20000;
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  Gateway& g = **gateway;
  REQUIRE(g.WaitForRoutable(1, 20000));
  Metrics& m = g.metrics();
  REQUIRE(r.replicas[0]->SetDegrade("errors").ok());
  auto stub = Connect(g.address());
  for (int i = 0; i < 3; ++i) (void)Infer(*stub, GoldenInput());
  REQUIRE(m.Value("chaosdrill_gateway_ejections_total", {{"replica", r.addresses[0]}}) == 1);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (m.Value("chaosdrill_gateway_replica_healthy", {{"replica", r.addresses[0]}}) != 0 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  REQUIRE(m.Value("chaosdrill_gateway_replica_healthy", {{"replica", r.addresses[0]}}) == 0);
  CHECK(g.RoutableReplicas() == 0);
  const double tries = ReplicaTries(g, r.addresses[0]);
  auto refused = Infer(*stub, GoldenInput());
  CHECK(refused.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("no healthy replica"));
  CHECK(ReplicaTries(g, r.addresses[0]) == tries);
  CHECK(m.Value("chaosdrill_gateway_panic") == 1);
  REQUIRE(r.replicas[0]->SetDegrade("none").ok());
  REQUIRE(g.WaitForRoutable(1, 20000));
  CHECK(m.Value("chaosdrill_gateway_replica_ejected", {{"replica", r.addresses[0]}}) == 1);
  CHECK(Infer(*stub, GoldenInput()).ok());
}

TEST_CASE("short client deadlines and the overall deadline do not eject healthy replicas",
          "[reference]") {
  // Every inference takes 300 ms. Clients that give up after 50 ms see DEADLINE_EXCEEDED,
  // but the replicas did nothing wrong: the tries were cut by the client's deadline, not
  // by the per-try timeout, so outlier detection must not count them (it did: three of
  // them in a row ejected a replica, and soon all three).
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::string> addresses;
  for (int i = 0; i < 3; ++i) {
    ReplicaOptions ro;
    ro.slow_delay_ms = 300;
    ro.degrade = "slow";
    auto r = Replica::Start(ro);
    REQUIRE(r.ok());
    REQUIRE((*r)->WaitReady(20000));
    addresses.push_back((*r)->address());
    replicas.push_back(*std::move(r));
  }
  GatewayOptions options = FastGateway(addresses);
  options.deep_probe = false;
  options.per_try_timeout_ms = 1000;
  options.overall_timeout_ms = 3000;
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(3, 20000));
  Gateway& g = **gateway;
  auto stub = Connect(g.address());
  int deadline_exceeded = 0;
  for (int i = 0; i < 15; ++i) {
    deadline_exceeded += Infer(*stub, GoldenInput(), true, 50).status().code() ==
                         absl::StatusCode::kDeadlineExceeded;
  }
  CHECK(deadline_exceeded == 15);
  // The same through the gateway's own overall deadline (100 ms < per-try 1000 ms).
  GatewayOptions short_overall = options;
  short_overall.overall_timeout_ms = 100;
  auto gateway2 = Gateway::Start(short_overall);
  REQUIRE(gateway2.ok());
  REQUIRE((*gateway2)->WaitForRoutable(3, 20000));
  auto stub2 = Connect((*gateway2)->address());
  int overall_exceeded = 0;
  for (int i = 0; i < 15; ++i) {
    overall_exceeded += Infer(*stub2, GoldenInput(), true, 5000).status().code() ==
                        absl::StatusCode::kDeadlineExceeded;
  }
  CHECK(overall_exceeded == 15);
  for (Gateway* gw : {&g, gateway2->get()}) {
    for (const std::string& a : addresses) {
      INFO(a);
      CHECK(gw->metrics().Value("chaosdrill_gateway_ejections_total", {{"replica", a}}) == 0);
    }
    CHECK(gw->RoutableReplicas() == 3);
    CHECK(gw->metrics().Value("chaosdrill_gateway_retries_total") == 0);  // no time left
  }
  // Patient clients are served.
  CHECK(Infer(*stub, GoldenInput(), true, 5000).ok());
}

TEST_CASE("a client's cancellation cancels the try in flight on the replica", "[reference]") {
  ReplicaOptions ro;
  ro.slow_delay_ms = 5000;
  ro.degrade = "slow";
  auto replica = Replica::Start(ro);
  REQUIRE(replica.ok());
  REQUIRE((*replica)->WaitReady(20000));
  const std::string address = (*replica)->address();
  GatewayOptions options = FastGateway({address});
  options.deep_probe = false;
  options.per_try_timeout_ms = 8000;
  options.overall_timeout_ms = 10000;
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(1, 20000));
  Gateway& g = **gateway;
  auto stub = Connect(g.address());
  auto wait_for = [&](const std::function<bool()>& pred, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!pred() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    return pred();
  };
  for (int round = 1; round <= 3; ++round) {
    INFO("round " << round);
    grpc::ClientContext ctx;
    inference::ModelInferRequest req =
        MakeInferRequest("tiny-mlp", TensorSpec{"INPUT0", "FP32", {}}, GoldenInput(), true);
    inference::ModelInferResponse resp;
    grpc::Status status;
    std::thread client([&] { status = stub->ModelInfer(&ctx, req, &resp); });
    const bool in_flight = wait_for(
        [&] {
          return g.metrics().Value("chaosdrill_gateway_replica_outstanding",
                                   {{"replica", address}}) == 1;
        },
        absl::Seconds(5));
    ctx.TryCancel();
    const absl::Time cancelled = absl::Now();
    client.join();
    // Without propagation the try would hold on until the replica answered (5 s).
    const bool try_cancelled = wait_for(
        [&] {
          return g.metrics().Value("chaosdrill_gateway_replica_requests_total",
                                   {{"replica", address}, {"code", "CANCELLED"}}) == round;
        },
        absl::Seconds(3));
    const absl::Duration took = absl::Now() - cancelled;
    WARN("round " << round << ": the try ended " << absl::FormatDuration(took)
                  << " after the client cancelled");
    CHECK(in_flight);
    CHECK(status.error_code() == grpc::StatusCode::CANCELLED);
    CHECK(try_cancelled);
    CHECK(g.metrics().Value("chaosdrill_gateway_replica_outstanding", {{"replica", address}}) == 0);
  }
  // Cancellations are not replica failures.
  CHECK(g.metrics().Value("chaosdrill_gateway_ejections_total", {{"replica", address}}) == 0);
  CHECK(g.RoutableReplicas() == 1);
}

TEST_CASE("gateway /metrics endpoint serves parseable Prometheus text", "[reference]") {
  InProcessReplicas r(1);
  auto gateway = Gateway::Start(FastGateway(r.addresses));
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(1, 20000));
  auto stub = Connect((*gateway)->address());
  REQUIRE(Infer(*stub, GoldenInput()).ok());
  const std::string response = HttpGet((*gateway)->metrics_address(), "/metrics");
  REQUIRE(response.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
  const std::string body = response.substr(response.find("\r\n\r\n") + 4);
  const std::regex sample(
      R"re([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? [-+0-9.eEInfNa]+)re");
  int samples = 0;
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') {
      CHECK((line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0));
      continue;
    }
    INFO(std::string(line));
    CHECK(std::regex_match(std::string(line), sample));
    ++samples;
  }
  CHECK(samples > 5);
  CHECK(body.find("chaosdrill_gateway_requests_total{method=\"ModelInfer\"} 1") !=
        std::string::npos);
  CHECK(body.find("chaosdrill_gateway_routable_replicas 1") != std::string::npos);
  CHECK(HttpGet((*gateway)->metrics_address(), "/other").rfind("HTTP/1.0 404", 0) == 0);
}

TEST_CASE("gateway hosts the session service and counts its answers", "[reference]") {
  // A sentinel address nothing listens on: the service connects lazily, so the gateway
  // starts, and an Append fails UNAVAILABLE (never a false ack) and is counted.
  InProcessReplicas r(1);
  GatewayOptions options = FastGateway(r.addresses);
  options.store_sentinels = {"127.0.0.1:1"};
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  auto stub = chaosdrill::reference::v1::SessionService::NewStub(
      grpc::CreateChannel((*gateway)->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  chaosdrill::reference::v1::AppendRequest req;
  req.set_session("s1");
  req.set_seq(1);
  req.set_payload("x");
  chaosdrill::reference::v1::AppendResponse resp;
  grpc::Status s = stub->Append(&ctx, req, &resp);
  CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK((*gateway)->metrics().Value(
            "chaosdrill_gateway_session_requests_total",
            {{"method", "Append"}, {"code", "UNAVAILABLE"}, {"replication", "async"}}) == 1);
}

}  // namespace
}  // namespace chaosdrill::reference
