// One problem found in a scenario file, printed as
//   FILE:LINE:COL: field.path: message
// where the message says what was expected and what was found. Whole-file problems (too
// big, not YAML, empty) use line 1, column 1 and the path "(file)" or "(yaml)".
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "scenarios/source_location.h"

namespace chaosdrill::scenarios {

struct ValidationError {
  std::string file;
  SourceLocation location;
  std::string path;  // "faults[1].duration", "load.rate"
  std::string message;

  std::string ToString() const;
};

// Collects the errors of one file. Checks that depend on a field ask TouchesError() first
// so that one mistake is reported once, not again by every check that reads the field.
class ValidationErrors {
 public:
  explicit ValidationErrors(std::string file) : file_(std::move(file)) {}

  void Add(SourceLocation location, std::string path, std::string message);
  // True when an error was reported for `path`, inside it, or for a field containing it.
  bool TouchesError(const std::string& path) const;
  bool empty() const { return errors_.empty(); }
  const std::string& file() const { return file_; }
  // Sorted by position.
  std::vector<ValidationError> Take();

 private:
  std::string file_;
  std::vector<ValidationError> errors_;
};

// Sorts by line, then column, keeping the order of errors at the same position.
void SortByPosition(std::vector<ValidationError>& errors);

}  // namespace chaosdrill::scenarios
