// `chaosdrill validate FILE...`: loads each scenario against the fault kinds registered in
// this build and prints every error of every file, FILE:LINE:COL: field.path: message.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/command.h"
#include "injector/fault_registry.h"
#include "scenarios/scenario_loader.h"

namespace chaosdrill::cli {

int ValidateCommand(int argc, char** argv) {
  CLI::App app{
      "Check scenario files against the schema (scenarios/SCHEMA.md): unknown fields,\n"
      "values, fault parameters, references. Prints every error of every file as\n"
      "FILE:LINE:COL: field.path: message. Exit 0 when all are valid, 2 otherwise.",
      argv[0]};
  std::vector<std::string> files;
  app.add_option("FILE", files, "Scenario YAML files")->required();
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "Print only errors, not a line per valid file");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;

  const std::vector<FaultKindInfo> catalog = injector::FaultRegistry::Global().Catalog();
  bool all_ok = true;
  for (const std::string& file : files) {
    scenarios::ScenarioLoadResult result = scenarios::LoadScenarioFile(file, catalog);
    if (result.ok()) {
      if (!quiet) std::printf("%s: ok\n", file.c_str());
      continue;
    }
    all_ok = false;
    for (const scenarios::ValidationError& e : result.errors) {
      std::fprintf(stderr, "%s\n", e.ToString().c_str());
    }
  }
  return all_ok ? kExitOk : kExitUsage;
}

}  // namespace chaosdrill::cli
