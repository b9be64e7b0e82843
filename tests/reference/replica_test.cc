// The replica over real gRPC on loopback: readiness gated by warm-up, golden answers in
// both tensor encodings, errors for bad requests, degraded modes set at start and through
// the admin socket.
#include "reference/replica.h"

#include <catch2/catch.hpp>
#include <chrono>

#include "reference/admin_socket.h"
#include "reference/tiny_mlp.h"
#include "tests/reference/oip_test_util.h"
#include "tests/test_support.h"

namespace chaosdrill::reference {
namespace {

using testing::Connect;
using testing::Infer;
using testing::IsReady;

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

}  // namespace
}  // namespace chaosdrill::reference
