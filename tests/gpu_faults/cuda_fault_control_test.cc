#include "gpu_faults/cuda_fault_control.h"

#include <catch2/catch.hpp>

namespace chaosdrill::gpu {
namespace {

TEST_CASE("cuda fault control round-trips through its text format", "[gpu]") {
  CudaFaultControl control;
  control.calls_mask = (1u << static_cast<int>(CudaCall::kMalloc)) |
                       (1u << static_cast<int>(CudaCall::kLaunchKernel));
  control.error = 719;
  control.probability = 0.125;
  control.seed = 42;
  control.owner = "abc123";
  std::string error;
  std::optional<CudaFaultControl> parsed =
      ParseCudaFaultControl(FormatCudaFaultControl(control), &error);
  REQUIRE(parsed.has_value());
  CHECK(parsed->calls_mask == control.calls_mask);
  CHECK(parsed->error == 719);
  CHECK(parsed->probability == 0.125);
  CHECK(parsed->seed == 42);
  CHECK(parsed->owner == "abc123");
  CHECK(parsed->Matches(CudaCall::kMalloc));
  CHECK_FALSE(parsed->Matches(CudaCall::kMemcpy));
}

TEST_CASE("cuda fault control accepts error names and comments", "[gpu]") {
  std::string error;
  auto parsed = ParseCudaFaultControl(
      "# hello\ncalls = cudaMemcpy, cudaMemcpyAsync\nerror=cudaErrorLaunchFailure # 719\n", &error);
  REQUIRE(parsed.has_value());
  CHECK(parsed->error == 719);
  CHECK(parsed->probability == 1.0);
  CHECK(parsed->Matches(CudaCall::kMemcpy));
  CHECK(parsed->Matches(CudaCall::kMemcpyAsync));
  CHECK_FALSE(parsed->Matches(CudaCall::kMalloc));
}

TEST_CASE("cuda fault control rejects bad files naming the line", "[gpu]") {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"error=2\n", "no calls= line"},
      {"calls=cudaFree\n", "line 1: unknown call \"cudaFree\""},
      {"calls=\n", "line 1: calls is empty"},
      {"calls=cudaMalloc\nerror=cudaErrorNope\n", "line 2: unknown error \"cudaErrorNope\""},
      {"calls=cudaMalloc\nprobability=1.5\n", "line 2: probability must be a number in [0, 1]"},
      {"calls=cudaMalloc\nprobability=abc\n", "line 2: probability must be a number in [0, 1]"},
      {"calls=cudaMalloc\nprobability=nan\n", "line 2: probability must be a number in [0, 1]"},
      {"calls=cudaMalloc\nseed=-1\n", "line 2: seed must be a non-negative integer"},
      {"calls=cudaMalloc\ncolour=blue\n", "line 2: unknown key \"colour\""},
      {"calls=cudaMalloc\njunk\n", "line 2: expected key=value"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    std::string error;
    CHECK_FALSE(ParseCudaFaultControl(c.text, &error).has_value());
    CHECK(error.find(c.message) != std::string::npos);
  }
}

TEST_CASE("cuda error names map to the runtime's values", "[gpu]") {
  CHECK(CudaErrorFromName("cudaErrorMemoryAllocation") == 2);
  CHECK(CudaErrorFromName("cudaErrorIllegalAddress") == 700);
  CHECK(CudaErrorFromName("719") == 719);
  CHECK_FALSE(CudaErrorFromName("0").has_value());  // success is not an error
  CHECK_FALSE(CudaErrorFromName("-2").has_value());
  CHECK_FALSE(CudaErrorFromName("cudaSuccess").has_value());
  CHECK(CudaErrorName(2) == "cudaErrorMemoryAllocation");
  CHECK(CudaErrorName(4242) == "4242");
  CHECK(CudaCallFromName("cudaLaunchKernel") == CudaCall::kLaunchKernel);
  CHECK_FALSE(CudaCallFromName("cudaLaunch").has_value());
}

}  // namespace
}  // namespace chaosdrill::gpu
