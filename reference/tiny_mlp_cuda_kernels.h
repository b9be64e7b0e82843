// Device code of the CUDA tiny-mlp (tiny_mlp_cuda.h): one dense layer per launch.
#pragma once

#include <cuda_runtime_api.h>

namespace chaosdrill::reference {

// y[b][j] = bias[j] + sum_i w[j][i] * x[b][i] (ReLU unless `linear`), for b < batch, j < out;
// w is out x in row-major. Multiplies and adds are rounded separately (no FMA contraction)
// in the CPU model's order, so the result is bit-identical to TinyMlp on CPU.
cudaError_t LaunchDenseLayer(const float* w, const float* bias, const float* x, float* y, int in,
                             int out, int batch, bool linear, cudaStream_t stream);

}  // namespace chaosdrill::reference
