#include "scenarios/did_you_mean.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace chaosdrill::scenarios {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  // Two rows of the classic table; inputs are field names, so sizes are small, but the
  // cost is O(|a|*|b|) time and O(|b|) memory either way.
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::optional<std::string> ClosestMatch(absl::string_view word,
                                        const std::vector<std::string>& candidates) {
  // Very long words (garbage keys) are not typos of field names; skip the quadratic work.
  if (word.empty() || word.size() > 64) return std::nullopt;
  size_t limit = word.size() <= 4 ? 1 : std::max<size_t>(2, word.size() / 3);
  std::optional<std::string> best;
  size_t best_distance = limit + 1;
  for (const std::string& c : candidates) {
    if (absl::EqualsIgnoreCase(c, word)) return c;
  }
  for (const std::string& c : candidates) {
    size_t d = EditDistance(word, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  return best;
}

std::string DidYouMean(absl::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> m = ClosestMatch(word, candidates);
  if (!m) return "";
  return absl::StrCat(" did you mean \"", *m, "\"?");
}

}  // namespace chaosdrill::scenarios
