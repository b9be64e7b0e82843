// Reading a FaultSpec's parameters against the kind's FaultKindInfo, once, in a
// factory's Create(): unknown or missing parameters and values of the wrong type become
// InvalidArgument errors that name the kind and the parameter; defaults come from the
// ParamSpecs, so the documented default and the applied one cannot drift apart.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/fault_spec.h"
#include "common/quantity.h"

namespace chaosdrill::injector {

// Checks every given parameter is known and well-typed and every required one is present.
// Message: `process.kill: parameter "signal": expected ...`.
absl::Status ValidateFaultSpec(const FaultKindInfo& info, const FaultSpec& spec);

// Typed access to a validated spec. Each getter returns the given value, else the
// ParamSpec's default, else nullopt; errors name the parameter. Construct only after
// ValidateFaultSpec succeeded. Holds references: the info and spec must outlive it.
class FaultParams {
 public:
  FaultParams(const FaultKindInfo& info, const FaultSpec& spec) : info_(info), spec_(spec) {}

  std::optional<std::string> String(absl::string_view name) const;
  absl::StatusOr<std::optional<int64_t>> Int(absl::string_view name) const;
  absl::StatusOr<std::optional<bool>> Bool(absl::string_view name) const;
  absl::StatusOr<std::optional<double>> Percent(absl::string_view name) const;
  absl::StatusOr<std::optional<absl::Duration>> Duration(absl::string_view name) const;
  absl::StatusOr<std::optional<SizeSpec>> SizeOrPercent(absl::string_view name) const;

  // InvalidArgument `<kind>: parameter "<name>": <message>`.
  absl::Status Error(absl::string_view name, absl::string_view message) const;

 private:
  const FaultKindInfo& info_;
  const FaultSpec& spec_;
};

}  // namespace chaosdrill::injector
