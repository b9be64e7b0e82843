// The CUDA tiny-mlp (reference/tiny_mlp_cuda.h): without a device it refuses with the
// runtime's reason; on a device it matches the CPU model and, under gpu.memory_pressure,
// fails inference with ResourceExhausted while the model object (the serving process)
// stays fine, and recovers on revert.
#include "reference/tiny_mlp_cuda.h"

#include <catch2/catch.hpp>

#include "gpu_faults/gpu_helper_client.h"
#include "injector/fault_registry.h"
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
  if (testing::SkipUnless(DeviceVisible(&why), why)) return;
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

}  // namespace
}  // namespace chaosdrill::reference
