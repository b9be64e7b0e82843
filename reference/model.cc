#include "reference/model.h"

#include <algorithm>
#include <cmath>

namespace chaosdrill::reference {

bool MatchesGolden(absl::Span<const float> got, absl::Span<const float> want) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return false;
    const float scale = std::max({std::fabs(got[i]), std::fabs(want[i]), 1.0f});
    if (std::fabs(got[i] - want[i]) > kGoldenTolerance * scale) return false;
  }
  return true;
}

}  // namespace chaosdrill::reference
