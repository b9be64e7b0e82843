// Typed reading of YamlNodes for the scenario parser: each function checks one node
// against what the schema expects (a mapping with known fields, a duration, a ratio ...),
// records the node's position under its field path, and on a mismatch adds one error
// saying what was expected and what was found, returning nullopt. Callers keep going
// after an error so that every mistake in a file is reported in one run.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "scenarios/source_location.h"
#include "scenarios/validation_error.h"
#include "scenarios/yaml_tree.h"

namespace chaosdrill::scenarios {

// The known fields of one mapping, by name.
struct Fields {
  const YamlNode* node = nullptr;
  std::string path;  // of the mapping itself; "" for the document root
  std::map<std::string, const YamlNode*> values;

  const YamlNode* Get(absl::string_view name) const;
  bool Has(absl::string_view name) const { return Get(name) != nullptr; }
  std::string PathOf(absl::string_view name) const;
};

// Field path helpers: Child("load", "rate") == "load.rate", Index("faults", 1) == "faults[1]".
std::string ChildPath(absl::string_view parent, absl::string_view name);
std::string IndexPath(absl::string_view parent, size_t index);

class FieldReader {
 public:
  FieldReader(ValidationErrors& errors, std::map<std::string, SourceLocation>& locations)
      : errors_(errors), locations_(locations) {}

  void Error(const YamlNode* node, const std::string& path, std::string message);
  void Record(const std::string& path, const YamlNode* node);
  ValidationErrors& errors() { return errors_; }

  // A mapping whose keys are all in `known`: unknown keys are errors at the key ("did you
  // mean"), as are duplicate keys and keys that are not plain strings. Returns the known
  // ones; nullopt when `node` is not a mapping. `what` names the mapping in messages.
  std::optional<Fields> Mapping(const YamlNode* node, const std::string& path,
                                const std::vector<std::string>& known, absl::string_view what);
  // A mapping with arbitrary string keys (labels, selectors, fault parameters); keys are
  // still checked for type and duplicates.
  std::optional<Fields> OpenMapping(const YamlNode* node, const std::string& path,
                                    absl::string_view what);
  // Adds "required field is missing; expected <expected>" when `name` is absent.
  const YamlNode* Require(const Fields& fields, absl::string_view name, absl::string_view expected);

  std::optional<std::vector<const YamlNode*>> List(const YamlNode* node, const std::string& path,
                                                   absl::string_view expected);
  // A scalar, as written. `expected` completes "expected ..." ("a string", "a host:port").
  std::optional<std::string> Scalar(const YamlNode* node, const std::string& path,
                                    absl::string_view expected);
  std::optional<std::string> NonEmptyString(const YamlNode* node, const std::string& path,
                                            absl::string_view expected = "a string");
  std::optional<std::vector<std::string>> StringList(const YamlNode* node, const std::string& path,
                                                     absl::string_view expected);
  std::optional<int64_t> Int(const YamlNode* node, const std::string& path, int64_t min,
                             int64_t max);
  std::optional<bool> Bool(const YamlNode* node, const std::string& path);
  std::optional<std::string> Enum(const YamlNode* node, const std::string& path,
                                  const std::vector<std::string>& choices);
  // A duration > 0 (or >= 0 with allow_zero), at most `max`.
  std::optional<absl::Duration> Duration(const YamlNode* node, const std::string& path,
                                         bool allow_zero = false,
                                         absl::Duration max = absl::Hours(24));
  // Events per second in (0, max].
  std::optional<double> Rate(const YamlNode* node, const std::string& path, double max);
  // A ratio in [min, 1] (written 0.99 or 99%); min_exclusive makes it (min, 1].
  std::optional<double> Ratio(const YamlNode* node, const std::string& path, double min = 0,
                              bool min_exclusive = false);
  // A percentage in (0, 100].
  std::optional<double> Percent(const YamlNode* node, const std::string& path);
  std::optional<uint64_t> Size(const YamlNode* node, const std::string& path, uint64_t min,
                               uint64_t max);
  std::optional<double> Number(const YamlNode* node, const std::string& path);

 private:
  ValidationErrors& errors_;
  std::map<std::string, SourceLocation>& locations_;
};

}  // namespace chaosdrill::scenarios
