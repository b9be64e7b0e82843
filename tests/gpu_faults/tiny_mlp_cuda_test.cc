// The CUDA tiny-mlp (reference/tiny_mlp_cuda.h): without a device it refuses with the
// runtime's reason; on a device it matches the CPU model and, under gpu.memory_pressure,
// fails inference with ResourceExhausted while the model object (the serving process)
// stays fine, and recovers on revert; and a whole CUDA-mode replica, over gRPC, answers
// RESOURCE_EXHAUSTED under pressure while ServerReady stays true.
#include "reference/tiny_mlp_cuda.h"

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>

#include "gpu_faults/gpu_helper_client.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "injector/fault_registry.h"
#include "reference/model_codec.h"
#include "reference/replica.h"
#include "reference/tiny_mlp.h"
#include "tests/test_support.h"

namespace chaosdrill::reference {
namespace {

bool DeviceVisible(std::string* why) {
  gpu::GpuError error;
  std::string helper = gpu::FindGpuHelper(&error);
  gpu::GpuInfo info;
  if (!helper.empty() && gpu::ProbeGpu(helper, 0, &info, &error)) return true;
  *why = error.message;
  return false;
}

TEST_CASE("cuda tiny-mlp without a device says why", "[gpu]") {
  std::string why;
  if (testing::SkipUnless(!DeviceVisible(&why), "a CUDA device is visible here")) return;
  absl::StatusOr<std::unique_ptr<Model>> model = CreateTinyMlpCuda({});
  REQUIRE_FALSE(model.ok());
  CHECK(model.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(model.status().message()),
             Catch::Contains("no CUDA device visible (cudaGetDeviceCount: "));
}

TEST_CASE("cuda tiny-mlp rejects a bad size before touching the device", "[gpu]") {
  absl::StatusOr<std::unique_ptr<Model>> model = CreateTinyMlpCuda({.width = 0});
  CHECK(model.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("cuda tiny-mlp fails inference under GPU memory pressure and recovers", "[gpu][cuda]") {
  std::string why;
  const bool visible = DeviceVisible(&why);  // before `why` is read for the message
  if (testing::SkipUnless(visible, why)) return;
  absl::StatusOr<std::unique_ptr<Model>> model = CreateTinyMlpCuda({});
  REQUIRE(model.ok());
  const Model& m = **model;
  absl::StatusOr<std::vector<float>> out = m.Infer(m.golden_input(), 1);
  REQUIRE(out.ok());
  CHECK(MatchesGolden(*out, m.golden_output()));
  // A batch whose workspace cannot fit once only 1 MiB is left free.
  std::vector<float> big(static_cast<size_t>(4096) * m.input_width(), 0.5f);
  injector::RegisterBuiltinFaults();
  auto factory = injector::FaultRegistry::Global().Find("gpu.memory_pressure");
  REQUIRE(factory.ok());
  auto fault =
      (*factory)->Create({.kind = "gpu.memory_pressure", .params = {{"leave_free", "1MiB"}}});
  REQUIRE(fault.ok());
  REQUIRE((*fault)->Inject().ok());
  absl::StatusOr<std::vector<float>> starved = m.Infer(big, 4096);
  CHECK(starved.status().code() == absl::StatusCode::kResourceExhausted);
  REQUIRE((*fault)->Revert().ok());
  CHECK(m.Infer(big, 4096).ok());
}

// ServerReady over the replica's gRPC port.
bool ServerReady(inference::GRPCInferenceService::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  inference::ServerReadyRequest req;
  inference::ServerReadyResponse resp;
  return stub.ServerReady(&ctx, req, &resp).ok() && resp.ready();
}

// A `batch` x width inference of `row` repeated, as a client would send it.
grpc::Status InferBatch(inference::GRPCInferenceService::Stub& stub, const std::vector<float>& row,
                        int64_t batch, inference::ModelInferResponse* resp) {
  std::vector<float> input;
  input.reserve(row.size() * static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) input.insert(input.end(), row.begin(), row.end());
  inference::ModelInferRequest req =
      MakeInferRequest("tiny-mlp", TensorSpec{"INPUT0", "FP32", {}}, input, /*raw=*/true);
  req.mutable_inputs(0)->set_shape(0, batch);
  req.mutable_inputs(0)->set_shape(1, static_cast<int64_t>(row.size()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return stub.ModelInfer(&ctx, req, resp);
}

// The gray failure the gateway's deep probe must catch (DESIGN §6, issue 8): the serving
// process is up and says so, but every request that needs GPU memory fails.
TEST_CASE("a CUDA replica under gpu.memory_pressure fails inference, ServerReady stays true",
          "[gpu][cuda]") {
  std::string why;
  const bool visible = DeviceVisible(&why);  // before `why` is read for the message
  if (testing::SkipUnless(visible, why)) return;
  ReplicaOptions options;
  options.device = "cuda";
  absl::StatusOr<std::unique_ptr<Replica>> replica = Replica::Start(options);
  INFO(replica.status().ToString());
  REQUIRE(replica.ok());
  REQUIRE((*replica)->WaitReady(60'000));
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel((*replica)->address(), grpc::InsecureChannelCredentials()));
  auto cpu = TinyMlp::Create({});
  REQUIRE(cpu.ok());
  const std::vector<float>& row = (*cpu)->golden_input();
  // 2048 rows: a 2 MiB request (under gRPC's 4 MiB default) whose per-request device
  // workspace (about 4 MiB) cannot fit once only 1 MiB is left free.
  constexpr int64_t kBatch = 2048;
  inference::ModelInferResponse resp;
  grpc::Status healthy = InferBatch(*stub, row, kBatch, &resp);
  INFO(healthy.error_message());
  REQUIRE(healthy.ok());
  CHECK(ServerReady(*stub));

  injector::RegisterBuiltinFaults();
  auto factory = injector::FaultRegistry::Global().Find("gpu.memory_pressure");
  REQUIRE(factory.ok());
  auto fault =
      (*factory)->Create({.kind = "gpu.memory_pressure", .params = {{"leave_free", "1MiB"}}});
  REQUIRE(fault.ok());
  absl::Status injected = (*fault)->Inject();
  INFO(injected.ToString());
  REQUIRE(injected.ok());
  grpc::Status starved = InferBatch(*stub, row, kBatch, &resp);
  const bool ready_under_pressure = ServerReady(*stub);
  REQUIRE((*fault)->Revert().ok());
  std::printf("cuda replica under leave_free=1MiB: inference %s (%s), ServerReady %s\n",
              starved.ok() ? "ok" : "failed", starved.error_message().c_str(),
              ready_under_pressure ? "true" : "false");
  CHECK(starved.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(ready_under_pressure);  // the health check still says healthy
  // And it recovers once the memory is back.
  CHECK(InferBatch(*stub, row, kBatch, &resp).ok());
}

}  // namespace
}  // namespace chaosdrill::reference
