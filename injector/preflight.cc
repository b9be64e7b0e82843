#include "injector/preflight.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "injector/fault_registry.h"

namespace chaosdrill::injector {

bool RunningAsRoot() { return geteuid() == 0; }

PreflightResult SignalPreflight() {
  PreflightResult r;
  r.available = access("/proc/self/stat", R_OK) == 0;
  if (!r.available) {
    r.reason = "/proc is not mounted or not readable";
    r.fix = "mount proc on /proc";
    return r;
  }
  if (!RunningAsRoot()) {
    r.reason = absl::StrCat("not root: only processes of uid ", geteuid(), " can be targeted");
    r.fix = "run as root (or with CAP_KILL) to target other users' processes";
  }
  return r;
}

PreflightResult StressPreflight() {
  PreflightResult r;
  r.available = access("/proc/self/stat", R_OK) == 0;
  if (!r.available) {
    r.reason = "/proc is not mounted or not readable (needed to verify workers are gone)";
    r.fix = "mount proc on /proc";
    return r;
  }
  if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) != 0) {
    r.reason = "no cgroup v2 hierarchy: the `cgroup` parameter cannot be used";
    r.fix = "boot with systemd.unified_cgroup_hierarchy=1, or leave out `cgroup`";
  } else if (access("/sys/fs/cgroup/cgroup.procs", W_OK) != 0) {
    r.reason = "cgroup v2 not writable by this user: `cgroup` works only for delegated cgroups";
    r.fix = "run as root, or delegate a cgroup to this user";
  }
  return r;
}

std::vector<DoctorRow> RunDoctor(const FaultRegistry& registry) {
  std::vector<DoctorRow> rows;
  for (const FaultFactory* f : registry.All()) {
    rows.push_back({f->info().kind, f->info().summary, f->Preflight()});
  }
  return rows;
}

nlohmann::json DoctorJson(const std::vector<DoctorRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const DoctorRow& r : rows) {
    out.push_back({{"kind", r.kind},
                   {"available", r.result.available},
                   {"reason", r.result.reason},
                   {"fix", r.result.fix}});
  }
  return out;
}

}  // namespace chaosdrill::injector
