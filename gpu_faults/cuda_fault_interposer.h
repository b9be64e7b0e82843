// The decision logic of libchaosdrill_cuda_fault.so: for each interposed CUDA runtime call,
// fail it with the control file's error at the control file's probability, or forward it to
// the real runtime through a function table. The table, the clock and the control-file
// path are injected, so tests drive it with a fake runtime and a manual clock; the
// preload library (cuda_fault_preload.cc) wires it to dlsym(RTLD_NEXT) and the environment.
//
// The control file is re-checked at most every `recheck` (one stat(2); re-read only when
// its inode, size or mtime changed), so a fault switches on or off within that delay.
// Thread-safe: the interposed calls may come from any thread. Plain C++ (no absl).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "gpu_faults/cuda_fault_control.h"

namespace chaosdrill::gpu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// The real calls, with CUDA types replaced by ABI-identical plain ones (cudaError_t and
// cudaMemcpyKind are ints, cudaStream_t a pointer, dim3 three unsigneds).
struct CudaRuntimeTable {
  int (*malloc)(void** ptr, size_t size) = nullptr;
  int (*memcpy)(void* dst, const void* src, size_t count, int kind) = nullptr;
  int (*memcpy_async)(void* dst, const void* src, size_t count, int kind, void* stream) = nullptr;
  int (*launch_kernel)(const void* func, Dim3 grid, Dim3 block, void** args, size_t shared_mem,
                       void* stream) = nullptr;
};

struct InterposerOptions {
  std::string control_path;          // empty: never fail anything
  int64_t recheck_ns = 100'000'000;  // how stale the control file may be; 0: every call
};

struct InterposerStats {
  uint64_t calls[static_cast<int>(CudaCall::kCount)] = {};
  uint64_t injected[static_cast<int>(CudaCall::kCount)] = {};
  uint64_t control_reads = 0;
  std::string last_control_error;  // parse error of the current file; empty when fine
};

class CudaFaultInterposer {
 public:
  using NowFn = int64_t (*)();  // monotonic nanoseconds
  static int64_t MonotonicNowNs();

  CudaFaultInterposer(CudaRuntimeTable real, InterposerOptions options,
                      NowFn now = &MonotonicNowNs);
  CudaFaultInterposer(const CudaFaultInterposer&) = delete;
  CudaFaultInterposer& operator=(const CudaFaultInterposer&) = delete;

  // The error to return instead of making `call`, or nullopt to make it. Counts the call.
  std::optional<int> Decide(CudaCall call);

  // Decide, then fail or forward to the table. A forwarded call whose table entry is null
  // returns cudaErrorUnknown (999). A failed cudaMalloc sets *ptr to nullptr.
  int Malloc(void** ptr, size_t size);
  int Memcpy(void* dst, const void* src, size_t count, int kind);
  int MemcpyAsync(void* dst, const void* src, size_t count, int kind, void* stream);
  int LaunchKernel(const void* func, Dim3 grid, Dim3 block, void** args, size_t shared_mem,
                   void* stream);

  InterposerStats stats() const;

 private:
  struct FileId {
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileId&) const = default;
  };
  void RefreshLocked(int64_t now);

  const CudaRuntimeTable real_;
  const InterposerOptions options_;
  const NowFn now_;

  mutable std::mutex mu_;
  int64_t next_check_ns_ = 0;                // guarded by mu_
  std::optional<FileId> file_id_;            // guarded by mu_
  std::optional<CudaFaultControl> control_;  // guarded by mu_
  std::mt19937_64 rng_;                      // guarded by mu_
  InterposerStats stats_;                    // guarded by mu_
};

}  // namespace chaosdrill::gpu
