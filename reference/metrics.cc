#include "reference/metrics.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace chaosdrill::reference {
namespace {

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  return absl::StrCat(v);
}

}  // namespace

std::string Metrics::RenderLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ",";
    absl::StrAppend(&out, labels[i].first, "=\"", EscapeLabelValue(labels[i].second), "\"");
  }
  return out + "}";
}

void Metrics::Describe(const std::string& name, Type type, const std::string& help) {
  absl::MutexLock lock(&mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = type == Type::kCounter ? "counter" : "gauge";
}

void Metrics::Add(const std::string& name, const Labels& labels, double delta) {
  const std::string key = RenderLabels(labels);
  absl::MutexLock lock(&mu_);
  families_[name].by_labels[key] += delta;
}

void Metrics::Set(const std::string& name, const Labels& labels, double value) {
  const std::string key = RenderLabels(labels);
  absl::MutexLock lock(&mu_);
  families_[name].by_labels[key] = value;
}

double Metrics::Value(const std::string& name, const Labels& labels) const {
  const std::string key = RenderLabels(labels);
  absl::MutexLock lock(&mu_);
  auto f = families_.find(name);
  if (f == families_.end()) return 0;
  auto v = f->second.by_labels.find(key);
  return v == f->second.by_labels.end() ? 0 : v->second;
}

std::string Metrics::RenderText() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    if (!family.help.empty()) absl::StrAppend(&out, "# HELP ", name, " ", family.help, "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", family.type.empty() ? "untyped" : family.type,
                    "\n");
    for (const auto& [labels, value] : family.by_labels) {
      absl::StrAppend(&out, name, labels, " ", RenderValue(value), "\n");
    }
  }
  return out;
}

}  // namespace chaosdrill::reference
