#include "scenarios/validation_error.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace chaosdrill::scenarios {

std::string ValidationError::ToString() const {
  int line = location.known() ? location.line : 1;
  int column = location.known() ? location.column : 1;
  return absl::StrCat(file, ":", line, ":", column, ": ", path, ": ", message);
}

void ValidationErrors::Add(SourceLocation location, std::string path, std::string message) {
  errors_.push_back(ValidationError{file_, location, std::move(path), std::move(message)});
}

namespace {
// True when `inner` is `outer` or a field below it ("a.b" and "a[1]" are below "a").
bool IsWithin(const std::string& inner, const std::string& outer) {
  if (!absl::StartsWith(inner, outer)) return false;
  return inner.size() == outer.size() || inner[outer.size()] == '.' || inner[outer.size()] == '[';
}
}  // namespace

bool ValidationErrors::TouchesError(const std::string& path) const {
  for (const ValidationError& e : errors_) {
    if (IsWithin(e.path, path) || IsWithin(path, e.path)) return true;
  }
  return false;
}

std::vector<ValidationError> ValidationErrors::Take() {
  SortByPosition(errors_);
  return std::move(errors_);
}

void SortByPosition(std::vector<ValidationError>& errors) {
  std::stable_sort(errors.begin(), errors.end(),
                   [](const ValidationError& a, const ValidationError& b) {
                     if (a.location.line != b.location.line) {
                       return a.location.line < b.location.line;
                     }
                     return a.location.column < b.location.column;
                   });
}

}  // namespace chaosdrill::scenarios
