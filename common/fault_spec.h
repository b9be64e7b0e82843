// What a fault is, before anything runs: its kind, its parameters as written, and the
// description each kind publishes of the parameters it takes. Scenarios produce
// FaultSpecs, the agent receives them over the wire, and each fault factory turns one
// into its own typed, validated settings once (injector/). Lives in common/ because
// scenarios/ and injector/ both need it and neither depends on the other.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace chaosdrill {

enum class ParamType {
  kString,
  kInt,       // non-negative integer
  kBool,      // true/false
  kDuration,  // ParseDuration
  kSize,      // ParseSize
  kSizeOrPercent,
  kPercent,   // ParsePercent
  kRatio,     // ParseRatio
  kRate,      // ParseRate
  kEnum,      // one of `choices`
  kCidrList,  // comma-separated IPv4/IPv6 CIDRs or addresses
  kPortList,  // comma-separated ports or ranges "80,8000-8080"
  kStringList,
  kSignal,  // SIGKILL, KILL, 9
  kRegex,   // ECMAScript regular expression
};

absl::string_view ParamTypeName(ParamType type);

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::kString;
  bool required = false;
  std::string default_value;         // as written; empty when none
  std::string doc;                   // one line, for `chaosdrill faults` and docs/faults.md
  std::vector<std::string> choices;  // kEnum only
};

// What a fault kind tells the validator, `chaosdrill faults` and the docs about itself.
struct FaultKindInfo {
  std::string kind;            // "network.netem"
  std::string summary;         // one line
  bool takes_duration = true;  // false for instantaneous kinds (process.kill)
  std::vector<ParamSpec> params;

  const ParamSpec* Find(absl::string_view name) const;
};

// Checks `value` against the parameter's type; the message names what was expected.
absl::Status ValidateParamValue(const ParamSpec& spec, absl::string_view value);

// One fault to apply: kind plus parameters, as strings, already checked against the
// kind's ParamSpecs by whoever built it. Target parameters (pid, interface, listen...)
// are ordinary parameters here; roles are resolved to them by the runner.
struct FaultSpec {
  std::string kind;
  std::map<std::string, std::string> params;
  std::optional<absl::Duration> duration;  // how long to hold; empty = until reverted

  // The parameter as given, or nullopt (factories apply their kind's defaults).
  std::optional<std::string> Get(absl::string_view name) const;
};

}  // namespace chaosdrill
