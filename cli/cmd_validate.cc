// `chaosdrill validate [--preflight] FILE...`: loads each scenario against the fault kinds
// registered in this build and prints every error of every file, FILE:LINE:COL:
// field.path: message. With --preflight it also checks the faults this node would apply
// against this node's capabilities (the `chaosdrill doctor` table).
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "injector/fault_registry.h"
#include "injector/preflight.h"
#include "reference/replica_netns.h"
#include "scenarios/scenario_loader.h"

namespace chaosdrill::cli {
namespace {

// Faults applied on this node: those aimed at a part of the reference service (the local
// agent applies them) and those for agent "local". Faults for named or selected remote
// agents are checked against those agents' capabilities by `chaosdrill run --dry-run`.
bool RunsOnThisNode(const scenarios::ScenarioFault& f) {
  return f.target.role.has_value() ||
         (f.target.agent.has_value() && *f.target.agent == scenarios::kLocalAgentName);
}

// One error per fault this node cannot apply, in the validator's format; counts the faults
// left to remote agents in *remote.
std::vector<scenarios::ValidationError> PreflightErrors(
    const scenarios::Scenario& sc, const std::vector<injector::DoctorRow>& rows, int* remote) {
  std::vector<scenarios::ValidationError> errors;
  // network netns: the reference service itself needs root to put replicas on their links.
  if (const auto* ref = sc.target.reference(); ref && ref->network == scenarios::Network::kNetns) {
    if (absl::Status st = reference::NetnsPreflight(); !st.ok()) {
      const std::string path = "target.reference.network";
      errors.push_back({.file = sc.file,
                        .location = sc.LocationOf(path),
                        .path = path,
                        .message = std::string(st.message())});
    }
  }
  for (size_t i = 0; i < sc.faults.size(); ++i) {
    const scenarios::ScenarioFault& f = sc.faults[i];
    if (!RunsOnThisNode(f)) {
      ++*remote;
      continue;
    }
    const std::string path = absl::StrCat("faults[", i, "].kind");
    const injector::DoctorRow* row = nullptr;
    for (const injector::DoctorRow& r : rows) {
      if (r.kind == f.spec.kind) row = &r;
    }
    if (row != nullptr && row->result.available) continue;
    scenarios::SourceLocation at = sc.LocationOf(path);
    if (!at.known()) at = f.location;
    std::string message =
        row == nullptr
            ? absl::StrCat("fault \"", f.name, "\": kind ", f.spec.kind, " is not registered")
            : absl::StrCat("fault \"", f.name, "\": ", f.spec.kind,
                           " is not available on this node: ", row->result.reason,
                           row->result.fix.empty() ? "" : absl::StrCat("; fix: ", row->result.fix));
    errors.push_back({.file = sc.file, .location = at, .path = path, .message = message});
  }
  return errors;
}

}  // namespace

int ValidateCommand(int argc, char** argv) {
  CLI::App app{
      "Check scenario files against the schema (scenarios/SCHEMA.md): unknown fields,\n"
      "values, fault parameters, references. Prints every error of every file as\n"
      "FILE:LINE:COL: field.path: message.\n\n"
      "With --preflight, also checks each valid scenario's faults that this node would\n"
      "apply (those aimed at a reference service role or at agent \"local\") against this\n"
      "node's capabilities, the table `chaosdrill doctor` prints: a kind this node cannot\n"
      "apply (not root, no sch_netem, no CUDA device, ...) is reported in the same format\n"
      "with the reason and the fix, and so is target.reference.network: netns without\n"
      "root (each replica in its own network namespace needs it). Faults for remote\n"
      "agents are checked against those agents by `chaosdrill run --dry-run`.\n\n"
      "Exit status: 0 all valid (and, with --preflight, applicable here); 2 a file is\n"
      "invalid (or a usage error); 4 with --preflight, every file is valid but this node\n"
      "cannot apply a fault one of them needs (an infrastructure problem, not a scenario\n"
      "one).\n\n"
      "Examples:\n"
      "  chaosdrill validate scenarios/library/*.yaml\n"
      "  sudo chaosdrill validate --preflight scenarios/library/replica-kill.yaml",
      argv[0]};
  std::vector<std::string> files;
  app.add_option("FILE", files, "Scenario YAML files")->required();
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "Print only errors, not a line per valid file");
  bool preflight = false;
  app.add_flag("--preflight", preflight,
               "Also check the faults this node would apply against its capabilities (exit 4 "
               "if it cannot)");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;

  const injector::FaultRegistry& registry = injector::FaultRegistry::Global();
  const std::vector<FaultKindInfo> catalog = registry.Catalog();
  std::optional<std::vector<injector::DoctorRow>> doctor;  // run once, when first needed
  bool all_valid = true, all_applicable = true;
  for (const std::string& file : files) {
    scenarios::ScenarioLoadResult result = scenarios::LoadScenarioFile(file, catalog);
    if (!result.ok()) {
      all_valid = false;
      for (const scenarios::ValidationError& e : result.errors) {
        std::fprintf(stderr, "%s\n", e.ToString().c_str());
      }
      continue;
    }
    if (!preflight) {
      if (!quiet) std::printf("%s: ok\n", file.c_str());
      continue;
    }
    if (!doctor) doctor = injector::RunDoctor(registry);
    int remote = 0;
    std::vector<scenarios::ValidationError> missing =
        PreflightErrors(*result.scenario, *doctor, &remote);
    for (const scenarios::ValidationError& e : missing) {
      std::fprintf(stderr, "%s\n", e.ToString().c_str());
    }
    if (!missing.empty()) {
      all_applicable = false;
      continue;
    }
    if (!quiet) {
      std::printf("%s: ok; preflight ok for the %zu fault(s) this node applies%s\n", file.c_str(),
                  result.scenario->faults.size() - static_cast<size_t>(remote),
                  remote == 0 ? ""
                              : absl::StrCat(" (", remote,
                                             " for remote agents: checked by chaosdrill run "
                                             "--dry-run)")
                                    .c_str());
    }
  }
  if (!all_valid) return kExitUsage;
  return all_applicable ? kExitOk : kExitInfra;
}

}  // namespace chaosdrill::cli
