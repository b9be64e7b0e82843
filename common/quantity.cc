#include "common/quantity.h"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace chaosdrill {
namespace {

absl::Status Invalid(absl::string_view what, absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid ", what, " \"", text, "\": ", why));
}

// Splits a leading unsigned decimal ("12", "1.5", ".5") off `s`. Signs and exponents are
// not accepted: quantities are written by people, and "1e3ms" is more likely a typo.
bool TakeDecimal(absl::string_view& s, double& value, absl::string_view& digits) {
  size_t n = 0;
  bool any_digit = false;
  while (n < s.size() && absl::ascii_isdigit(s[n])) ++n, any_digit = true;
  if (n < s.size() && s[n] == '.') {
    ++n;
    while (n < s.size() && absl::ascii_isdigit(s[n])) ++n, any_digit = true;
  }
  if (!any_digit) return false;
  digits = s.substr(0, n);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return false;
  s.remove_prefix(n);
  return true;
}

// Common front matter: trims, rejects empty and negative input with the right message.
absl::StatusOr<absl::string_view> Prepare(absl::string_view what, absl::string_view text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  if (s.empty()) return Invalid(what, text, "empty");
  if (s.front() == '-') return Invalid(what, text, "must not be negative");
  if (s.front() == '+') s.remove_prefix(1);
  return s;
}

struct Unit {
  absl::string_view name;
  long double scale;
};

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text) {
  static constexpr std::array<Unit, 7> kUnits = {
      {{"ns", 1}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}}};
  constexpr absl::string_view kExpected =
      "expected a number and a unit (ns, us, ms, s, m, h), e.g. 250ms, 1.5s, 2m";
  auto prepared = Prepare("duration", text);
  if (!prepared.ok()) return prepared.status();
  absl::string_view s = *prepared;
  if (s == "0") return absl::ZeroDuration();
  long double total_ns = 0;
  while (!s.empty()) {
    double value = 0;
    absl::string_view digits;
    if (!TakeDecimal(s, value, digits)) return Invalid("duration", text, kExpected);
    size_t n = 0;
    while (n < s.size() && !absl::ascii_isdigit(s[n]) && s[n] != '.') ++n;
    absl::string_view unit = s.substr(0, n);
    s.remove_prefix(n);
    if (unit.empty()) {
      return Invalid("duration", text,
                     absl::StrCat("missing unit after ", digits, "; ", kExpected));
    }
    const Unit* found = nullptr;
    for (const Unit& u : kUnits) {
      if (u.name == unit) found = &u;
    }
    if (found == nullptr) {
      return Invalid("duration", text,
                     absl::StrCat("unknown unit \"", unit, "\" (use ns, us, ms, s, m, h)"));
    }
    total_ns += static_cast<long double>(value) * found->scale;
  }
  constexpr long double kMaxNs = 100.0L * 365 * 24 * 3600 * 1e9;
  if (!(total_ns <= kMaxNs)) return Invalid("duration", text, "too large (at most 100 years)");
  return absl::Nanoseconds(static_cast<int64_t>(std::llround(total_ns)));
}

