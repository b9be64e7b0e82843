// The compute-burn kernel: every thread of every block spins on the GPU's global timer for
// a given time, doing dependent FMAs, so each block occupies one SM (its dynamic shared
// memory is sized to keep any other block off that SM) for the whole spin.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace chaosdrill::gpu {

// Allows `shared_bytes` of dynamic shared memory per block (call once per device).
cudaError_t PrepareSpinKernel(size_t shared_bytes);
// Launches blocks x threads spinning for `nanoseconds`, asynchronously on the default stream.
cudaError_t LaunchSpinKernel(int blocks, int threads, size_t shared_bytes, uint64_t nanoseconds);

}  // namespace chaosdrill::gpu
