#include "common/fault_spec.h"

#include <arpa/inet.h>

#include <charconv>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/quantity.h"

namespace chaosdrill {
namespace {

absl::Status ValidateCidr(absl::string_view item) {
  absl::string_view addr = item;
  int max_prefix = 32;
  std::string addr_str;
  size_t slash = item.find('/');
  if (slash != absl::string_view::npos) addr = item.substr(0, slash);
  addr_str = std::string(addr);
  in6_addr buf;
  if (inet_pton(AF_INET, addr_str.c_str(), &buf) == 1) {
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, addr_str.c_str(), &buf) == 1) {
    max_prefix = 128;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", item, "\" is not an IPv4/IPv6 address or CIDR (e.g. 10.0.0.0/24)"));
  }
  if (slash != absl::string_view::npos) {
    int prefix = -1;
    if (!absl::SimpleAtoi(item.substr(slash + 1), &prefix) || prefix < 0 || prefix > max_prefix) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", item, "\" has an invalid prefix length (0..", max_prefix, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePort(absl::string_view p, absl::string_view item) {
  int port = -1;
  if (!absl::SimpleAtoi(p, &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", item, "\" is not a port or range (1..65535, e.g. 80 or 8000-8080)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view ParamTypeName(ParamType type) {
  switch (type) {
    case ParamType::kString:
      return "string";
    case ParamType::kInt:
      return "integer";
    case ParamType::kBool:
      return "bool";
    case ParamType::kDuration:
      return "duration";
    case ParamType::kSize:
      return "size";
    case ParamType::kSizeOrPercent:
      return "size or percent";
    case ParamType::kPercent:
      return "percent";
    case ParamType::kRatio:
      return "ratio";
    case ParamType::kRate:
      return "rate";
    case ParamType::kEnum:
      return "enum";
    case ParamType::kCidrList:
      return "CIDR list";
    case ParamType::kPortList:
      return "port list";
    case ParamType::kStringList:
      return "string list";
    case ParamType::kSignal:
      return "signal";
    case ParamType::kRegex:
      return "regex";
  }
  return "?";
}

const ParamSpec* FaultKindInfo::Find(absl::string_view name) const {
  for (const ParamSpec& p : params) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

absl::Status ValidateParamValue(const ParamSpec& spec, absl::string_view value) {
  switch (spec.type) {
    case ParamType::kString:
    case ParamType::kStringList:
      if (value.empty()) return absl::InvalidArgumentError("must not be empty");
      return absl::OkStatus();
    case ParamType::kInt: {
      int64_t v = 0;
      if (!absl::SimpleAtoi(value, &v) || v < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("expected a non-negative integer, found \"", value, "\""));
      }
      return absl::OkStatus();
    }
    case ParamType::kBool:
      if (value == "true" || value == "false") return absl::OkStatus();
      return absl::InvalidArgumentError(
          absl::StrCat("expected true or false, found \"", value, "\""));
    case ParamType::kDuration:
      return ParseDuration(value).status();
    case ParamType::kSize:
      return ParseSize(value).status();
    case ParamType::kSizeOrPercent:
      return ParseSizeOrPercent(value).status();
    case ParamType::kPercent:
      return ParsePercent(value).status();
    case ParamType::kRatio:
      return ParseRatio(value).status();
    case ParamType::kRate:
      return ParseRate(value).status();
    case ParamType::kEnum:
      for (const std::string& c : spec.choices) {
        if (c == value) return absl::OkStatus();
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "expected one of ", absl::StrJoin(spec.choices, ", "), "; found \"", value, "\""));
    case ParamType::kCidrList:
      for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
        if (absl::Status s = ValidateCidr(absl::StripAsciiWhitespace(item)); !s.ok()) return s;
      }
      return absl::OkStatus();
    case ParamType::kPortList:
      for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
        item = absl::StripAsciiWhitespace(item);
        std::vector<absl::string_view> range = absl::StrSplit(item, absl::MaxSplits('-', 1));
        for (absl::string_view p : range) {
          if (absl::Status s = ValidatePort(p, item); !s.ok()) return s;
        }
      }
      return absl::OkStatus();
    case ParamType::kSignal:
      // Checked precisely by process faults (which know the signal table); here shape only.
      if (value.empty()) return absl::InvalidArgumentError("expected a signal, e.g. SIGKILL");
      return absl::OkStatus();
    case ParamType::kRegex:
      try {
        std::regex re{std::string(value), std::regex::ECMAScript};
      } catch (const std::regex_error& e) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid regular expression \"", value, "\": ", e.what()));
      }
      return absl::OkStatus();
  }
  return absl::InternalError("unknown parameter type");
}

std::optional<std::string> FaultSpec::Get(absl::string_view name) const {
  auto it = params.find(std::string(name));
  if (it != params.end()) return it->second;
  return std::nullopt;
}

}  // namespace chaosdrill
