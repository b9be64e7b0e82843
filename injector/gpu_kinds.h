// What the gpu.* fault kinds take, described whether or not this build has CUDA, so that
// scenarios naming them validate everywhere. The factories behind these descriptions come
// from RegisterGpuFaults(): the real ones in gpu_faults/ (register_cuda.cc) when CMake
// found the CUDA toolkit, otherwise stand-ins (gpu_unavailable.cc) whose Preflight says
// "built without CUDA" and whose Create fails with FailedPrecondition. CMake compiles
// exactly one of the two definitions into the build.
#pragma once

#include <vector>

#include "common/fault_spec.h"
#include "injector/fault_registry.h"

namespace chaosdrill::injector {

const FaultKindInfo& GpuMemoryPressureInfo();  // gpu.memory_pressure
const FaultKindInfo& GpuComputeBurnInfo();     // gpu.compute_burn
const FaultKindInfo& GpuCudaErrorsInfo();      // gpu.cuda_errors
const FaultKindInfo& GpuXidInfo();             // gpu.xid

// All of the above, in kind order.
std::vector<const FaultKindInfo*> GpuKindInfos();

// Adds one factory per gpu.* kind to `registry` (called from RegisterBuiltinFaults()).
void RegisterGpuFaults(FaultRegistry& registry);

}  // namespace chaosdrill::injector
