#include "scenarios/yaml_tree.h"

#include <exception>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/exceptions.h"
#include "yaml-cpp/mark.h"
#include "yaml-cpp/parser.h"

namespace chaosdrill::scenarios {
namespace {

SourceLocation FromMark(const YAML::Mark& mark) {
  if (mark.is_null()) return {};
  return {mark.line + 1, mark.column + 1};
}

// Thrown from inside event callbacks to stop yaml-cpp early; caught in ParseYamlTree.
struct Refused {
  SourceLocation location;
  std::string message;
};

// Returns the first byte that makes `content` unfit for YAML: invalid UTF-8, or a control
// character other than tab, newline and carriage return.
std::optional<YamlProblem> CheckText(absl::string_view content) {
  int line = 1, column = 1;
  size_t i = 0;
  while (i < content.size()) {
    auto c = static_cast<unsigned char>(content[i]);
    size_t len = 1;
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
        return YamlProblem{{line, column},
                           absl::StrFormat("expected UTF-8 YAML text, found control byte 0x%02x "
                                           "(is this a binary file?)",
                                           c)};
      }
      if (c == 0x7f) {
        return YamlProblem{{line, column}, "expected UTF-8 YAML text, found control byte 0x7f"};
      }
    } else {
      if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
      } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
      } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
      } else {
        len = 0;
      }
      bool valid = len != 0 && i + len <= content.size();
      for (size_t k = 1; valid && k < len; ++k) {
        valid = (static_cast<unsigned char>(content[i + k]) & 0xc0) == 0x80;
      }
      if (valid && len == 3) {
        auto c1 = static_cast<unsigned char>(content[i + 1]);
        valid = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);  // overlong, surrogate
      }
      if (valid && len == 4) {
        auto c1 = static_cast<unsigned char>(content[i + 1]);
        valid = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
      }
      if (!valid) {
        return YamlProblem{{line, column},
                           absl::StrFormat("expected UTF-8 YAML text, found invalid byte 0x%02x "
                                           "(is this a binary file?)",
                                           c)};
      }
    }
    if (c == '\n') {
      ++line, column = 1;
    } else {
      ++column;
    }
    i += len;
  }
  return std::nullopt;
}

