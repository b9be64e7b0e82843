// A fault catalog for scenario tests, written out by hand so that these tests do not
// depend on the injector library: the kinds of DESIGN §4 with the parameter names and
// types the injectors publish (injector/*.cc). When a kind's parameters change there,
// library_test (which validates scenarios/library/*.yaml) shows whether the library still
// fits; the CLI test checks the library against the real registry.
#pragma once

#include <vector>

#include "common/fault_spec.h"

namespace chaosdrill::scenarios::testing {

const std::vector<FaultKindInfo>& TestCatalog();

}  // namespace chaosdrill::scenarios::testing
