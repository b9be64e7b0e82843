// The self-test's victim workload: a shared-memory tiled SGEMM (C = A x B, n x n), run
// back to back for a while to measure throughput with and without a noisy neighbour.
#pragma once

#include <cuda_runtime_api.h>

namespace chaosdrill::gpu {

class GemmVictim {
 public:
  GemmVictim() = default;
  ~GemmVictim();
  GemmVictim(const GemmVictim&) = delete;
  GemmVictim& operator=(const GemmVictim&) = delete;

  // Allocates and fills the matrices on the current device; n is a multiple of 32.
  cudaError_t Init(int n);
  // Runs GEMMs (each synchronised) for about `milliseconds`; *gflops gets the throughput.
  cudaError_t Measure(int milliseconds, double* gflops);

 private:
  int n_ = 0;
  float* a_ = nullptr;
  float* b_ = nullptr;
  float* c_ = nullptr;
};

}  // namespace chaosdrill::gpu
