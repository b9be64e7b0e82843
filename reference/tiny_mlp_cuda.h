// The CUDA backend of tiny-mlp (reference/tiny_mlp.h), for `replica --device cuda`: weights
// live on the device from Create on; every Infer call cudaMallocs its own workspace, so GPU
// memory pressure makes inference fail with ResourceExhausted while the process (and
// ServerReady) stays up: the gray failure a deep health probe must catch. Outputs are
// bit-identical to the CPU model's (no FMA contraction), and golden_output() is the CPU
// model's.
//
// Linked with the *dynamic* CUDA runtime, so a replica can be started with
// LD_PRELOAD=libchaosdrill_cuda_fault.so for gpu.cuda_errors. Built only with the CUDA
// toolkit; tiny_mlp_cuda_unavailable.cc provides CreateTinyMlpCuda otherwise.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "reference/model.h"
#include "reference/tiny_mlp.h"

namespace chaosdrill::reference {

// FailedPrecondition naming cudaGetDeviceCount's reason without a device, ResourceExhausted
// when the weights do not fit, Unimplemented in a build without CUDA.
absl::StatusOr<std::unique_ptr<Model>> CreateTinyMlpCuda(const TinyMlpOptions& options,
                                                         int device = 0);

}  // namespace chaosdrill::reference
