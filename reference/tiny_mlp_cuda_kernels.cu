#include "reference/tiny_mlp_cuda_kernels.h"

namespace chaosdrill::reference {
namespace {

constexpr int kThreads = 128;

__global__ void DenseLayer(const float* w, const float* bias, const float* x, float* y, int in,
                           int out, bool linear) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  const int row = blockIdx.y;
  if (j >= out) return;
  const float* wj = w + static_cast<size_t>(j) * in;
  const float* xr = x + static_cast<size_t>(row) * in;
  float acc = bias[j];
  for (int i = 0; i < in; ++i) acc = __fadd_rn(acc, __fmul_rn(wj[i], xr[i]));
  y[static_cast<size_t>(row) * out + j] = linear ? acc : fmaxf(acc, 0.0f);
}

}  // namespace

cudaError_t LaunchDenseLayer(const float* w, const float* bias, const float* x, float* y, int in,
                             int out, int batch, bool linear, cudaStream_t stream) {
  const dim3 grid((out + kThreads - 1) / kThreads, batch);
  DenseLayer<<<grid, kThreads, 0, stream>>>(w, bias, x, y, in, out, linear);
  return cudaGetLastError();
}

}  // namespace chaosdrill::reference
