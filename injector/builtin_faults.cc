// The list of built-in fault kinds. Adding a kind: CHAOSDRILL_REGISTER_FAULT(Factory) at
// the end of its .cc, and one X(Factory) line in CHAOSDRILL_BUILTIN_FAULTS below.
#include <mutex>

#include "injector/fault_registry.h"

// clang-format off
#define CHAOSDRILL_BUILTIN_FAULTS(X) \
  X(GpuFaults) /* every gpu.*: RegisterGpuFaults, injector/gpu_kinds.h */ \
  X(NetemFactory) X(BandwidthFactory) X(PartitionFactory) /* network.* */ \
  X(ProcessKillFactory) \
  X(ProcessPauseFactory) \
  X(StressCpuFactory) \
  X(StressMemoryFactory) \
  X(ReferenceDegradeFactory) /* reference.degrade: the reference replica's admin socket */ \
  X(ProxyLatencyFactory) X(ProxyJitterFactory) X(ProxyBandwidthFactory) /* proxy.* */ \
  X(ProxyResetFactory) X(ProxyBlackholeFactory) X(ProxySlicerFactory)
// clang-format on

namespace chaosdrill::injector {

#define X(FactoryClass) void Register##FactoryClass(FaultRegistry& registry);
CHAOSDRILL_BUILTIN_FAULTS(X)
#undef X

void RegisterBuiltinFaults() {
  static std::once_flag once;
  std::call_once(once, [] {
#define X(FactoryClass) Register##FactoryClass(FaultRegistry::Global());
    CHAOSDRILL_BUILTIN_FAULTS(X)
#undef X
  });
}

}  // namespace chaosdrill::injector
