#include "injector/fault_params.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace chaosdrill::injector {

absl::Status ValidateFaultSpec(const FaultKindInfo& info, const FaultSpec& spec) {
  if (spec.kind != info.kind) {
    return absl::InvalidArgumentError(
        absl::StrCat(info.kind, ": spec is for kind \"", spec.kind, "\""));
  }
  for (const auto& [name, value] : spec.params) {
    const ParamSpec* p = info.Find(name);
    if (p == nullptr) {
      std::vector<std::string> known;
      for (const ParamSpec& q : info.params) known.push_back(q.name);
      return absl::InvalidArgumentError(absl::StrCat(info.kind, ": unknown parameter \"", name,
                                                     "\" (known: ", absl::StrJoin(known, ", "),
                                                     ")"));
    }
    if (absl::Status s = ValidateParamValue(*p, value); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(info.kind, ": parameter \"", name, "\": ", s.message()));
    }
  }
  for (const ParamSpec& p : info.params) {
    if (p.required && spec.params.count(p.name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(info.kind, ": parameter \"", p.name, "\" is required (", p.doc, ")"));
    }
  }
  return absl::OkStatus();
}

std::optional<std::string> FaultParams::String(absl::string_view name) const {
  if (auto v = spec_.Get(name)) return v;
  const ParamSpec* p = info_.Find(name);
  if (p != nullptr && !p->default_value.empty()) return p->default_value;
  return std::nullopt;
}

absl::Status FaultParams::Error(absl::string_view name, absl::string_view message) const {
  return absl::InvalidArgumentError(
      absl::StrCat(info_.kind, ": parameter \"", name, "\": ", message));
}

absl::StatusOr<std::optional<int64_t>> FaultParams::Int(absl::string_view name) const {
  auto v = String(name);
  if (!v) return std::optional<int64_t>();
  int64_t out = 0;
  if (!absl::SimpleAtoi(*v, &out) || out < 0) {
    return Error(name, absl::StrCat("expected a non-negative integer, found \"", *v, "\""));
  }
  return std::optional<int64_t>(out);
}

absl::StatusOr<std::optional<bool>> FaultParams::Bool(absl::string_view name) const {
  auto v = String(name);
  if (!v) return std::optional<bool>();
  if (*v == "true") return std::optional<bool>(true);
  if (*v == "false") return std::optional<bool>(false);
  return Error(name, absl::StrCat("expected true or false, found \"", *v, "\""));
}

absl::StatusOr<std::optional<double>> FaultParams::Percent(absl::string_view name) const {
  auto v = String(name);
  if (!v) return std::optional<double>();
  auto p = ParsePercent(*v);
  if (!p.ok()) return Error(name, p.status().message());
  return std::optional<double>(*p);
}

absl::StatusOr<std::optional<absl::Duration>> FaultParams::Duration(absl::string_view name) const {
  auto v = String(name);
  if (!v) return std::optional<absl::Duration>();
  auto d = ParseDuration(*v);
  if (!d.ok()) return Error(name, d.status().message());
  return std::optional<absl::Duration>(*d);
}

absl::StatusOr<std::optional<SizeSpec>> FaultParams::SizeOrPercent(absl::string_view name) const {
  auto v = String(name);
  if (!v) return std::optional<SizeSpec>();
  auto s = ParseSizeOrPercent(*v);
  if (!s.ok()) return Error(name, s.status().message());
  return std::optional<SizeSpec>(*s);
}

}  // namespace chaosdrill::injector
