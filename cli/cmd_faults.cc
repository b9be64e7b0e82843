// `chaosdrill faults [KIND]`: the fault kinds this build knows and their parameters, from
// the same FaultKindInfo the validator and the factories use.
#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/strings/str_join.h"
#include "cli/command.h"
#include "injector/fault_registry.h"

namespace chaosdrill::cli {
namespace {

void PrintKind(const FaultKindInfo& info) {
  std::printf("%s: %s\n", info.kind.c_str(), info.summary.c_str());
  std::printf("  duration: %s\n", info.takes_duration
                                      ? "held for the fault's duration, then reverted"
                                      : "none (applied once)");
  if (info.params.empty()) {
    std::printf("  no parameters\n");
    return;
  }
  size_t name_w = 4, type_w = 4, def_w = 7;
  for (const ParamSpec& p : info.params) {
    name_w = std::max(name_w, p.name.size());
    type_w = std::max(type_w, std::string(ParamTypeName(p.type)).size());
    def_w = std::max(def_w, p.required ? 8 : p.default_value.size());
  }
  std::printf("  %-*s  %-*s  %-*s  %s\n", static_cast<int>(name_w), "NAME",
              static_cast<int>(type_w), "TYPE", static_cast<int>(def_w), "DEFAULT", "DOC");
  for (const ParamSpec& p : info.params) {
    std::string doc = p.doc;
    if (!p.choices.empty()) doc += " (one of: " + absl::StrJoin(p.choices, ", ") + ")";
    std::printf("  %-*s  %-*s  %-*s  %s\n", static_cast<int>(name_w), p.name.c_str(),
                static_cast<int>(type_w), std::string(ParamTypeName(p.type)).c_str(),
                static_cast<int>(def_w),
                p.required ? "required" : (p.default_value.empty() ? "-" : p.default_value.c_str()),
                doc.c_str());
  }
}

}  // namespace

int FaultsCommand(int argc, char** argv) {
  CLI::App app{
      "List the fault kinds this build knows, or one kind's parameters.\n\n"
      "Parameters are given to `chaosdrill inject` as --set NAME=VALUE and in scenarios\n"
      "under a fault's `params`. docs/faults.md explains each kind at length.\n\n"
      "Examples:\n"
      "  chaosdrill faults\n"
      "  chaosdrill faults process.pause\n"
      "  chaosdrill faults --all",
      argv[0]};
  std::string kind;
  bool all = false;
  app.add_option("KIND", kind, "Show this kind's parameters");
  app.add_flag("--all", all, "Show every kind's parameters");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;

  const auto& registry = injector::FaultRegistry::Global();
  if (!kind.empty()) {
    auto f = registry.Find(kind);
    if (!f.ok()) {
      std::fprintf(stderr, "faults: %s\n", std::string(f.status().message()).c_str());
      return kExitUsage;
    }
    PrintKind((*f)->info());
    return kExitOk;
  }
  if (all) {
    bool first = true;
    for (const FaultKindInfo& info : registry.Catalog()) {
      if (!first) std::printf("\n");
      first = false;
      PrintKind(info);
    }
    return kExitOk;
  }
  size_t w = 4;
  for (const FaultKindInfo& info : registry.Catalog()) w = std::max(w, info.kind.size());
  for (const FaultKindInfo& info : registry.Catalog()) {
    std::printf("%-*s  %s\n", static_cast<int>(w), info.kind.c_str(), info.summary.c_str());
  }
  std::printf("\n`chaosdrill faults KIND` shows a kind's parameters.\n");
  return kExitOk;
}

}  // namespace chaosdrill::cli
