// The fault catalog scenario tests validate against: the real registry's
// (RegisterBuiltinFaults(), FaultRegistry::Catalog()), exactly what `chaosdrill validate`
// uses, so a library scenario naming a kind or a parameter the injectors do not have fails
// here instead of passing against a hand-written copy that drifted.
#pragma once

#include <vector>

#include "common/fault_spec.h"

namespace chaosdrill::scenarios::testing {

const std::vector<FaultKindInfo>& TestCatalog();

}  // namespace chaosdrill::scenarios::testing
