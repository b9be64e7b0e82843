// The parent side of chaosdrill-gpu-holder: find it, probe a device through it, start a
// memory hold or a compute burn and wait until it reports the target reached, and watch
// memory come back. The faults (memory_pressure_fault.h, compute_burn_fault.h) and the
// self-test both use it. Plain C++ (no absl) so the self-test stays copyable.
//
// The agent process itself never initialises CUDA: every device query runs in a fresh
// helper process, so the agent holds no CUDA context (no GPU memory) and stays fork-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gpu_faults/helper_process.h"

namespace chaosdrill::gpu {

constexpr char kGpuHelperName[] = "chaosdrill-gpu-holder";

// Why a GPU operation failed. `code`: "no_device", "bad_device", "oom", "cuda",
// "helper_missing", "spawn", "timeout", "protocol", "already_above".
struct GpuError {
  std::string code;
  std::string message;
};

// The helper: $CHAOSDRILL_GPU_HELPER, else next to the running executable, else in the
// build tree. Empty (and *error set) if none is executable.
std::string FindGpuHelper(GpuError* error);

struct GpuInfo {
  int count = 0;
  int device = 0;
  std::string name;
  std::string pci_bus_id;  // "0000:3B:00.0"
  uint64_t total = 0;
  uint64_t free = 0;  // as a separate process (with its own context) sees it
  int sm_count = 0;
};

bool ProbeGpu(const std::string& helper, int device, GpuInfo* info, GpuError* error,
              int timeout_ms = 60'000);

// Starts the helper with `args` (mode and flags), for modes this header does not wrap
// ("observe", used by the self-test to measure as a separate process).
std::unique_ptr<HelperProcess> SpawnGpuHelper(const std::string& helper,
                                              std::vector<std::string> args, GpuError* error);
// Reads the helper's next JSON event; an {"event":"error"} line becomes *error.
bool ReadGpuHelperEvent(HelperProcess& helper, int timeout_ms, nlohmann::json* event,
                        GpuError* error);

// What memory pressure should leave for other processes, each judged as a separate process
// with its own CUDA context would read cudaMemGetInfo.
struct MemoryTarget {
  enum class Mode { kSize, kFraction, kLeaveFree } mode = Mode::kSize;
  uint64_t bytes = 0;   // kSize: taken away; kLeaveFree: left free
  double fraction = 0;  // kFraction: share of total in use
};

struct HoldOptions {
  int device = 0;
  MemoryTarget target;
  uint64_t chunk = 256ull << 20;
  int64_t ramp_ms = 0;
};

struct HoldReport {
  uint64_t total = 0;
  uint64_t baseline_free = 0;  // observer's free before the hold
  uint64_t target_free = 0;    // observer's free the hold aims at
  uint64_t context_bytes = 0;  // the holder's CUDA context, measured
  uint64_t held = 0;           // bytes cudaMalloc'ed
  uint64_t holder_free = 0;    // free as the holder saw it when ready
  uint64_t tolerance = 0;
  bool within_tolerance = false;
  int64_t elapsed_ms = 0;  // from spawn to ready
};

// Starts the holder and returns once it reports the target reached (verified with its own
// cudaMemGetInfo). Undershoot beyond the tolerance is an error ("oom"); overshoot (its
// context alone is more than asked) is reported, not an error. On error nothing is left.
std::unique_ptr<HelperProcess> StartMemoryHold(const std::string& helper,
                                               const HoldOptions& options, HoldReport* report,
                                               GpuError* error);

// Polls fresh probes until a separate process sees at least `min_free` free, up to
// timeout_ms. False with *error ("timeout" with the last figure) otherwise.
bool WaitForFreeMemory(const std::string& helper, int device, uint64_t min_free, int timeout_ms,
                       uint64_t* last_free, GpuError* error);

struct BurnOptions {
  int device = 0;
  double sm_fraction = 1.0;
  double duty_cycle = 1.0;
  int64_t period_us = 100'000;
};

struct BurnReport {
  int blocks = 0;
  int sm_count = 0;
};

// Starts the burner and returns once its first spin kernel has run.
std::unique_ptr<HelperProcess> StartComputeBurn(const std::string& helper,
                                                const BurnOptions& options, BurnReport* report,
                                                GpuError* error);

}  // namespace chaosdrill::gpu
