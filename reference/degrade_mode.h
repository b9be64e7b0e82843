// The replica's degraded modes, which let drills exercise gray failures (DESIGN §6):
//   none           normal service
//   wrong-answers  still live and ready, but ModelInfer returns a perturbed output
//                  (every value + 1.0): only a semantic (golden) probe can tell
//   errors         ModelInfer fails with UNAVAILABLE; ServerReady still says ready
//   slow           ModelInfer answers correctly after an added delay
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chaosdrill::reference {

enum class DegradeMode { kNone, kWrongAnswers, kErrors, kSlow };

// "" and "none" are kNone. InvalidArgument listing the valid names otherwise.
absl::StatusOr<DegradeMode> ParseDegradeMode(absl::string_view name);
const char* DegradeModeName(DegradeMode mode);

}  // namespace chaosdrill::reference
