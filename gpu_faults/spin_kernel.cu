#include "gpu_faults/spin_kernel.h"

namespace chaosdrill::gpu {
namespace {

__device__ __forceinline__ uint64_t GlobalTimerNs() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void SpinKernel(uint64_t nanoseconds, float* sink) {
  extern __shared__ float scratch[];
  const uint64_t start = GlobalTimerNs();
  float x = threadIdx.x * 1e-3f, y = 1.0001f;
  while (GlobalTimerNs() - start < nanoseconds) {
#pragma unroll 16
    for (int i = 0; i < 256; ++i) x = fmaf(x, y, 1e-7f);
  }
  // Keeps the loop from being optimised away; x never goes negative.
  if (x < 0.0f) {
    scratch[threadIdx.x] = x;
    sink[blockIdx.x] = scratch[0];
  }
}

}  // namespace

cudaError_t PrepareSpinKernel(size_t shared_bytes) {
  return cudaFuncSetAttribute(SpinKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(shared_bytes));
}

cudaError_t LaunchSpinKernel(int blocks, int threads, size_t shared_bytes, uint64_t nanoseconds) {
  SpinKernel<<<blocks, threads, shared_bytes>>>(nanoseconds, nullptr);
  return cudaGetLastError();
}

}  // namespace chaosdrill::gpu
