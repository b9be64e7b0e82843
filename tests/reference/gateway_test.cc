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
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "chaosdrill/reference/v1/session.grpc.pb.h"
#include "reference/metrics.h"
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
  CHECK(ok >= 300);  // the load really ran (about 1200 on an idle box)
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
