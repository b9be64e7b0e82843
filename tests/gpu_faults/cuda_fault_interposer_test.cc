#include "gpu_faults/cuda_fault_interposer.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>

#include "tests/test_support.h"

namespace chaosdrill::gpu {
namespace {

// A recording fake runtime: every forwarded call succeeds and is counted.
int g_real_mallocs = 0;
int g_real_memcpys = 0;
int g_real_launches = 0;
char g_fake_memory[8];
int64_t g_now_ns = 0;

CudaRuntimeTable FakeTable() {
  g_real_mallocs = g_real_memcpys = g_real_launches = 0;
  CudaRuntimeTable t;
  t.malloc = [](void** p, size_t) {
    ++g_real_mallocs;
    *p = g_fake_memory;
    return 0;
  };
  t.memcpy = [](void*, const void*, size_t, int) {
    ++g_real_memcpys;
    return 0;
  };
  t.launch_kernel = [](const void*, Dim3, Dim3, void**, size_t, void*) {
    ++g_real_launches;
    return 0;
  };
  return t;
}

int64_t FakeNow() { return g_now_ns; }

std::string Control(const std::string& calls, double p, uint64_t seed, int error = 2) {
  CudaFaultControl c;
  for (size_t start = 0; start <= calls.size();) {
    size_t comma = calls.find(',', start);
    if (comma == std::string::npos) comma = calls.size();
    c.calls_mask |= 1u << static_cast<int>(*CudaCallFromName(calls.substr(start, comma - start)));
    start = comma + 1;
  }
  c.probability = p;
  c.seed = seed;
  c.error = error;
  return FormatCudaFaultControl(c);
}

// Replaces the file atomically, as the fault does (a new inode every time).
void WriteControl(const testing::TempDir& dir, const std::string& text) {
  std::string tmp = dir.Write("control.tmp", text);
  std::filesystem::rename(tmp, dir.path() + "/control");
}

TEST_CASE("interposer forwards everything while there is no control file", "[gpu]") {
  testing::TempDir dir;
  CudaFaultInterposer interposer(FakeTable(), {.control_path = dir.path() + "/control"}, &FakeNow);
  void* p = nullptr;
  for (int i = 0; i < 100; ++i) REQUIRE(interposer.Malloc(&p, 16) == 0);
  CHECK(p == g_fake_memory);
  CHECK(g_real_mallocs == 100);
  CHECK(interposer.stats().injected[0] == 0);
  CHECK(interposer.stats().calls[0] == 100);
}

TEST_CASE("interposer fails matching calls at the control file's probability", "[gpu]") {
  testing::TempDir dir;
  WriteControl(dir, Control("cudaMalloc", 0.1, /*seed=*/7));
  CudaFaultInterposer interposer(FakeTable(), {.control_path = dir.path() + "/control"}, &FakeNow);
  constexpr int kCalls = 10000;
  int failures = 0;
  for (int i = 0; i < kCalls; ++i) {
    void* p = g_fake_memory;
    int err = interposer.Malloc(&p, 16);
    if (err != 0) {
      CHECK(err == 2);
      CHECK(p == nullptr);
      ++failures;
    }
  }
  // Binomial(10000, 0.1): mean 1000, sd 30; +-6 sd.
  CHECK(failures > 820);
  CHECK(failures < 1180);
  CHECK(g_real_mallocs == kCalls - failures);
  CHECK(interposer.stats().injected[0] == static_cast<uint64_t>(failures));
  // Calls not named in the file are never failed.
  for (int i = 0; i < 1000; ++i) REQUIRE(interposer.Memcpy(nullptr, nullptr, 0, 1) == 0);
  CHECK(g_real_memcpys == 1000);
}

TEST_CASE("interposer with the same seed fails the same calls", "[gpu]") {
  testing::TempDir dir;
  WriteControl(dir, Control("cudaLaunchKernel", 0.3, /*seed=*/99, /*error=*/719));
  auto run = [&] {
    CudaFaultInterposer interposer(FakeTable(), {.control_path = dir.path() + "/control"},
                                   &FakeNow);
    std::string pattern;
    for (int i = 0; i < 200; ++i) {
      int err = interposer.LaunchKernel(nullptr, {}, {}, nullptr, 0, nullptr);
      pattern += err == 0 ? '.' : 'x';
      if (err != 0) REQUIRE(err == 719);
    }
    return pattern;
  };
  std::string first = run();
  CHECK(first == run());
  CHECK(first.find('x') != std::string::npos);
  CHECK(first.find('.') != std::string::npos);
}

TEST_CASE("interposer switches on and off with the control file within the recheck delay",
          "[gpu]") {
  testing::TempDir dir;
  g_now_ns = 0;
  CudaFaultInterposer interposer(
      FakeTable(), {.control_path = dir.path() + "/control", .recheck_ns = 100'000'000}, &FakeNow);
  void* p = nullptr;
  REQUIRE(interposer.Malloc(&p, 1) == 0);  // first call looks: no file
  WriteControl(dir, Control("cudaMalloc", 1.0, 1));
  g_now_ns = 50'000'000;  // not yet time to look again
  CHECK(interposer.Malloc(&p, 1) == 0);
  g_now_ns = 100'000'000;
  CHECK(interposer.Malloc(&p, 1) == 2);
  CHECK(interposer.Malloc(&p, 1) == 2);
  std::filesystem::remove(dir.path() + "/control");
  g_now_ns = 150'000'000;
  CHECK(interposer.Malloc(&p, 1) == 2);  // stale for at most the recheck delay
  g_now_ns = 200'000'000;
  CHECK(interposer.Malloc(&p, 1) == 0);
  // A changed file is re-read: a different error, on another call.
  WriteControl(dir, Control("cudaMemcpy", 1.0, 1, 700));
  g_now_ns = 300'000'000;
  CHECK(interposer.Malloc(&p, 1) == 0);
  CHECK(interposer.Memcpy(nullptr, nullptr, 0, 1) == 700);
  CHECK(interposer.stats().control_reads == 2);
}

TEST_CASE("interposer ignores a malformed control file and says why", "[gpu]") {
  testing::TempDir dir;
  WriteControl(dir, "calls=cudaMalloc\nprobability=2\n");
  CudaFaultInterposer interposer(FakeTable(), {.control_path = dir.path() + "/control"}, &FakeNow);
  void* p = nullptr;
  CHECK(interposer.Malloc(&p, 1) == 0);
  CHECK(interposer.stats().last_control_error.find("probability") != std::string::npos);
}

TEST_CASE("interposer with probability 0 or no control path never fails", "[gpu]") {
  testing::TempDir dir;
  WriteControl(dir, Control("cudaMalloc", 0.0, 3));
  CudaFaultInterposer zero(FakeTable(), {.control_path = dir.path() + "/control"}, &FakeNow);
  CudaFaultInterposer none(FakeTable(), {}, &FakeNow);
  void* p = nullptr;
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(zero.Malloc(&p, 1) == 0);
    REQUIRE(none.Malloc(&p, 1) == 0);
  }
}

TEST_CASE("interposer returns cudaErrorUnknown for a call the runtime lacks", "[gpu]") {
  CudaFaultInterposer interposer(CudaRuntimeTable{}, {}, &FakeNow);
  CHECK(interposer.MemcpyAsync(nullptr, nullptr, 0, 1, nullptr) == 999);
}

}  // namespace
}  // namespace chaosdrill::gpu
