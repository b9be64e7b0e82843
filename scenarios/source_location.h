// A position in a scenario file: 1-based line and column, as editors count them.
// {0, 0} means "not in the file" (a default value, or a whole-file problem).
#pragma once

namespace chaosdrill::scenarios {

struct SourceLocation {
  int line = 0;
  int column = 0;

  bool known() const { return line > 0; }
  friend bool operator==(const SourceLocation&, const SourceLocation&) = default;
};

}  // namespace chaosdrill::scenarios
