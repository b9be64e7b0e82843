#include "tests/scenarios/test_catalog.h"

#include "injector/fault_registry.h"

namespace chaosdrill::scenarios::testing {

const std::vector<FaultKindInfo>& TestCatalog() {
  static const std::vector<FaultKindInfo> kCatalog = [] {
    injector::RegisterBuiltinFaults();
    return injector::FaultRegistry::Global().Catalog();
  }();
  return kCatalog;
}

}  // namespace chaosdrill::scenarios::testing
