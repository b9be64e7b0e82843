#include "injector/proxy_effect.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/quantity.h"

namespace chaosdrill::injector {

absl::string_view ProxyDirectionName(ProxyDirection direction) {
  switch (direction) {
    case ProxyDirection::kUpstream:
      return "upstream";
    case ProxyDirection::kDownstream:
      return "downstream";
    case ProxyDirection::kBoth:
      return "both";
  }
  return "both";
}

absl::StatusOr<ProxyDirection> ParseProxyDirection(absl::string_view text) {
  if (text == "upstream") return ProxyDirection::kUpstream;
  if (text == "downstream") return ProxyDirection::kDownstream;
  if (text == "both") return ProxyDirection::kBoth;
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text, "\" is not a direction (upstream, downstream or both)"));
}

bool DirectionCovers(ProxyDirection configured, ProxyDirection flow) {
  return configured == ProxyDirection::kBoth || configured == flow;
}

std::string ProxyEffect::Describe() const {
  std::string text;
  switch (type) {
    case Type::kLatency:
      text = absl::StrCat("latency ", DurationToString(latency));
      if (jitter > absl::ZeroDuration()) absl::StrAppend(&text, " +-", DurationToString(jitter));
      break;
    case Type::kBandwidth:
      text = absl::StrCat("bandwidth ", static_cast<uint64_t>(bytes_per_second), "B/s");
      break;
    case Type::kReset:
      text = absl::StrCat("reset ",
                          reset_target == ResetTarget::kNew        ? "new"
                          : reset_target == ResetTarget::kExisting ? "existing"
                                                                   : "all",
                          " connections");
      if (reset_after_bytes > 0) absl::StrAppend(&text, " after ", reset_after_bytes, "B");
      return probability < 1 ? absl::StrCat(text, " (p=", probability, ")") : text;
    case Type::kBlackhole:
      text = "blackhole";
      if (blackhole_timeout > absl::ZeroDuration()) {
        absl::StrAppend(&text, " closing after ", DurationToString(blackhole_timeout));
      }
      break;
    case Type::kSlicer:
      text = absl::StrCat("slicer ", slice_size, "B");
      if (slice_variation > 0) absl::StrAppend(&text, " +-", slice_variation, "B");
      absl::StrAppend(&text, " every ", DurationToString(slice_delay));
      break;
  }
  absl::StrAppend(&text, " ", ProxyDirectionName(direction));
  if (probability < 1) absl::StrAppend(&text, " (p=", probability, ")");
  return text;
}

absl::StatusOr<double> ParseByteRate(absl::string_view text) {
  constexpr absl::string_view kExpected =
      "expected bytes per second (1000000, 1MB/s, 512KiB/s) or bits per second (8Mbit, "
      "500kbit/s)";
  absl::string_view s = absl::StripAsciiWhitespace(text);
  absl::ConsumeSuffix(&s, "/s");
  std::string lower = absl::AsciiStrToLower(s);
  struct BitUnit {
    absl::string_view suffix;
    double bits;
  };
  static constexpr BitUnit kBitUnits[] = {{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}};
  double bytes_per_second = 0;
  bool matched_bits = false;
  for (const BitUnit& unit : kBitUnits) {
    if (absl::EndsWith(lower, unit.suffix)) {
      double value = 0;
      absl::string_view number = absl::StripAsciiWhitespace(
          absl::string_view(lower).substr(0, lower.size() - unit.suffix.size()));
      if (number.empty() || number.front() == '-' || !absl::SimpleAtod(number, &value) ||
          !std::isfinite(value)) {
        return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": ", kExpected));
      }
      bytes_per_second = value * unit.bits / 8;
      matched_bits = true;
      break;
    }
  }
  if (!matched_bits) {
    auto bytes = ParseSize(s);
    if (!bytes.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": ", kExpected));
    }
    bytes_per_second = static_cast<double>(*bytes);
  }
  if (!(bytes_per_second >= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\": must be at least 1 byte per second"));
  }
  if (bytes_per_second > 1e12) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": too large (at most 1TB/s)"));
  }
  return bytes_per_second;
}

}  // namespace chaosdrill::injector
