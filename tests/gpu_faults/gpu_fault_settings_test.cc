// Parameter validation of every gpu.* kind, fully without a device: one case per invalid
// spec, asserting the code and the message.
#include "gpu_faults/gpu_fault_settings.h"

#include <catch2/catch.hpp>

namespace chaosdrill::injector {
namespace {

FaultSpec Spec(const std::string& kind, std::map<std::string, std::string> params) {
  return FaultSpec{.kind = kind, .params = std::move(params)};
}

struct BadCase {
  std::map<std::string, std::string> params;
  const char* message;
};

template <typename Parse>
void ExpectAllInvalid(const std::string& kind, const std::vector<BadCase>& cases, Parse parse) {
  for (const BadCase& c : cases) {
    INFO(c.message);
    auto result = parse(Spec(kind, c.params));
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(result.status().message()), Catch::Contains(c.message));
  }
}

TEST_CASE("memory pressure settings: size, fraction or leave_free, with defaults", "[gpu]") {
  auto size = ParseMemoryPressureSettings(Spec("gpu.memory_pressure", {{"size", "8GiB"}}));
  REQUIRE(size.ok());
  CHECK(size->device == 0);
  CHECK(size->target.mode == gpu::MemoryTarget::Mode::kSize);
  CHECK(size->target.bytes == 8ull << 30);
  CHECK(size->chunk == 256ull << 20);
  CHECK(size->ramp == absl::ZeroDuration());

  auto fraction = ParseMemoryPressureSettings(
      Spec("gpu.memory_pressure",
           {{"fraction", "90%"}, {"device", "3"}, {"ramp", "5s"}, {"chunk", "64MiB"}}));
  REQUIRE(fraction.ok());
  CHECK(fraction->device == 3);
  CHECK(fraction->target.mode == gpu::MemoryTarget::Mode::kFraction);
  CHECK(fraction->target.fraction == Approx(0.9));
  CHECK(fraction->ramp == absl::Seconds(5));
  CHECK(fraction->chunk == 64ull << 20);

  auto leave = ParseMemoryPressureSettings(Spec("gpu.memory_pressure", {{"leave_free", "0"}}));
  REQUIRE(leave.ok());
  CHECK(leave->target.mode == gpu::MemoryTarget::Mode::kLeaveFree);
  CHECK(leave->target.bytes == 0);
}

TEST_CASE("memory pressure settings reject invalid specs", "[gpu]") {
  ExpectAllInvalid(
      "gpu.memory_pressure",
      {
          {{}, "give exactly one of size, fraction, leave_free (found 0)"},
          {{{"size", "1GiB"}, {"fraction", "0.5"}}, "exactly one of size, fraction, leave_free"},
          {{{"size", "1GiB"}, {"leave_free", "1GiB"}}, "(found 2)"},
          {{{"size", "1GiB"}, {"fraction", "0.5"}, {"leave_free", "1GiB"}}, "(found 3)"},
          {{{"size", "0"}}, "parameter size: must be more than 0 bytes"},
          {{{"size", "lots"}}, "parameter size:"},
          {{{"size", "-1GiB"}}, "parameter size:"},
          {{{"fraction", "0"}}, "parameter fraction: must be in (0, 1)"},
          {{{"fraction", "1"}}, "parameter fraction: must be in (0, 1)"},
          {{{"fraction", "100%"}}, "parameter fraction: must be in (0, 1)"},
          {{{"fraction", "1.5"}}, "parameter fraction:"},
          {{{"fraction", "-0.5"}}, "parameter fraction:"},
          {{{"fraction", "half"}}, "parameter fraction:"},
          {{{"leave_free", "1 potato"}}, "parameter leave_free:"},
          {{{"size", "1GiB"}, {"device", "-1"}}, "parameter device:"},
          {{{"size", "1GiB"}, {"device", "64"}}, "parameter device: expected an integer in 0..63"},
          {{{"size", "1GiB"}, {"device", "gpu0"}}, "parameter device:"},
          {{{"size", "1GiB"}, {"chunk", "1MiB"}},
           "parameter chunk: must be between 2MiB and 64GiB"},
          {{{"size", "1GiB"}, {"chunk", "65GiB"}}, "parameter chunk: must be between"},
          {{{"size", "1GiB"}, {"ramp", "soon"}}, "parameter ramp:"},
          {{{"size", "1GiB"}, {"ramp", "2h"}}, "parameter ramp: must be at most 1h"},
          {{{"size", "1GiB"}, {"colour", "red"}}, "unknown parameter \"colour\""},
      },
      ParseMemoryPressureSettings);
}

TEST_CASE("compute burn settings: defaults and bounds", "[gpu]") {
  auto s = ParseComputeBurnSettings(Spec("gpu.compute_burn", {}));
  REQUIRE(s.ok());
  CHECK(s->sm_fraction == 1.0);
  CHECK(s->duty_cycle == 1.0);
  CHECK(s->period == absl::Milliseconds(100));
  auto half = ParseComputeBurnSettings(
      Spec("gpu.compute_burn", {{"sm_fraction", "50%"}, {"duty_cycle", "0.25"}}));
  REQUIRE(half.ok());
  CHECK(half->sm_fraction == Approx(0.5));
  CHECK(half->duty_cycle == Approx(0.25));
  ExpectAllInvalid("gpu.compute_burn",
                   {
                       {{{"sm_fraction", "0"}}, "parameter sm_fraction: must be in (0, 1]"},
                       {{{"sm_fraction", "1.01"}}, "parameter sm_fraction:"},
                       {{{"duty_cycle", "0%"}}, "parameter duty_cycle: must be in (0, 1]"},
                       {{{"duty_cycle", "x"}}, "parameter duty_cycle:"},
                       {{{"period", "0"}}, "parameter period: must be between 1ms and 10s"},
                       {{{"period", "11s"}}, "parameter period: must be between 1ms and 10s"},
                       {{{"device", "99"}}, "parameter device:"},
                       {{{"size", "1GiB"}}, "unknown parameter \"size\""},
                   },
                   ParseComputeBurnSettings);
}

TEST_CASE("cuda errors settings: calls, error names and probability", "[gpu]") {
  auto s =
      ParseCudaErrorsSettings(Spec("gpu.cuda_errors", {{"control", "/run/x.ctl"},
                                                       {"calls", "cudaMalloc, cudaLaunchKernel"},
                                                       {"error", "cudaErrorLaunchFailure"},
                                                       {"probability", "10%"}}));
  REQUIRE(s.ok());
  CHECK(s->control_path == "/run/x.ctl");
  CHECK(s->control.Matches(gpu::CudaCall::kMalloc));
  CHECK(s->control.Matches(gpu::CudaCall::kLaunchKernel));
  CHECK_FALSE(s->control.Matches(gpu::CudaCall::kMemcpy));
  CHECK(s->control.error == 719);
  CHECK(s->control.probability == Approx(0.1));
  auto defaults = ParseCudaErrorsSettings(Spec("gpu.cuda_errors", {{"control", "/run/x"}}));
  REQUIRE(defaults.ok());
  CHECK(defaults->control.error == 2);
  CHECK(defaults->control.probability == 1.0);
  CHECK(defaults->control.Matches(gpu::CudaCall::kMalloc));
  ExpectAllInvalid(
      "gpu.cuda_errors",
      {
          {{}, "parameter control: is required"},
          {{{"control", "relative/x"}}, "parameter control: must be an absolute path"},
          {{{"control", "/run/"}}, "parameter control: names a directory"},
          {{{"control", "/x"}, {"calls", "cudaFree"}},
           "parameter calls: unknown call \"cudaFree\""},
          {{{"control", "/x"}, {"error", "cudaErrorBanana"}},
           "parameter error: unknown error \"cudaErrorBanana\""},
          {{{"control", "/x"}, {"error", "0"}}, "parameter error: unknown error \"0\""},
          {{{"control", "/x"}, {"probability", "1.5"}}, "parameter probability:"},
          {{{"control", "/x"}, {"seed", "-3"}}, "parameter seed:"},
      },
      ParseCudaErrorsSettings);
}

TEST_CASE("xid settings: default texts, pci format and counts", "[gpu]") {
  auto s = ParseXidSettings(Spec("gpu.xid", {{"xid", "79"}}));
  REQUIRE(s.ok());
  CHECK(s->message == "GPU has fallen off the bus.");
  CHECK_FALSE(s->pci.has_value());
  CHECK(s->count == 1);
  auto custom = ParseXidSettings(
      Spec("gpu.xid",
           {{"xid", "999"}, {"message", "custom text"}, {"pci", "0000:3B:00"}, {"count", "3"}}));
  REQUIRE(custom.ok());
  CHECK(custom->pci == "0000:3b:00");
  CHECK(custom->count == 3);
  ExpectAllInvalid(
      "gpu.xid",
      {
          {{}, "parameter xid: is required"},
          {{{"xid", "0"}}, "parameter xid: expected an integer in 1..1000"},
          {{{"xid", "abc"}}, "parameter xid:"},
          {{{"xid", "999"}}, "parameter message: required for Xid 999"},
          {{{"xid", "79"}, {"message", "two\nlines"}}, "parameter message: must be one line"},
          {{{"xid", "79"}, {"pci", "3b:00.0"}}, "parameter pci: expected domain:bus:device"},
          {{{"xid", "79"}, {"count", "0"}}, "parameter count: expected an integer in 1..1000"},
          {{{"xid", "79"}, {"count", "1001"}}, "parameter count:"},
          {{{"xid", "79"}, {"interval", "1h"}}, "parameter interval: must be at most 10m"},
      },
      ParseXidSettings);
}

TEST_CASE("xid pci id is printed the way NVRM prints it", "[gpu]") {
  CHECK(XidPciFromBusId("0000:3B:00.0") == "0000:3b:00");
  CHECK(XidPciFromBusId("00000000:3B:00.0") == "0000:3b:00");
  CHECK(XidPciFromBusId("0001:C1:00.0") == "0001:c1:00");
}

}  // namespace
}  // namespace chaosdrill::injector
