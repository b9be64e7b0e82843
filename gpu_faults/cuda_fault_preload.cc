// libchaosdrill_cuda_fault.so: start a process with
//   LD_PRELOAD=/path/libchaosdrill_cuda_fault.so CHAOSDRILL_CUDA_FAULT_CONTROL=/run/x.ctl
// and its calls to cudaMalloc, cudaMemcpy, cudaMemcpyAsync and cudaLaunchKernel (and their
// per-thread-stream variants) go through CudaFaultInterposer: while the control file exists
// they fail as it says, otherwise they reach the real libcudart (dlsym RTLD_NEXT).
// CHAOSDRILL_CUDA_FAULT_RECHECK_MS (default 100) bounds how stale the control file may be.
//
// Works only for processes that link the CUDA runtime dynamically (libcudart.so, as
// PyTorch and most Python stacks do). nvcc links cudart statically by default; such a
// binary's calls never reach the dynamic linker and cannot be interposed. Injected errors
// are returned to the caller but not recorded as the runtime's sticky/last error
// (cudaGetLastError does not see them).
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "gpu_faults/cuda_fault_interposer.h"

namespace chaosdrill::gpu {
namespace {

static_assert(cudaErrorInvalidValue == 1);
static_assert(cudaErrorMemoryAllocation == 2);
static_assert(cudaErrorInitializationError == 3);
static_assert(cudaErrorInsufficientDriver == 35);
static_assert(cudaErrorDevicesUnavailable == 46);
static_assert(cudaErrorNoDevice == 100);
static_assert(cudaErrorECCUncorrectable == 214);
static_assert(cudaErrorIllegalAddress == 700);
static_assert(cudaErrorLaunchOutOfResources == 701);
static_assert(cudaErrorLaunchTimeout == 702);
static_assert(cudaErrorLaunchFailure == 719);
static_assert(cudaErrorUnknown == 999);
static_assert(sizeof(dim3) == sizeof(Dim3));
static_assert(sizeof(cudaError_t) == sizeof(int));

template <typename Fn>
Fn Next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

using MallocFn = cudaError_t (*)(void**, size_t);
using MemcpyFn = cudaError_t (*)(void*, const void*, size_t, cudaMemcpyKind);
using MemcpyAsyncFn = cudaError_t (*)(void*, const void*, size_t, cudaMemcpyKind, cudaStream_t);
using LaunchFn = cudaError_t (*)(const void*, dim3, dim3, void**, size_t, cudaStream_t);

struct RealCalls {
  MallocFn malloc = Next<MallocFn>("cudaMalloc");
  MemcpyFn memcpy = Next<MemcpyFn>("cudaMemcpy");
  MemcpyAsyncFn memcpy_async = Next<MemcpyAsyncFn>("cudaMemcpyAsync");
  LaunchFn launch = Next<LaunchFn>("cudaLaunchKernel");
  MemcpyFn memcpy_ptds = Next<MemcpyFn>("cudaMemcpy_ptds");
  MemcpyAsyncFn memcpy_async_ptsz = Next<MemcpyAsyncFn>("cudaMemcpyAsync_ptsz");
  LaunchFn launch_ptsz = Next<LaunchFn>("cudaLaunchKernel_ptsz");
};

const RealCalls& Real() {
  static const RealCalls real;
  return real;
}

dim3 ToDim3(Dim3 d) { return dim3(d.x, d.y, d.z); }

CudaRuntimeTable RealTable() {
  CudaRuntimeTable t;
  t.malloc = [](void** p, size_t n) -> int {
    return Real().malloc ? Real().malloc(p, n) : cudaErrorUnknown;
  };
  t.memcpy = [](void* d, const void* s, size_t n, int k) -> int {
    return Real().memcpy ? Real().memcpy(d, s, n, static_cast<cudaMemcpyKind>(k))
                         : cudaErrorUnknown;
  };
  t.memcpy_async = [](void* d, const void* s, size_t n, int k, void* st) -> int {
    return Real().memcpy_async ? Real().memcpy_async(d, s, n, static_cast<cudaMemcpyKind>(k),
                                                     static_cast<cudaStream_t>(st))
                               : cudaErrorUnknown;
  };
  t.launch_kernel = [](const void* f, Dim3 g, Dim3 b, void** a, size_t sm, void* st) -> int {
    return Real().launch
               ? Real().launch(f, ToDim3(g), ToDim3(b), a, sm, static_cast<cudaStream_t>(st))
               : cudaErrorUnknown;
  };
  return t;
}

CudaFaultInterposer& Interposer() {
  static CudaFaultInterposer* interposer = [] {
    InterposerOptions options;
    if (const char* path = std::getenv("CHAOSDRILL_CUDA_FAULT_CONTROL")) {
      options.control_path = path;
    }
    if (const char* ms = std::getenv("CHAOSDRILL_CUDA_FAULT_RECHECK_MS")) {
      char* end = nullptr;
      long v = std::strtol(ms, &end, 10);
      if (end != ms && *end == '\0' && v >= 0) options.recheck_ns = v * 1'000'000;
    }
    // Leaked on purpose: CUDA calls may still arrive from other threads during exit.
    return new CudaFaultInterposer(RealTable(), options);
  }();
  return *interposer;
}

Dim3 FromDim3(dim3 d) { return Dim3{d.x, d.y, d.z}; }

}  // namespace
}  // namespace chaosdrill::gpu

