// Cross-field rules of a scenario, checked after the schema walk (scenario_parser.h):
// fault timing inside the observe window, unique names, roles and agents that exist,
// blast radius (allow_majority), writes present where an RPO is promised, thresholds
// that agree with each other. Checks that read a field which already failed to parse are
// skipped, so one mistake yields one error.
#pragma once

#include "scenarios/scenario.h"
#include "scenarios/validation_error.h"

namespace chaosdrill::scenarios {

void ValidateScenario(const Scenario& scenario, ValidationErrors& errors);

}  // namespace chaosdrill::scenarios
