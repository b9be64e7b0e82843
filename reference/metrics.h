// Metrics: a tiny thread-safe registry of counters and gauges by name and labels,
// rendered in the Prometheus text exposition format (version 0.0.4). The gateway, the
// session service and (later) the agent record into one and serve it with
// MetricsHttpServer. Names follow Prometheus conventions (counters end in _total).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace chaosdrill::reference {

class Metrics {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  enum class Type { kCounter, kGauge };

  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Declares a metric's type and help text (shown as # HELP / # TYPE). Optional: an
  // undeclared metric is rendered untyped.
  void Describe(const std::string& name, Type type, const std::string& help);
  // Adds `delta` to the series (created at 0). For counters and gauges.
  void Add(const std::string& name, const Labels& labels = {}, double delta = 1);
  void Set(const std::string& name, const Labels& labels, double value);
  // The series' current value, 0 if it does not exist (for tests and in-process readers).
  double Value(const std::string& name, const Labels& labels = {}) const;

  // The whole registry in Prometheus text format, families sorted by name.
  std::string RenderText() const;

 private:
  struct Family {
    std::string help;
    std::string type;                         // "counter", "gauge" or "untyped"
    std::map<std::string, double> by_labels;  // rendered "{a=\"b\"}" -> value
  };
  static std::string RenderLabels(const Labels& labels);

  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chaosdrill::reference
