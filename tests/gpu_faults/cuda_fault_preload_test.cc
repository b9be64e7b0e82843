// libchaosdrill_cuda_fault.so on a real dynamic link: a victim linked against a stand-in
// libcudart (fake_cudart.cc, symbols versioned like the real one) is started with
// LD_PRELOAD, and the test switches failures on and off through the control file while
// the victim keeps running.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>

#include "gpu_faults/cuda_fault_control.h"
#include "gpu_faults/helper_process.h"
#include "tests/test_support.h"

namespace chaosdrill::gpu {
namespace {

struct Answer {
  long calls = -1, failures = -1;
  int last_error = -1;
};

Answer Ask(HelperProcess& victim, long count) {
  REQUIRE(victim.WriteLine("malloc " + std::to_string(count) + " 1024"));
  std::string line, error;
  REQUIRE(victim.ReadLine(30'000, &line, &error));
  Answer a;
  REQUIRE(std::sscanf(line.c_str(), "calls=%ld failures=%ld last_error=%d", &a.calls, &a.failures,
                      &a.last_error) == 3);
  return a;
}

void WriteControl(const testing::TempDir& dir, double p) {
  CudaFaultControl c;
  c.calls_mask = 1u << static_cast<int>(CudaCall::kMalloc);
  c.probability = p;
  c.error = 2;
  std::string tmp = dir.Write("control.tmp", FormatCudaFaultControl(c));
  std::filesystem::rename(tmp, dir.path() + "/control");
}

std::unique_ptr<HelperProcess> StartVictim(const testing::TempDir& dir, bool preload) {
  SpawnOptions options{.argv = {FAKE_CUDA_VICTIM},
                       .env = {"CHAOSDRILL_CUDA_FAULT_CONTROL=" + dir.path() + "/control",
                               "CHAOSDRILL_CUDA_FAULT_RECHECK_MS=0"}};
  if (preload) options.env.push_back(std::string("LD_PRELOAD=") + CUDA_FAULT_PRELOAD);
  std::string error;
  auto victim = HelperProcess::Spawn(options, &error);
  INFO(error);
  REQUIRE(victim != nullptr);
  return victim;
}

TEST_CASE("preloaded interposer fails a victim's cudaMalloc at run time and stops on revert",
          "[gpu]") {
  testing::TempDir dir;
  auto victim = StartVictim(dir, /*preload=*/true);
  // Off: the fake runtime answers every call.
  Answer off = Ask(*victim, 500);
  CHECK(off.failures == 0);
  // On at p = 1: every call fails with the chosen error.
  WriteControl(dir, 1.0);
  Answer all = Ask(*victim, 200);
  CHECK(all.failures == 200);
  CHECK(all.last_error == 2);
  // p = 0.1 with a fresh seed: Binomial(4000, 0.1), mean 400, sd 19; +-6 sd.
  WriteControl(dir, 0.1);
  Answer some = Ask(*victim, 4000);
  CHECK(some.failures > 286);
  CHECK(some.failures < 514);
  // Removed: back to zero without restarting the victim.
  std::filesystem::remove(dir.path() + "/control");
  CHECK(Ask(*victim, 500).failures == 0);
  REQUIRE(victim->WriteLine("quit"));
}

TEST_CASE("without LD_PRELOAD the control file changes nothing", "[gpu]") {
  testing::TempDir dir;
  WriteControl(dir, 1.0);
  auto victim = StartVictim(dir, /*preload=*/false);
  CHECK(Ask(*victim, 100).failures == 0);
}

}  // namespace
}  // namespace chaosdrill::gpu

namespace chaosdrill::gpu {
namespace {

// The same over the real libcudart.so.13 of the toolkit: without a device its cudaMalloc
// fails on its own (no driver), which proves the call reached the real runtime through
// dlsym(RTLD_NEXT) past the interposer; with the control file on, the interposer answers
// first with the chosen error.
TEST_CASE("preloaded interposer sits in front of the real libcudart", "[gpu]") {
  testing::TempDir dir;
  SpawnOptions options{.argv = {REAL_CUDA_VICTIM},
                       .env = {"CHAOSDRILL_CUDA_FAULT_CONTROL=" + dir.path() + "/control",
                               "CHAOSDRILL_CUDA_FAULT_RECHECK_MS=0",
                               std::string("LD_PRELOAD=") + CUDA_FAULT_PRELOAD}};
  std::string error;
  auto victim = HelperProcess::Spawn(options, &error);
  INFO(error);
  REQUIRE(victim != nullptr);
  Answer real = Ask(*victim, 1);
  WriteControl(dir, 1.0);
  Answer injected = Ask(*victim, 3);
  CHECK(injected.failures == 3);
  CHECK(injected.last_error == 2);
  std::filesystem::remove(dir.path() + "/control");
  Answer after = Ask(*victim, 1);
  CHECK(after.last_error == real.last_error);  // the runtime's own answer again
  REQUIRE(victim->WriteLine("quit"));
}

}  // namespace
}  // namespace chaosdrill::gpu