using chaosdrill::gpu::CudaCall;
using chaosdrill::gpu::FromDim3;
using chaosdrill::gpu::Interposer;
using chaosdrill::gpu::Real;

extern "C" {

__attribute__((visibility("default"))) cudaError_t cudaMalloc(void** dev_ptr, size_t size) {
  return static_cast<cudaError_t>(Interposer().Malloc(dev_ptr, size));
}

__attribute__((visibility("default"))) cudaError_t cudaMemcpy(void* dst, const void* src,
                                                              size_t count, cudaMemcpyKind kind) {
  return static_cast<cudaError_t>(Interposer().Memcpy(dst, src, count, kind));
}

__attribute__((visibility("default"))) cudaError_t cudaMemcpyAsync(void* dst, const void* src,
                                                                   size_t count,
                                                                   cudaMemcpyKind kind,
                                                                   cudaStream_t stream) {
  return static_cast<cudaError_t>(Interposer().MemcpyAsync(dst, src, count, kind, stream));
}

__attribute__((visibility("default"))) cudaError_t cudaLaunchKernel(const void* func, dim3 grid_dim,
                                                                    dim3 block_dim, void** args,
                                                                    size_t shared_mem,
                                                                    cudaStream_t stream) {
  return static_cast<cudaError_t>(Interposer().LaunchKernel(
      func, FromDim3(grid_dim), FromDim3(block_dim), args, shared_mem, stream));
}

__attribute__((visibility("default"))) cudaError_t cudaMemcpy_ptds(void* dst, const void* src,
                                                                   size_t count,
                                                                   cudaMemcpyKind kind) {
  if (auto err = Interposer().Decide(CudaCall::kMemcpy)) return static_cast<cudaError_t>(*err);
  return Real().memcpy_ptds ? Real().memcpy_ptds(dst, src, count, kind) : cudaErrorUnknown;
}

__attribute__((visibility("default"))) cudaError_t cudaMemcpyAsync_ptsz(void* dst, const void* src,
                                                                        size_t count,
                                                                        cudaMemcpyKind kind,
                                                                        cudaStream_t stream) {
  if (auto err = Interposer().Decide(CudaCall::kMemcpyAsync)) {
    return static_cast<cudaError_t>(*err);
  }
  return Real().memcpy_async_ptsz ? Real().memcpy_async_ptsz(dst, src, count, kind, stream)
                                  : cudaErrorUnknown;
}

__attribute__((visibility("default"))) cudaError_t cudaLaunchKernel_ptsz(
    const void* func, dim3 grid_dim, dim3 block_dim, void** args, size_t shared_mem,
    cudaStream_t stream) {
  if (auto err = Interposer().Decide(CudaCall::kLaunchKernel)) {
    return static_cast<cudaError_t>(*err);
  }
  return Real().launch_ptsz
             ? Real().launch_ptsz(func, grid_dim, block_dim, args, shared_mem, stream)
             : cudaErrorUnknown;
}

}  // extern "C"
