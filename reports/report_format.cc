#include "reports/report_format.h"

#include <cmath>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/quantity.h"

namespace chaosdrill::reports {
namespace {

// Trims "1.50" to "1.5" and "2.00" to "2".
std::string Trim(std::string s) {
  if (s.find('.') == std::string::npos) return s;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string ThreeDigits(double v) {
  if (v >= 100) return absl::StrFormat("%.0f", v);
  if (v >= 10) return Trim(absl::StrFormat("%.1f", v));
  return Trim(absl::StrFormat("%.2f", v));
}

}  // namespace

std::string HumanDuration(int64_t ns) {
  if (ns < 0) return absl::StrCat("-", HumanDuration(-ns));
  if (ns == 0) return "0s";
  if (ns < 1'000) return absl::StrCat(ns, "ns");
  if (ns < 1'000'000) return absl::StrCat(ThreeDigits(ns / 1e3), "us");
  if (ns < 1'000'000'000) return absl::StrCat(ThreeDigits(ns / 1e6), "ms");
  if (ns < 60'000'000'000) return absl::StrCat(ThreeDigits(ns / 1e9), "s");
  int64_t s = ns / 1'000'000'000;
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s / 60) % 60);
}

std::string WithCommas(uint64_t n) {
  std::string digits = absl::StrCat(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string Rfc3339(int64_t unix_ns) {
  std::time_t secs = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  int64_t ms = (unix_ns % 1'000'000'000) / 1'000'000;
  if (unix_ns < 0) {
    secs = 0;
    ms = 0;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&#39;";
          break;
        case '\t':
        case '\n':
        case '\r':
          out.push_back(static_cast<char>(c));
          break;
        default:
          if (c >= 0x20 && c != 0x7f) out.push_back(static_cast<char>(c));
      }
      ++i;
      continue;
    }
    // Validate one UTF-8 sequence.
    int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    bool valid = len != 0 && i + len <= text.size();
    for (int k = 1; valid && k < len; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    if (valid && len == 2 && c < 0xC2) valid = false;  // overlong
    if (valid) {
      out.append(text.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string MarkdownCell(absl::string_view text) {
  std::string escaped = XmlEscape(text);
  std::string out;
  for (char c : escaped) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r' || c == '\t') {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

const SloVerdict* RtoVerdictFor(const AnalysisResult& analysis, absl::string_view fault) {
  std::string own = absl::StrCat("rto[", fault, "]");
  const SloVerdict* general = nullptr;
  for (const SloVerdict& v : analysis.slos) {
    if (v.name == own) return &v;
    if (v.name == "rto") general = &v;
  }
  return general;
}

std::optional<int64_t> TargetNs(const SloVerdict& verdict) {
  absl::StatusOr<absl::Duration> d = ParseDuration(verdict.target);
  if (!d.ok()) return std::nullopt;
  return absl::ToInt64Nanoseconds(*d);
}

std::string VerdictWords(ExitStatus status) {
  switch (status) {
    case ExitStatus::kPassed:
      return "passed";
    case ExitStatus::kSloFailed:
      return "SLO failed";
    case ExitStatus::kInvalid:
      return "invalid";
    case ExitStatus::kAborted:
      return "aborted";
    case ExitStatus::kInfraError:
      return "infrastructure error";
  }
  return "unknown";
}

std::string RecordVerdict(const RunRecord& record) {
  return record.in_progress ? kIncompleteVerdict : VerdictWords(record.exit_status);
}

const FaultResult* ResultFor(const RunRecord& record, size_t index) {
  const std::string& fault = record.faults.at(index).name;
  if (index < record.analysis.faults.size() && record.analysis.faults[index].name == fault) {
    return &record.analysis.faults[index];
  }
  for (const FaultResult& r : record.analysis.faults) {
    if (r.name == fault) return &r;
  }
  return nullptr;
}

std::string FaultOutcome(const RunRecord& record, const FaultEvent& fault,
                         const FaultResult* result, bool* ok) {
  *ok = false;
  if (fault.inject_failed) return absl::StrCat("could not be injected: ", fault.error);
  if (result == nullptr) return "not analysed";
  if (!result->impact) {
    *ok = true;
    return "had no impact";
  }
  if (!result->recovered) return "did not recover before the observe window ended";
  std::string text = absl::StrCat("recovered in ", HumanDuration(result->rto_ns));
  *ok = true;
  if (const SloVerdict* v = RtoVerdictFor(record.analysis, fault.name); v != nullptr) {
    if (std::optional<int64_t> target = TargetNs(*v)) {
      *ok = result->rto_ns <= *target;
      absl::StrAppend(&text, *ok ? " \xE2\x89\xA4 " : " > ", v->target);
    }
  }
  return text;
}

}  // namespace chaosdrill::reports
