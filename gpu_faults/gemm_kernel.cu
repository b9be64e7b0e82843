#include <chrono>

#include "gpu_faults/gemm_kernel.h"

namespace chaosdrill::gpu {
namespace {

constexpr int kTile = 32;

__global__ void TiledGemm(const float* a, const float* b, float* c, int n) {
  __shared__ float ta[kTile][kTile];
  __shared__ float tb[kTile][kTile];
  const int row = blockIdx.y * kTile + threadIdx.y;
  const int col = blockIdx.x * kTile + threadIdx.x;
  float sum = 0;
  for (int t = 0; t < n; t += kTile) {
    ta[threadIdx.y][threadIdx.x] = a[row * n + t + threadIdx.x];
    tb[threadIdx.y][threadIdx.x] = b[(t + threadIdx.y) * n + col];
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTile; ++k) sum += ta[threadIdx.y][k] * tb[k][threadIdx.x];
    __syncthreads();
  }
  c[row * n + col] = sum;
}

__global__ void Fill(float* p, int count, float value) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) p[i] = value * ((i % 7) + 1);
}

}  // namespace

GemmVictim::~GemmVictim() {
  cudaFree(a_);
  cudaFree(b_);
  cudaFree(c_);
}

cudaError_t GemmVictim::Init(int n) {
  n_ = n;
  const size_t bytes = sizeof(float) * n * n;
  cudaError_t err;
  if ((err = cudaMalloc(&a_, bytes)) != cudaSuccess) return err;
  if ((err = cudaMalloc(&b_, bytes)) != cudaSuccess) return err;
  if ((err = cudaMalloc(&c_, bytes)) != cudaSuccess) return err;
  const int count = n * n;
  Fill<<<(count + 255) / 256, 256>>>(a_, count, 0.001f);
  Fill<<<(count + 255) / 256, 256>>>(b_, count, 0.002f);
  return cudaDeviceSynchronize();
}

cudaError_t GemmVictim::Measure(int milliseconds, double* gflops) {
  const dim3 block(kTile, kTile);
  const dim3 grid(n_ / kTile, n_ / kTile);
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::milliseconds(milliseconds);
  long iterations = 0;
  auto now = start;
  while (now < until) {
    TiledGemm<<<grid, block>>>(a_, b_, c_, n_);
    cudaError_t err = cudaDeviceSynchronize();
    if (err != cudaSuccess) return err;
    ++iterations;
    now = std::chrono::steady_clock::now();
  }
  const double seconds = std::chrono::duration<double>(now - start).count();
  *gflops = 2.0 * n_ * n_ * static_cast<double>(n_) * iterations / seconds / 1e9;
  return cudaSuccess;
}

}  // namespace chaosdrill::gpu
