// "did you mean X?" for misspelt field names, parameter names and fault kinds.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace chaosdrill::scenarios {

// Levenshtein distance (insert, delete, substitute; each costs 1), case-sensitive.
size_t EditDistance(absl::string_view a, absl::string_view b);

// The candidate closest to `word` if it is close enough to be a likely typo: distance at
// most 1 for words of up to 4 characters, at most a third of the length (min 2) beyond,
// or a case-insensitive match. Ties go to the earlier candidate.
std::optional<std::string> ClosestMatch(absl::string_view word,
                                        const std::vector<std::string>& candidates);

// " did you mean \"X\"?" or "" — ready to append to a message.
std::string DidYouMean(absl::string_view word, const std::vector<std::string>& candidates);

}  // namespace chaosdrill::scenarios