std::string DurationToString(absl::Duration d) {
  if (d == absl::ZeroDuration()) return "0s";
  std::string sign;
  if (d < absl::ZeroDuration()) sign = "-", d = -d;
  int64_t ns = absl::ToInt64Nanoseconds(d);
  auto trim = [](double v) {
    std::string s = absl::StrFormat("%.3f", v);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
  };
  if (ns % 1'000'000'000 == 0 && ns >= 60'000'000'000) {
    int64_t secs = ns / 1'000'000'000;
    std::string out = sign;
    if (secs >= 3600) absl::StrAppend(&out, secs / 3600, "h"), secs %= 3600;
    if (secs >= 60) absl::StrAppend(&out, secs / 60, "m"), secs %= 60;
    if (secs > 0) absl::StrAppend(&out, secs, "s");
    return out;
  }
  if (ns >= 1'000'000'000 && ns % 1'000'000 == 0) return sign + trim(ns / 1e9) + "s";
  if (ns >= 1'000'000 && ns % 1'000 == 0) return sign + trim(ns / 1e6) + "ms";
  if (ns >= 1'000) return sign + trim(ns / 1e3) + "us";
  return absl::StrCat(sign, ns, "ns");
}

uint64_t SizeSpec::Resolve(uint64_t base) const {
  if (bytes) return *bytes;
  return static_cast<uint64_t>(std::floor(static_cast<long double>(base) * fraction));
}

std::string SizeSpec::ToString() const {
  if (bytes) return absl::StrCat(*bytes, "B");
  return absl::StrCat(fraction * 100, "%");
}

absl::StatusOr<uint64_t> ParseSize(absl::string_view text) {
  static constexpr std::array<Unit, 11> kUnits = {{{"B", 1},
                                                   {"kB", 1e3},
                                                   {"KB", 1e3},
                                                   {"MB", 1e6},
                                                   {"GB", 1e9},
                                                   {"TB", 1e12},
                                                   {"KiB", 1024.0L},
                                                   {"MiB", 1024.0L * 1024},
                                                   {"GiB", 1024.0L * 1024 * 1024},
                                                   {"TiB", 1024.0L * 1024 * 1024 * 1024},
                                                   {"", 1}}};
  auto prepared = Prepare("size", text);
  if (!prepared.ok()) return prepared.status();
  absl::string_view s = *prepared;
  double value = 0;
  absl::string_view digits;
  if (!TakeDecimal(s, value, digits)) {
    return Invalid("size", text,
                   "expected a number and a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 512MiB");
  }
  absl::string_view unit = absl::StripAsciiWhitespace(s);
  if (unit == "%")
    return Invalid("size", text, "a percentage is not allowed here; give bytes, e.g. 512MiB");
  for (const Unit& u : kUnits) {
    if (u.name != unit) continue;
    long double bytes = static_cast<long double>(value) * u.scale;
    if (bytes > static_cast<long double>(std::numeric_limits<int64_t>::max())) {
      return Invalid("size", text, "too large (at most 8 EiB)");
    }
    if (std::floor(bytes) != bytes) return Invalid("size", text, "not a whole number of bytes");
    return static_cast<uint64_t>(bytes);
  }
  return Invalid(
      "size", text,
      absl::StrCat("unknown unit \"", unit, "\" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"));
}

absl::StatusOr<SizeSpec> ParseSizeOrPercent(absl::string_view text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  if (!s.empty() && s.back() == '%') {
    auto pct = ParsePercent(s);
    if (!pct.ok()) return pct.status();
    if (*pct <= 0) return Invalid("size", text, "a percentage must be above 0%");
    return SizeSpec{.bytes = std::nullopt, .fraction = *pct / 100.0};
  }
  auto bytes = ParseSize(text);
  if (!bytes.ok()) return bytes.status();
  return SizeSpec{.bytes = *bytes, .fraction = 0};
}

absl::StatusOr<double> ParseRate(absl::string_view text) {
  auto prepared = Prepare("rate", text);
  if (!prepared.ok()) return prepared.status();
  absl::string_view s = *prepared;
  double value = 0;
  absl::string_view digits;
  constexpr absl::string_view kExpected =
      "expected events per unit of time, e.g. 200/s, 12/m, 3600/h";
  if (!TakeDecimal(s, value, digits)) return Invalid("rate", text, kExpected);
  s = absl::StripAsciiWhitespace(s);
  double per_second = value;
  if (s.empty() || s == "/s" || s == "/sec") {
  } else if (s == "/m" || s == "/min") {
    per_second = value / 60;
  } else if (s == "/h") {
    per_second = value / 3600;
  } else {
    return Invalid("rate", text, absl::StrCat("unknown unit \"", s, "\"; ", kExpected));
  }
  if (!std::isfinite(per_second) || per_second > 1e9) {
    return Invalid("rate", text, "too large (at most 1e9/s)");
  }
  return per_second;
}

absl::StatusOr<double> ParsePercent(absl::string_view text) {
  auto prepared = Prepare("percentage", text);
  if (!prepared.ok()) return prepared.status();
  absl::string_view s = *prepared;
  double value = 0;
  absl::string_view digits;
  if (!TakeDecimal(s, value, digits) || !(s.empty() || s == "%")) {
    return Invalid("percentage", text, "expected a number from 0 to 100, e.g. 30%");
  }
  if (value > 100) return Invalid("percentage", text, "must be at most 100%");
  return value;
}

absl::StatusOr<double> ParseRatio(absl::string_view text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  if (!s.empty() && s.back() == '%') {
    auto pct = ParsePercent(s);
    if (!pct.ok()) return Invalid("ratio", text, "expected 0..1 or 0%..100%, e.g. 0.99 or 99%");
    return *pct / 100.0;
  }
  auto prepared = Prepare("ratio", text);
  if (!prepared.ok()) return prepared.status();
  s = *prepared;
  double value = 0;
  absl::string_view digits;
  if (!TakeDecimal(s, value, digits) || !s.empty()) {
    return Invalid("ratio", text, "expected a number from 0 to 1, e.g. 0.99, or a percentage");
  }
  if (value > 1) return Invalid("ratio", text, "must be at most 1 (or 100%)");
  return value;
}

}  // namespace chaosdrill
