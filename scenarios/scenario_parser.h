// The schema walk: YAML tree -> Scenario. Checks every field's type, range and spelling,
// and every fault's kind and parameters against a catalog of fault kinds given by the
// caller (the CLI passes injector::FaultRegistry::Global().Catalog(); tests pass their
// own), so this library depends on common/ only. Cross-field rules (timing, references,
// blast radius) are in scenario_validator.h; LoadScenario() runs both.
#pragma once

#include <vector>

#include "common/fault_spec.h"
#include "scenarios/field_reader.h"
#include "scenarios/scenario.h"
#include "scenarios/yaml_tree.h"

namespace chaosdrill::scenarios {

using FaultCatalog = std::vector<FaultKindInfo>;

// Fault parameters the runner fills in from target.role (the pid of replica[1], the
// gateway's listen/upstream addresses, the interface it serves on), so a fault aimed at a
// role may leave them out even where the kind requires them.
extern const std::vector<std::string> kRoleResolvedParams;

// Scenario-level fields of a fault entry; every other key is a parameter of its kind.
extern const std::vector<std::string> kFaultFields;

// Returns the scenario as far as it could be read; when `reader` collected errors the
// result is partial (fields that failed keep their defaults) and must not be run.
Scenario ParseScenarioTree(const YamlNode& root, const FaultCatalog& catalog, FieldReader& reader);

}  // namespace chaosdrill::scenarios
