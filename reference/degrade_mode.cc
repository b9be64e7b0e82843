#include "reference/degrade_mode.h"

#include "absl/strings/str_cat.h"

namespace chaosdrill::reference {

absl::StatusOr<DegradeMode> ParseDegradeMode(absl::string_view name) {
  if (name.empty() || name == "none") return DegradeMode::kNone;
  if (name == "wrong-answers") return DegradeMode::kWrongAnswers;
  if (name == "errors") return DegradeMode::kErrors;
  if (name == "slow") return DegradeMode::kSlow;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown degrade mode '", name, "' (valid: none, wrong-answers, errors, slow)"));
}

const char* DegradeModeName(DegradeMode mode) {
  switch (mode) {
    case DegradeMode::kNone:
      return "none";
    case DegradeMode::kWrongAnswers:
      return "wrong-answers";
    case DegradeMode::kErrors:
      return "errors";
    case DegradeMode::kSlow:
      return "slow";
  }
  return "none";
}

}  // namespace chaosdrill::reference
