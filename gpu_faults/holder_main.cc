// chaosdrill-gpu-holder: the child process behind gpu.memory_pressure and gpu.compute_burn,
// and the separate-process observer the faults and the self-test measure with. Linked with
// the static CUDA runtime and libstdc++ so it needs nothing but the NVIDIA driver. It is
// never a shell; it talks JSON lines on stdout and reads commands on stdin, and exits when
// stdin reaches EOF (its parent is gone), besides being SIGKILLed on revert.
//
//   probe   --device N   one line: {"event":"probe", count, name, total, free, sm_count,
//                        pci_bus_id} or {"event":"error", code, message}; exit 0 / 2
//   hold    --device N --chunk BYTES --ramp-ms MS --tolerance BYTES
//           prints {"event":"context", free, total} once its CUDA context exists, reads
//           "target_free BYTES", cudaMallocs chunks until cudaMemGetInfo's free is within
//           tolerance of it (paced over the ramp), prints {"event":"ready", ...}, then holds
//           until killed or stdin closes. Out of memory: {"event":"error","code":"oom"}, exit 3
//   burn    --device N --sm-fraction F --duty-cycle D --period-us US
//           prints {"event":"ready", blocks, sm_count, threads} after the first spin kernel
//           finished, then spins D of every period on F of the SMs until killed
//   observe --device N   commands: "read" -> {"event":"read", free, total};
//           "wait_free_at_least BYTES TIMEOUT_MS" -> {"event":"reached"|"timeout", free,
//           elapsed_us} (polls cudaMemGetInfo every 200us)
#include <cuda_runtime_api.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gpu_faults/spin_kernel.h"

