// A bounded YAML reader for scenario files. yaml-cpp is driven through its event
// interface into a small read-only tree that keeps every node's position, so the
// scenario parser can name line and column, and so hostile input is refused before it
// costs anything: the nesting depth, the number of nodes, and the number of nodes that
// aliases expand to ("billion laughs") are capped while parsing, not after.
// Anchored nodes are shared, not copied: an alias points at the anchored node.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "scenarios/source_location.h"

namespace chaosdrill::scenarios {

struct YamlNode {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  Kind kind = Kind::kNull;
  SourceLocation location;
  std::string tag;                     // "?" plain scalar, "!" quoted scalar, or an explicit tag
  std::string value;                   // scalars only
  std::vector<const YamlNode*> items;  // sequences
  std::vector<std::pair<const YamlNode*, const YamlNode*>> entries;  // maps, in file order

  bool is_scalar() const { return kind == Kind::kScalar; }
  bool is_map() const { return kind == Kind::kMap; }
  bool is_sequence() const { return kind == Kind::kSequence; }
  bool is_null() const { return kind == Kind::kNull; }
  // "a mapping", "a list", "a string \"abc\"", "nothing (null)": for "found ..." messages.
  std::string Describe() const;
};

struct YamlLimits {
  int max_depth = 32;         // nested mappings/lists; scenarios need about 5
  size_t max_nodes = 20'000;  // nodes after expanding aliases; scenarios need < 2000
};

// Owns the nodes; root() is valid as long as the document lives.
class YamlDocument {
 public:
  YamlDocument() = default;
  YamlDocument(const YamlDocument&) = delete;
  YamlDocument& operator=(const YamlDocument&) = delete;

  const YamlNode* root() const { return root_; }

 private:
  friend class YamlTreeBuilder;
  std::deque<YamlNode> nodes_;
  const YamlNode* root_ = nullptr;
};

struct YamlProblem {
  SourceLocation location;
  std::string message;
};

struct YamlParseResult {
  std::unique_ptr<YamlDocument> document;  // set on success
  std::optional<YamlProblem> problem;      // set on failure
};

// Parses exactly one YAML document from `content`. Fails (never throws, never crashes)
// on: text that is not UTF-8 or holds control characters, YAML syntax errors, an empty
// stream, more than one document, nesting deeper than limits.max_depth, more than
// limits.max_nodes nodes after alias expansion, aliases that refer to themselves.
YamlParseResult ParseYamlTree(absl::string_view content, const YamlLimits& limits = {});

}  // namespace chaosdrill::scenarios
