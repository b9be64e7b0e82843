// The replica over real gRPC on loopback: readiness gated by warm-up, golden answers in
// both tensor encodings, errors for bad requests, degraded modes set at start and through
// the admin socket, the backlog a paused replica answers after SIGCONT and the queue bound
// beyond which it refuses.
#include "reference/replica.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "reference/admin_socket.h"
#include "reference/model_codec.h"
#include "reference/tiny_mlp.h"
#include "tests/reference/oip_test_util.h"
#include "tests/test_support.h"

namespace chaosdrill::reference {
namespace {

using testing::Connect;
using testing::Infer;
using testing::IsReady;
using testing::ReplicaProcess;

std::vector<float> Golden(bool input) {
  auto m = TinyMlp::Create({});
  return input ? (*m)->golden_input() : (*m)->golden_output();
}

TEST_CASE("replica is not ready until its warm-up inference passed", "[reference]") {
  ReplicaOptions options;
  options.warmup_delay_ms = 1500;  // a slow model load
  auto replica = Replica::Start(options);
  REQUIRE(replica.ok());
  auto stub = Connect((*replica)->address());
  // Live at once, not ready, and inference refused while warming up.
  grpc::ClientContext ctx;
  inference::ServerLiveResponse live;
  REQUIRE(stub->ServerLive(&ctx, {}, &live).ok());
  CHECK(live.live());
  CHECK_FALSE(IsReady(*stub));
  CHECK(Infer(*stub, Golden(true)).status().code() == absl::StatusCode::kUnavailable);
  REQUIRE((*replica)->WaitReady(20000));
  CHECK(IsReady(*stub));
}

TEST_CASE("replica answers the golden input with the golden output, raw or typed", "[reference]") {
  auto replica = Replica::Start({});
  REQUIRE(replica.ok());
  REQUIRE((*replica)->WaitReady(20000));
  auto stub = Connect((*replica)->address());
  for (bool raw : {true, false}) {
    auto out = Infer(*stub, Golden(true), raw);
    REQUIRE(out.ok());
    CHECK(MatchesGolden(*out, Golden(false)));
  }
  grpc::ClientContext ctx;
  inference::ModelMetadataRequest req;
  req.set_name("tiny-mlp");
  inference::ModelMetadataResponse md;
  REQUIRE(stub->ModelMetadata(&ctx, req, &md).ok());
  CHECK(md.inputs(0).name() == "INPUT0");
  CHECK(md.inputs(0).datatype() == "FP32");
  CHECK(md.inputs(0).shape(1) == 256);
  CHECK(md.outputs(0).shape(1) == TinyMlp::kOutputWidth);
  CHECK(Infer(*stub, std::vector<float>(3, 0.f)).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("replica degraded modes: errors, wrong answers, slow", "[reference]") {
  ReplicaOptions options;
  options.degrade = "errors";
  options.slow_delay_ms = 300;
  auto replica = Replica::Start(options);
  REQUIRE(replica.ok());
  REQUIRE((*replica)->WaitReady(20000));
  auto stub = Connect((*replica)->address());
  CHECK(IsReady(*stub));  // still claims to be ready
  CHECK(Infer(*stub, Golden(true)).status().code() == absl::StatusCode::kUnavailable);

  REQUIRE((*replica)->SetDegrade("wrong-answers").ok());
  auto wrong = Infer(*stub, Golden(true));
  REQUIRE(wrong.ok());
  CHECK_FALSE(MatchesGolden(*wrong, Golden(false)));

  REQUIRE((*replica)->SetDegrade("slow").ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto slow = Infer(*stub, Golden(true), true, 5000);
  REQUIRE(slow.ok());
  CHECK(MatchesGolden(*slow, Golden(false)));
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(300));
  CHECK(Infer(*stub, Golden(true), true, 50).status().code() ==
        absl::StatusCode::kDeadlineExceeded);

  CHECK((*replica)->SetDegrade("bogus").code() == absl::StatusCode::kInvalidArgument);
  CHECK(Replica::Start({.degrade = "bogus"}).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("replica degrade mode switches through the admin socket", "[reference]") {
  chaosdrill::testing::TempDir dir;
  ReplicaOptions options;
  options.admin_socket = dir.path() + "/admin.sock";
  auto replica = Replica::Start(options);
  REQUIRE(replica.ok());
  REQUIRE((*replica)->WaitReady(20000));
  auto stub = Connect((*replica)->address());

  auto status = AdminRequest(options.admin_socket, "status");
  REQUIRE(status.ok());
  CHECK(status->find("ok ready=1 degrade=none") == 0);
  CHECK(*AdminRequest(options.admin_socket, "degrade wrong-answers") == "ok degrade=wrong-answers");
  auto out = Infer(*stub, Golden(true));
  REQUIRE(out.ok());
  CHECK_FALSE(MatchesGolden(*out, Golden(false)));
  CHECK(AdminRequest(options.admin_socket, "degrade sideways")->find("error unknown degrade") == 0);
  CHECK(AdminRequest(options.admin_socket, "reboot")->find("error unknown command") == 0);
  CHECK(*AdminRequest(options.admin_socket, "degrade none") == "ok degrade=none");
  out = Infer(*stub, Golden(true));
  REQUIRE(out.ok());
  CHECK(MatchesGolden(*out, Golden(false)));

  (*replica)->Shutdown();
  CHECK(AdminRequest(options.admin_socket, "status").status().code() ==
        absl::StatusCode::kUnavailable);  // socket removed with the replica
}

TEST_CASE("replica on --device cuda serves the golden output or says why it cannot",
          "[reference][cuda]") {
  ReplicaOptions options;
  options.device = "cuda";
  auto replica = Replica::Start(options);
  if (!replica.ok()) {
    // No toolkit in this build (Unimplemented) or no device (FailedPrecondition).
    INFO(replica.status().ToString());
    CHECK((replica.status().code() == absl::StatusCode::kUnimplemented ||
           replica.status().code() == absl::StatusCode::kFailedPrecondition));
    CHECK_FALSE(replica.status().message().empty());
    chaosdrill::testing::SkipUnless(false, "no CUDA device: " + replica.status().ToString());
    return;
  }
  REQUIRE((*replica)->WaitReady(60000));
  auto stub = Connect((*replica)->address());
  auto out = Infer(*stub, Golden(true));
  REQUIRE(out.ok());
  CHECK(MatchesGolden(*out, Golden(false)));
}

// `n` golden inferences sent at once with the callback API (each with a `deadline_ms`
// deadline); `between` runs once they are all sent. Waits (bounded) for every answer and
// returns the count per code, and one message per non-OK code.
struct Burst {
  std::map<grpc::StatusCode, int> codes;
  std::map<grpc::StatusCode, std::string> messages;
  int answered = 0;
};
Burst SendBurst(const std::string& address, int n, int deadline_ms,
                const std::function<void()>& between) {
  auto stub = Connect(address);
  const inference::ModelInferRequest request =
      MakeInferRequest("tiny-mlp", TensorSpec{"INPUT0", "FP32", {}}, Golden(true), true);
  struct One {
    grpc::ClientContext context;
    inference::ModelInferResponse response;
  };
  std::vector<std::unique_ptr<One>> calls;
  absl::Mutex mu;
  Burst burst;
  for (int i = 0; i < n; ++i) {
    calls.push_back(std::make_unique<One>());
    One* c = calls.back().get();
    c->context.set_deadline(std::chrono::system_clock::now() +
                            std::chrono::milliseconds(deadline_ms));
    stub->async()->ModelInfer(&c->context, &request, &c->response, [&](grpc::Status s) {
      absl::MutexLock lock(&mu);
      ++burst.codes[s.error_code()];
      if (!s.ok()) burst.messages[s.error_code()] = s.error_message();
      ++burst.answered;
    });
  }
  between();
  absl::MutexLock lock(&mu);
  auto all = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return burst.answered == n; };
  // Every call has its deadline: this returns within deadline_ms (+ slack).
  mu.AwaitWithTimeout(absl::Condition(&all), absl::Milliseconds(deadline_ms + 5000));
  REQUIRE(burst.answered == n);
  return burst;
}

TEST_CASE("a paused replica answers its whole backlog after SIGCONT instead of refusing it",
          "[reference]") {
  // 200 inferences arrive while the replica is stopped (SIGSTOP: the kernel queues them on
  // the connection); after SIGCONT it must answer every one (4 workers, up to 256 queued),
  // not refuse those beyond a thread cap with RESOURCE_EXHAUSTED (what the sync gRPC
  // server with a 6-thread quota did: a 0.2 s pause of the only replica then became a 2 s
  // outage, the gateway ejecting it for the refusals).
  chaosdrill::testing::TempDir dir;
  auto proc = ReplicaProcess::Start({"--listen", "127.0.0.1:0"}, dir.path());
  REQUIRE(proc.ok());
  auto stub = Connect((*proc)->address());
  REQUIRE(Infer(*stub, Golden(true)).ok());  // connected and warm
  (*proc)->Signal(SIGSTOP);
  const auto t0 = std::chrono::steady_clock::now();
  Burst burst = SendBurst((*proc)->address(), 200, 10000, [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    (*proc)->Signal(SIGCONT);
  });
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("paused backlog: %d OK of 200 within %.0f ms of the SIGSTOP (300 ms pause)\n",
              burst.codes[grpc::StatusCode::OK], ms);
  for (const auto& [code, count] : burst.codes) {
    INFO("code " << code << ": " << count << " " << burst.messages[code]);
    CHECK(code == grpc::StatusCode::OK);
  }
  CHECK(burst.codes[grpc::StatusCode::OK] == 200);
}

TEST_CASE("beyond max_queue waiting inferences a replica refuses with RESOURCE_EXHAUSTED",
          "[reference]") {
  // One worker held 1 s by each inference (slow mode), a queue of 4: of 20 inferences sent
  // at once, the first runs, 4 wait, and the rest are refused at once with a message that
  // names the bound. The queued ones are answered in turn (1 s each: within 6 s).
  ReplicaOptions options;
  options.threads = 1;
  options.max_queue = 4;
  options.degrade = "slow";
  options.slow_delay_ms = 1000;
  auto replica = Replica::Start(options);
  REQUIRE(replica.ok());
  REQUIRE((*replica)->WaitReady(20000));
  Burst burst = SendBurst((*replica)->address(), 20, 10000, [] {});
  const int ok = burst.codes[grpc::StatusCode::OK];
  const int refused = burst.codes[grpc::StatusCode::RESOURCE_EXHAUSTED];
  std::printf("max_queue 4, 1 worker, 20 at once: %d OK, %d refused (%s)\n", ok, refused,
              burst.messages[grpc::StatusCode::RESOURCE_EXHAUSTED].c_str());
  CHECK(ok + refused == 20);
  // 1 running + 4 queued; one more each time a slot frees while the burst still arrives.
  CHECK(ok >= 5);
  CHECK(refused >= 10);
  CHECK_THAT(burst.messages[grpc::StatusCode::RESOURCE_EXHAUSTED], Catch::Contains("max_queue 4"));
  CHECK(Replica::Start({.max_queue = 0}).status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace chaosdrill::reference