namespace chaosdrill::gpu {
namespace {

using nlohmann::json;

constexpr uint64_t kGranularity = 2ull << 20;  // cudaMalloc rounds to 2 MiB pages

void Emit(const json& j) {
  std::string line = j.dump() + "\n";
  fwrite(line.data(), 1, line.size(), stdout);
  fflush(stdout);
}

int Fail(const std::string& code, const std::string& message, int exit_code = 2) {
  Emit({{"event", "error"}, {"code", code}, {"message", message}});
  return exit_code;
}

std::string CudaText(const std::string& call, cudaError_t err) {
  return call + ": " + cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + ")";
}

int64_t NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

void SleepUs(int64_t us) {
  if (us <= 0) return;
  timespec ts{static_cast<time_t>(us / 1'000'000), static_cast<long>((us % 1'000'000) * 1000)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// True once stdin is at EOF (the parent closed it or died). Waits up to timeout_ms.
bool StdinClosed(int timeout_ms) {
  pollfd pfd{STDIN_FILENO, POLLIN, 0};
  if (poll(&pfd, 1, timeout_ms) <= 0) return false;
  char c;
  return read(STDIN_FILENO, &c, 1) <= 0;
}

bool ReadCommand(std::string* line) { return static_cast<bool>(std::getline(std::cin, *line)); }

struct Args {
  std::map<std::string, std::string> values;
  double Get(const std::string& name, double fallback) const {
    auto it = values.find(name);
    return it == values.end() ? fallback : std::strtod(it->second.c_str(), nullptr);
  }
};

// Selects the device; on failure prints the error line and returns false.
bool OpenDevice(int device, int* exit_code) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    *exit_code = Fail("no_device", std::string("no CUDA device visible (cudaGetDeviceCount: ") +
                                       cudaGetErrorString(err) + ")");
    return false;
  }
  if (count == 0) {
    *exit_code = Fail("no_device", "no CUDA device visible (cudaGetDeviceCount: 0 devices)");
    return false;
  }
  if (device < 0 || device >= count) {
    *exit_code = Fail("bad_device", "device " + std::to_string(device) + " not present (" +
                                        std::to_string(count) + " visible)");
    return false;
  }
  if ((err = cudaSetDevice(device)) != cudaSuccess ||
      (err = cudaFree(nullptr)) != cudaSuccess) {  // creates the context now
    *exit_code = Fail(err == cudaErrorMemoryAllocation ? "oom" : "cuda",
                      CudaText("creating a context on device " + std::to_string(device), err));
    return false;
  }
  return true;
}

int Probe(int device) {
  int exit_code = 0;
  if (!OpenDevice(device, &exit_code)) return exit_code;
  int count = 0;
  cudaGetDeviceCount(&count);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, device);
  char pci[32] = {};
  cudaDeviceGetPCIBusId(pci, sizeof(pci), device);
  size_t free = 0, total = 0;
  if (cudaError_t err = cudaMemGetInfo(&free, &total); err != cudaSuccess) {
    return Fail("cuda", CudaText("cudaMemGetInfo", err));
  }
  Emit({{"event", "probe"},
        {"count", count},
        {"device", device},
        {"name", prop.name},
        {"total", total},
        {"free", free},
        {"sm_count", prop.multiProcessorCount},
        {"pci_bus_id", pci}});
  return 0;
}

int Hold(int device, const Args& args) {
  int exit_code = 0;
  if (!OpenDevice(device, &exit_code)) return exit_code;
  const uint64_t chunk =
      std::max<uint64_t>(kGranularity, static_cast<uint64_t>(args.Get("chunk", 256 << 20)));
  const int64_t ramp_us = static_cast<int64_t>(args.Get("ramp-ms", 0) * 1000);
  const uint64_t tolerance = static_cast<uint64_t>(args.Get("tolerance", 16 << 20));
  size_t free = 0, total = 0;
  if (cudaError_t err = cudaMemGetInfo(&free, &total); err != cudaSuccess) {
    return Fail("cuda", CudaText("cudaMemGetInfo", err));
  }
  Emit({{"event", "context"}, {"free", free}, {"total", total}});
  std::string line;
  uint64_t target_free = 0;
  if (!ReadCommand(&line)) return 0;  // parent gone before telling us the target
  if (std::sscanf(line.c_str(), "target_free %lu", &target_free) != 1) {
    return Fail("protocol", "expected \"target_free BYTES\", got \"" + line + "\"");
  }
  const int64_t start = NowUs();
  const uint64_t to_take = free > target_free ? free - target_free : 0;
  std::vector<void*> chunks;
  uint64_t held = 0;
  for (;;) {
    if (cudaError_t err = cudaMemGetInfo(&free, &total); err != cudaSuccess) {
      return Fail("cuda", CudaText("cudaMemGetInfo", err));
    }
    if (free <= target_free + kGranularity) break;
    uint64_t want = std::min<uint64_t>(chunk, (free - target_free) / kGranularity * kGranularity);
    if (want < kGranularity) break;
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, want);
    // Out of memory before the target (fragmentation, another tenant): try smaller pieces.
    while (err == cudaErrorMemoryAllocation && want > kGranularity) {
      cudaGetLastError();
      want = std::max(kGranularity, want / 2 / kGranularity * kGranularity);
      err = cudaMalloc(&p, want);
    }
    if (err != cudaSuccess) {
      cudaMemGetInfo(&free, &total);
      return Fail(err == cudaErrorMemoryAllocation ? "oom" : "cuda",
                  CudaText("cudaMalloc after holding " + std::to_string(held) + " bytes, " +
                               std::to_string(free) + " free, target " +
                               std::to_string(target_free) + " free",
                           err),
                  3);
    }
    chunks.push_back(p);
    held += want;
    if (ramp_us > 0 && to_take > 0) {
      // Pace so that `held` tracks the straight line from 0 to `to_take` over the ramp.
      int64_t due = start + static_cast<int64_t>(static_cast<double>(ramp_us) *
                                                 std::min(1.0, double(held) / double(to_take)));
      SleepUs(due - NowUs());
    }
  }
  cudaMemGetInfo(&free, &total);
  Emit({{"event", "ready"},
        {"free", free},
        {"total", total},
        {"target_free", target_free},
        {"held", held},
        {"chunks", chunks.size()},
        {"within_tolerance", free + tolerance >= target_free && free <= target_free + tolerance},
        {"elapsed_ms", (NowUs() - start) / 1000}});
  while (!StdinClosed(-1)) {
  }
  return 0;
}

