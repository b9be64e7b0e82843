// The one entry point from YAML to a runnable Scenario: reads the file (at most
// kMaxScenarioBytes), parses it with the bounded YAML reader, walks the schema, checks
// the cross-field rules, and returns either the Scenario or every error found, each
// printable as FILE:LINE:COL: field.path: message. Never throws; hostile input (binary,
// huge, deeply nested, alias bombs) is refused quickly with an error.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "scenarios/scenario.h"
#include "scenarios/scenario_parser.h"
#include "scenarios/validation_error.h"

namespace chaosdrill::scenarios {

inline constexpr size_t kMaxScenarioBytes = 4 * 1024 * 1024;

struct ScenarioLoadResult {
  std::shared_ptr<const Scenario> scenario;  // set only when errors is empty
  std::vector<ValidationError> errors;       // sorted by position

  bool ok() const { return scenario != nullptr; }
};

// `file` names the source in errors and in Scenario::file.
ScenarioLoadResult LoadScenario(absl::string_view content, absl::string_view file,
                                const FaultCatalog& catalog);

// Reads `path` (refusing files over kMaxScenarioBytes, directories, unreadable files) and
// loads it; errors name `path` as given.
ScenarioLoadResult LoadScenarioFile(const std::string& path, const FaultCatalog& catalog);

}  // namespace chaosdrill::scenarios
