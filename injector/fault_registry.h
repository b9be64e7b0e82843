// The registry of fault kinds. A fault's .cc ends with CHAOSDRILL_REGISTER_FAULT(Factory),
// which only defines a registration function; RegisterBuiltinFaults() (builtin_faults.cc,
// called explicitly from main and tests) calls each one by name. The explicit list is
// what keeps the linker from dropping a fault's object file out of a static archive, and
// nothing is constructed during static initialisation (the osquery way).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/fault_spec.h"
#include "injector/fault.h"

namespace chaosdrill::injector {

class FaultRegistry {
 public:
  // The process-wide registry, filled by RegisterBuiltinFaults().
  static FaultRegistry& Global();

  void Add(std::unique_ptr<FaultFactory> factory);
  // NotFound naming the kind and listing the known ones.
  absl::StatusOr<const FaultFactory*> Find(absl::string_view kind) const;
  std::vector<const FaultFactory*> All() const;  // sorted by name
  // Parameter descriptions of every registered kind, for the scenario validator.
  std::vector<FaultKindInfo> Catalog() const;

 private:
  std::vector<std::unique_ptr<FaultFactory>> factories_;
};

// Constructs every built-in factory into FaultRegistry::Global(). Idempotent and
// thread-safe. GPU kinds are added separately by gpu_faults/ when built with CUDA.
void RegisterBuiltinFaults();

}  // namespace chaosdrill::injector

// At the end of a fault's .cc, inside namespace chaosdrill::injector:
//   CHAOSDRILL_REGISTER_FAULT(NetemFactory)
// and one X(NetemFactory) line in builtin_faults.cc.
#define CHAOSDRILL_REGISTER_FAULT(FactoryClass)          \
  void Register##FactoryClass(FaultRegistry& registry) { \
    registry.Add(std::make_unique<FactoryClass>());      \
  }
