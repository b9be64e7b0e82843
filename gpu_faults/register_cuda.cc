// RegisterGpuFaults() for builds with the CUDA toolkit (CMake compiles this instead of
// injector/gpu_unavailable.cc): the real factories of every gpu.* kind.
#include "injector/gpu_kinds.h"

namespace chaosdrill::injector {

void RegisterMemoryPressureFactory(FaultRegistry& registry);
void RegisterComputeBurnFactory(FaultRegistry& registry);
void RegisterCudaErrorsFactory(FaultRegistry& registry);
void RegisterXidFactory(FaultRegistry& registry);

void RegisterGpuFaults(FaultRegistry& registry) {
  RegisterComputeBurnFactory(registry);
  RegisterCudaErrorsFactory(registry);
  RegisterMemoryPressureFactory(registry);
  RegisterXidFactory(registry);
}

}  // namespace chaosdrill::injector
