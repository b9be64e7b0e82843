// `chaosdrill doctor`: which fault kinds this node can apply, and for those it cannot,
// why and what would fix it (each kind's Preflight()).
#include <algorithm>
#include <cstdio>
#include <string>

#include "cli/command.h"
#include "injector/fault_registry.h"
#include "injector/preflight.h"

namespace chaosdrill::cli {

int DoctorCommand(int argc, char** argv) {
  CLI::App app{
      "Check which fault kinds this node can apply.\n\n"
      "Runs every registered kind's preflight (root? kernel qdisc modules? nftables?\n"
      "cgroup v2? a CUDA device?) and prints one row per kind: available or not, the\n"
      "reason, and the fix. A kind can be available with a caveat (e.g. process.* without\n"
      "root only reaches this user's processes).\n\n"
      "Examples:\n"
      "  chaosdrill doctor\n"
      "  sudo chaosdrill doctor --json | jq '.[] | select(.available | not)'",
      argv[0]};
  bool json = false;
  app.add_flag("--json", json, "Print a JSON array of {kind, available, reason, fix}");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;

  std::vector<injector::DoctorRow> rows = injector::RunDoctor(injector::FaultRegistry::Global());
  if (json) {
    std::printf("%s\n", injector::DoctorJson(rows).dump(2).c_str());
    return kExitOk;
  }
  size_t width = 4;
  for (const auto& r : rows) width = std::max(width, r.kind.size());
  std::printf("%-*s  %-9s  %s\n", static_cast<int>(width), "KIND", "AVAILABLE", "NOTES");
  int available = 0;
  for (const auto& r : rows) {
    if (r.result.available) ++available;
    std::printf("%-*s  %-9s  %s\n", static_cast<int>(width), r.kind.c_str(),
                r.result.available ? "yes" : "NO", r.result.reason.c_str());
    if (!r.result.fix.empty()) {
      std::printf("%-*s  %-9s  fix: %s\n", static_cast<int>(width), "", "", r.result.fix.c_str());
    }
  }
  std::printf("\n%d of %zu kinds available on this node.\n", available, rows.size());
  return kExitOk;
}

}  // namespace chaosdrill::cli