// yaml-cpp looks ahead over a whole flow collection before it emits the first event (a
// flow collection may turn out to be a mapping key), so "[[[[...]]]]" a million deep costs
// seconds before the depth guard in the event handler sees anything. This lexical pass
// refuses such input first. It counts every bracket, also inside quotes: a scenario with
// more than `max_depth` unclosed brackets in a string is not worth a precise answer.
std::optional<YamlProblem> CheckFlowDepth(absl::string_view content, int max_depth) {
  int depth = 0, line = 1, column = 1;
  bool comment = false;
  char prev = '\n';
  for (char c : content) {
    if (c == '\n') {
      comment = false;
    } else if (!comment) {
      if (c == '#' && (prev == ' ' || prev == '\t' || prev == '\n')) {
        comment = true;
      } else if (c == '[' || c == '{') {
        if (++depth > max_depth) {
          return YamlProblem{{line, column},
                             absl::StrCat("YAML nested more than ", max_depth,
                                          " levels deep; expected a scenario (about 5 levels)")};
        }
      } else if ((c == ']' || c == '}') && depth > 0) {
        --depth;
      }
    }
    prev = c;
    if (c == '\n') {
      ++line, column = 1;
    } else {
      ++column;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string YamlNode::Describe() const {
  switch (kind) {
    case Kind::kNull:
      return "nothing (null)";
    case Kind::kScalar: {
      std::string shown = value.size() > 40 ? value.substr(0, 40) + "..." : value;
      return absl::StrCat("\"", shown, "\"");
    }
    case Kind::kSequence:
      return "a list";
    case Kind::kMap:
      return "a mapping";
  }
  return "?";
}

// Builds YamlDocument nodes from yaml-cpp events, enforcing YamlLimits as it goes.
class YamlTreeBuilder : public YAML::EventHandler {
 public:
  YamlTreeBuilder(YamlDocument& doc, const YamlLimits& limits) : doc_(doc), limits_(limits) {}

  bool document_seen() const { return document_seen_; }
  SourceLocation document_start() const { return document_start_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    document_seen_ = true;
    document_start_ = FromMark(mark);
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    YamlNode& n = NewNode(YamlNode::Kind::kNull, mark, "");
    Finish(n, anchor, total_ - 1);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw Refused{FromMark(mark), "alias to an unknown anchor"};
    if (it->second.node == nullptr) {
      throw Refused{FromMark(mark),
                    "alias refers to a node that contains it (a recursive alias); expected an "
                    "alias to a complete node"};
    }
    size_t size = it->second.expanded_size;
    if (size > limits_.max_nodes || total_ + size > limits_.max_nodes) {
      throw Refused{FromMark(mark),
                    absl::StrCat("YAML aliases expand to more than ", limits_.max_nodes,
                                 " nodes (an alias bomb?); expected a scenario of at most ",
                                 limits_.max_nodes, " nodes")};
    }
    total_ += size;
    Attach(it->second.node);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    YamlNode& n = NewNode(YamlNode::Kind::kScalar, mark, tag);
    n.value = value;
    Finish(n, anchor, total_ - 1);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(YamlNode::Kind::kSequence, mark, tag, anchor);
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(YamlNode::Kind::kMap, mark, tag, anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Anchor {
    const YamlNode* node = nullptr;  // null while the anchored container is still open
    size_t expanded_size = 0;
  };
  struct Open_ {
    YamlNode* node;
    size_t total_at_open;
    YAML::anchor_t anchor;
    const YamlNode* pending_key = nullptr;
  };

  YamlNode& NewNode(YamlNode::Kind kind, const YAML::Mark& mark, const std::string& tag) {
    if (++total_ > limits_.max_nodes) {
      throw Refused{FromMark(mark), absl::StrCat("more than ", limits_.max_nodes,
                                                 " YAML nodes; expected a scenario of at most ",
                                                 limits_.max_nodes, " nodes")};
    }
    YamlNode& n = doc_.nodes_.emplace_back();
    n.kind = kind;
    n.location = FromMark(mark);
    n.tag = tag;
    return n;
  }

  void Open(YamlNode::Kind kind, const YAML::Mark& mark, const std::string& tag,
            YAML::anchor_t anchor) {
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) {
      throw Refused{FromMark(mark),
                    absl::StrCat("YAML nested more than ", limits_.max_depth,
                                 " levels deep; expected a scenario (about 5 levels)")};
    }
    YamlNode& n = NewNode(kind, mark, tag);
    if (anchor != YAML::NullAnchor) anchors_[anchor] = Anchor{};  // open: aliases refused
    stack_.push_back(Open_{&n, total_ - 1, anchor});
  }

  void Close() {
    Open_ open = stack_.back();
    stack_.pop_back();
    Finish(*open.node, open.anchor, open.total_at_open);
  }

  // Registers an anchor for a completed node and attaches it to its parent.
  void Finish(const YamlNode& n, YAML::anchor_t anchor, size_t total_at_open) {
    if (anchor != YAML::NullAnchor) anchors_[anchor] = Anchor{&n, total_ - total_at_open};
    Attach(&n);
  }

  void Attach(const YamlNode* n) {
    if (stack_.empty()) {
      doc_.root_ = n;
      return;
    }
    Open_& parent = stack_.back();
    if (parent.node->kind == YamlNode::Kind::kSequence) {
      parent.node->items.push_back(n);
    } else if (parent.pending_key == nullptr) {
      parent.pending_key = n;
    } else {
      parent.node->entries.emplace_back(parent.pending_key, n);
      parent.pending_key = nullptr;
    }
  }

  YamlDocument& doc_;
  const YamlLimits& limits_;
  std::vector<Open_> stack_;
  std::map<YAML::anchor_t, Anchor> anchors_;
  size_t total_ = 0;
  bool document_seen_ = false;
  SourceLocation document_start_;
};

YamlParseResult ParseYamlTree(absl::string_view content, const YamlLimits& limits) {
  YamlParseResult result;
  if (auto problem = CheckText(content)) {
    result.problem = std::move(problem);
    return result;
  }
  if (auto problem = CheckFlowDepth(content, limits.max_depth)) {
    result.problem = std::move(problem);
    return result;
  }
  auto doc = std::make_unique<YamlDocument>();
  try {
    std::istringstream in{std::string(content)};
    YAML::Parser parser(in);
    YamlTreeBuilder builder(*doc, limits);
    if (!parser.HandleNextDocument(builder) || doc->root() == nullptr) {
      result.problem = YamlProblem{{1, 1},
                                   "the file is empty; expected a Scenario mapping "
                                   "(apiVersion, kind, metadata, target, ...)"};
      return result;
    }
    YamlDocument second;
    YamlTreeBuilder second_builder(second, limits);
    if (parser.HandleNextDocument(second_builder)) {
      result.problem =
          YamlProblem{second_builder.document_start(),
                      "found a second YAML document; expected exactly one scenario per file"};
      return result;
    }
  } catch (const Refused& r) {
    result.problem = YamlProblem{r.location, r.message};
    return result;
  } catch (const YAML::Exception& e) {
    result.problem = YamlProblem{FromMark(e.mark), absl::StrCat("YAML syntax error: ", e.msg)};
    return result;
  } catch (const std::exception& e) {
    result.problem = YamlProblem{{1, 1}, absl::StrCat("cannot parse YAML: ", e.what())};
    return result;
  }
  result.document = std::move(doc);
  return result;
}

}  // namespace chaosdrill::scenarios
