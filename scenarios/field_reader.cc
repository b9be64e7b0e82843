#include "scenarios/field_reader.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/quantity.h"
#include "scenarios/did_you_mean.h"

namespace chaosdrill::scenarios {
namespace {

std::string Found(const YamlNode* node) { return absl::StrCat("found ", node->Describe()); }

// Drops the "invalid duration \"x\": " that common/quantity.h prefixes when it would only
// repeat what our own message says; keeps the rest (what was expected).
std::string QuantityMessage(const absl::Status& s) { return std::string(s.message()); }

std::string FormatNumber(double v) {
  std::string s = absl::StrCat(v);
  return s;
}

}  // namespace

const YamlNode* Fields::Get(absl::string_view name) const {
  auto it = values.find(std::string(name));
  return it == values.end() ? nullptr : it->second;
}

std::string Fields::PathOf(absl::string_view name) const { return ChildPath(path, name); }

std::string ChildPath(absl::string_view parent, absl::string_view name) {
  if (parent.empty()) return std::string(name);
  return absl::StrCat(parent, ".", name);
}

std::string IndexPath(absl::string_view parent, size_t index) {
  return absl::StrCat(parent, "[", index, "]");
}

void FieldReader::Error(const YamlNode* node, const std::string& path, std::string message) {
  errors_.Add(node != nullptr ? node->location : SourceLocation{}, path.empty() ? "(root)" : path,
              std::move(message));
}

void FieldReader::Record(const std::string& path, const YamlNode* node) {
  if (node != nullptr) locations_.emplace(path, node->location);
}

std::optional<Fields> FieldReader::OpenMapping(const YamlNode* node, const std::string& path,
                                               absl::string_view what) {
  Record(path, node);
  if (!node->is_map()) {
    Error(node, path, absl::StrCat("expected ", what, " (a mapping), ", Found(node)));
    return std::nullopt;
  }
  Fields fields;
  fields.node = node;
  fields.path = path;
  std::map<std::string, const YamlNode*> first_keys;
  for (const auto& [key, value] : node->entries) {
    if (!key->is_scalar()) {
      Error(key, path, absl::StrCat("expected a field name, found ", key->Describe()));
      continue;
    }
    auto [it, inserted] = first_keys.emplace(key->value, key);
    if (!inserted) {
      Error(key, ChildPath(path, key->value),
            absl::StrCat("duplicate field \"", key->value, "\" (first given at line ",
                         it->second->location.line, "); expected each field once"));
      continue;
    }
    fields.values.emplace(key->value, value);
  }
  return fields;
}

std::optional<Fields> FieldReader::Mapping(const YamlNode* node, const std::string& path,
                                           const std::vector<std::string>& known,
                                           absl::string_view what) {
  std::optional<Fields> fields = OpenMapping(node, path, what);
  if (!fields) return std::nullopt;
  for (auto it = fields->values.begin(); it != fields->values.end();) {
    bool ok = false;
    for (const std::string& k : known) ok = ok || k == it->first;
    if (ok) {
      ++it;
      continue;
    }
    // Report at the key, which is where the typo is.
    const YamlNode* key_node = nullptr;
    for (const auto& [k, v] : node->entries) {
      if (v == it->second && k->is_scalar() && k->value == it->first) key_node = k;
    }
    std::string suggestion = DidYouMean(it->first, known);
    Error(
        key_node != nullptr ? key_node : it->second, fields->PathOf(it->first),
        absl::StrCat("unknown field \"", it->first, "\"", suggestion.empty() ? "" : ";", suggestion,
                     " (known fields of ", what, ": ", absl::StrJoin(known, ", "), ")"));
    it = fields->values.erase(it);
  }
  return fields;
}

const YamlNode* FieldReader::Require(const Fields& fields, absl::string_view name,
                                     absl::string_view expected) {
  const YamlNode* v = fields.Get(name);
  if (v == nullptr) {
    Error(fields.node, fields.PathOf(name),
          absl::StrCat("required field is missing; expected ", expected));
  }
  return v;
}

std::optional<std::vector<const YamlNode*>> FieldReader::List(const YamlNode* node,
                                                              const std::string& path,
                                                              absl::string_view expected) {
  Record(path, node);
  if (!node->is_sequence()) {
    Error(node, path, absl::StrCat("expected ", expected, " (a list), ", Found(node)));
    return std::nullopt;
  }
  return node->items;
}

std::optional<std::string> FieldReader::Scalar(const YamlNode* node, const std::string& path,
                                               absl::string_view expected) {
  Record(path, node);
  if (!node->is_scalar()) {
    Error(node, path, absl::StrCat("expected ", expected, ", ", Found(node)));
    return std::nullopt;
  }
  return node->value;
}

std::optional<std::string> FieldReader::NonEmptyString(const YamlNode* node,
                                                       const std::string& path,
                                                       absl::string_view expected) {
  std::optional<std::string> s = Scalar(node, path, expected);
  if (s && s->empty()) {
    Error(node, path, absl::StrCat("expected ", expected, ", found an empty string"));
    return std::nullopt;
  }
  return s;
}

std::optional<std::vector<std::string>> FieldReader::StringList(const YamlNode* node,
                                                                const std::string& path,
                                                                absl::string_view expected) {
  auto items = List(node, path, expected);
  if (!items) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (size_t i = 0; i < items->size(); ++i) {
    auto s = NonEmptyString((*items)[i], IndexPath(path, i));
    if (s) {
      out.push_back(*s);
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<int64_t> FieldReader::Int(const YamlNode* node, const std::string& path, int64_t min,
                                        int64_t max) {
  std::string expected = absl::StrCat("an integer from ", min, " to ", max);
  auto s = Scalar(node, path, expected);
  if (!s) return std::nullopt;
  int64_t v = 0;
  if (!absl::SimpleAtoi(*s, &v) || v < min || v > max) {
    Error(node, path, absl::StrCat("expected ", expected, ", ", Found(node)));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> FieldReader::Bool(const YamlNode* node, const std::string& path) {
  auto s = Scalar(node, path, "true or false");
  if (!s) return std::nullopt;
  if (*s == "true") return true;
  if (*s == "false") return false;
  Error(node, path, absl::StrCat("expected true or false, ", Found(node)));
  return std::nullopt;
}

std::optional<std::string> FieldReader::Enum(const YamlNode* node, const std::string& path,
                                             const std::vector<std::string>& choices) {
  std::string expected = absl::StrCat("one of ", absl::StrJoin(choices, ", "));
  auto s = Scalar(node, path, expected);
  if (!s) return std::nullopt;
  for (const std::string& c : choices) {
    if (c == *s) return s;
  }
  std::string suggestion = DidYouMean(*s, choices);
  Error(node, path,
        absl::StrCat("expected ", expected, ", ", Found(node), suggestion.empty() ? "" : ";",
                     suggestion));
  return std::nullopt;
}

std::optional<absl::Duration> FieldReader::Duration(const YamlNode* node, const std::string& path,
                                                    bool allow_zero, absl::Duration max) {
  auto s = Scalar(node, path, "a duration (e.g. 250ms, 10s, 2m)");
  if (!s) return std::nullopt;
  absl::StatusOr<absl::Duration> d = ParseDuration(*s);
  if (!d.ok()) {
    Error(node, path, QuantityMessage(d.status()));
    return std::nullopt;
  }
  if (!allow_zero && *d <= absl::ZeroDuration()) {
    Error(node, path, absl::StrCat("expected a duration above 0, ", Found(node)));
    return std::nullopt;
  }
  if (*d > max) {
    Error(
        node, path,
        absl::StrCat("expected a duration of at most ", DurationToString(max), ", ", Found(node)));
    return std::nullopt;
  }
  return *d;
}

std::optional<double> FieldReader::Rate(const YamlNode* node, const std::string& path, double max) {
  auto s = Scalar(node, path, "a rate (e.g. 200/s)");
  if (!s) return std::nullopt;
  absl::StatusOr<double> r = ParseRate(*s);
  if (!r.ok()) {
    Error(node, path, QuantityMessage(r.status()));
    return std::nullopt;
  }
  if (*r <= 0) {
    Error(node, path, absl::StrCat("expected a rate above 0, ", Found(node)));
    return std::nullopt;
  }
  if (*r > max) {
    Error(node, path,
          absl::StrCat("expected a rate of at most ", FormatNumber(max), "/s, ", Found(node)));
    return std::nullopt;
  }
  return *r;
}

std::optional<double> FieldReader::Ratio(const YamlNode* node, const std::string& path, double min,
                                         bool min_exclusive) {
  auto s = Scalar(node, path, "a ratio (e.g. 0.99 or 99%)");
  if (!s) return std::nullopt;
  absl::StatusOr<double> r = ParseRatio(*s);
  if (!r.ok()) {
    Error(node, path, QuantityMessage(r.status()));
    return std::nullopt;
  }
  if (*r < min || (min_exclusive && *r == min)) {
    Error(node, path,
          absl::StrCat("expected a ratio ", min_exclusive ? "above " : "of at least ",
                       FormatNumber(min), ", ", Found(node)));
    return std::nullopt;
  }
  return *r;
}

std::optional<double> FieldReader::Percent(const YamlNode* node, const std::string& path) {
  auto s = Scalar(node, path, "a percentage (e.g. 30%)");
  if (!s) return std::nullopt;
  absl::StatusOr<double> p = ParsePercent(*s);
  if (!p.ok()) {
    Error(node, path, QuantityMessage(p.status()));
    return std::nullopt;
  }
  if (*p <= 0) {
    Error(node, path, absl::StrCat("expected a percentage above 0%, ", Found(node)));
    return std::nullopt;
  }
  return *p;
}

std::optional<uint64_t> FieldReader::Size(const YamlNode* node, const std::string& path,
                                          uint64_t min, uint64_t max) {
  auto s = Scalar(node, path, "a size (e.g. 64B, 4KiB)");
  if (!s) return std::nullopt;
  absl::StatusOr<uint64_t> b = ParseSize(*s);
  if (!b.ok()) {
    Error(node, path, QuantityMessage(b.status()));
    return std::nullopt;
  }
  if (*b < min || *b > max) {
    Error(node, path,
          absl::StrCat("expected a size from ", min, " to ", max, " bytes, ", Found(node)));
    return std::nullopt;
  }
  return *b;
}

std::optional<double> FieldReader::Number(const YamlNode* node, const std::string& path) {
  auto s = Scalar(node, path, "a number");
  if (!s) return std::nullopt;
  double v = 0;
  if (!absl::SimpleAtod(*s, &v) || !std::isfinite(v)) {
    Error(node, path, absl::StrCat("expected a number, ", Found(node)));
    return std::nullopt;
  }
  return v;
}

}  // namespace chaosdrill::scenarios