int Burn(int device, const Args& args) {
  int exit_code = 0;
  if (!OpenDevice(device, &exit_code)) return exit_code;
  const double sm_fraction = args.Get("sm-fraction", 1.0);
  const double duty = std::clamp(args.Get("duty-cycle", 1.0), 0.0, 1.0);
  const int64_t period_us =
      std::max<int64_t>(1000, static_cast<int64_t>(args.Get("period-us", 1e5)));
  cudaDeviceProp prop{};
  if (cudaError_t err = cudaGetDeviceProperties(&prop, device); err != cudaSuccess) {
    return Fail("cuda", CudaText("cudaGetDeviceProperties", err));
  }
  const int blocks =
      std::max(1, static_cast<int>(std::lround(sm_fraction * prop.multiProcessorCount)));
  const int threads = std::min(1024, prop.maxThreadsPerBlock);
  // All of an SM's opt-in shared memory per block: no second block fits on that SM.
  const size_t shared = prop.sharedMemPerBlockOptin;
  if (cudaError_t err = PrepareSpinKernel(shared); err != cudaSuccess) {
    return Fail("cuda", CudaText("cudaFuncSetAttribute", err));
  }
  const int64_t on_us = std::max<int64_t>(1, static_cast<int64_t>(period_us * duty));
  bool announced = false;
  for (;;) {
    const int64_t start = NowUs();
    cudaError_t err =
        LaunchSpinKernel(blocks, threads, shared, static_cast<uint64_t>(on_us) * 1000);
    if (err == cudaSuccess) err = cudaDeviceSynchronize();
    if (err != cudaSuccess) return Fail("cuda", CudaText("spin kernel", err));
    if (!announced) {
      Emit({{"event", "ready"},
            {"blocks", blocks},
            {"sm_count", prop.multiProcessorCount},
            {"threads", threads},
            {"on_us", on_us},
            {"period_us", period_us}});
      announced = true;
    }
    const int64_t rest_ms = (start + period_us - NowUs()) / 1000;
    if (StdinClosed(static_cast<int>(std::max<int64_t>(0, rest_ms)))) return 0;
  }
}

int Observe(int device) {
  int exit_code = 0;
  if (!OpenDevice(device, &exit_code)) return exit_code;
  size_t free = 0, total = 0;
  cudaMemGetInfo(&free, &total);
  Emit({{"event", "context"}, {"free", free}, {"total", total}});
  std::string line;
  while (ReadCommand(&line)) {
    uint64_t want = 0;
    long timeout_ms = 0;
    if (line == "read") {
      cudaMemGetInfo(&free, &total);
      Emit({{"event", "read"}, {"free", free}, {"total", total}});
    } else if (std::sscanf(line.c_str(), "wait_free_at_least %lu %ld", &want, &timeout_ms) == 2) {
      const int64_t start = NowUs();
      for (;;) {
        cudaMemGetInfo(&free, &total);
        int64_t elapsed = NowUs() - start;
        if (free >= want || elapsed > timeout_ms * 1000) {
          Emit({{"event", free >= want ? "reached" : "timeout"},
                {"free", free},
                {"elapsed_us", elapsed}});
          break;
        }
        SleepUs(200);
      }
    } else {
      Emit({{"event", "error"}, {"code", "protocol"}, {"message", "unknown command " + line}});
    }
  }
  return 0;
}

}  // namespace
}  // namespace chaosdrill::gpu

int main(int argc, char** argv) {
  using namespace chaosdrill::gpu;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s probe|hold|burn|observe --device N [--key value]...\n",
                 argv[0]);
    return 64;
  }
  Args args;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strncmp(argv[i], "--", 2) != 0) {
      std::fprintf(stderr, "unexpected argument %s\n", argv[i]);
      return 64;
    }
    args.values[argv[i] + 2] = argv[i + 1];
  }
  const int device = static_cast<int>(args.Get("device", 0));
  const std::string mode = argv[1];
  if (mode == "probe") return Probe(device);
  if (mode == "hold") return Hold(device, args);
  if (mode == "burn") return Burn(device, args);
  if (mode == "observe") return Observe(device);
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 64;
}
