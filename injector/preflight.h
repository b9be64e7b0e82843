// Node capability checks shared by fault kinds, and the `chaosdrill doctor` report built
// from every registered kind's Preflight().
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "injector/fault.h"

namespace chaosdrill::injector {

class FaultRegistry;

bool RunningAsRoot();

// process.*: always available; without root only this user's processes can be signalled
// (said in `reason`, with the fix).
PreflightResult SignalPreflight();
// stress.*: fork and /proc are enough; placing workers in a cgroup needs a writable
// cgroup v2 hierarchy (checked per spec in Create, noted here).
PreflightResult StressPreflight();

struct DoctorRow {
  std::string kind;
  std::string summary;
  PreflightResult result;
};

// One row per registered kind, sorted by kind.
std::vector<DoctorRow> RunDoctor(const FaultRegistry& registry);
// [{"kind":..,"available":..,"reason":..,"fix":..}, ...]
nlohmann::json DoctorJson(const std::vector<DoctorRow>& rows);

}  // namespace chaosdrill::injector
