// A log-linear latency histogram in the HDR style: values below 128 ns are counted exactly,
// above that each power of two is split into 128 sub-buckets, so any recorded value is
// reported within 1/256 (0.4 %) of itself. Merging two histograms adds bucket counts, so
// histograms from several runners merge exactly. Not thread-safe: one writer, or a lock.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/status/statusor.h"

namespace chaosdrill {

class LatencyHistogram {
 public:
  // Values are nanoseconds; negative values count as 0, values above kMaxValue as kMaxValue.
  static constexpr int64_t kMaxValue = int64_t{1} << 42;  // about 73 minutes

  void Record(int64_t value_ns, uint64_t count = 1);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  int64_t min() const { return count_ ? min_ : 0; }
  int64_t max() const { return count_ ? max_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }
  // The value at quantile q in [0, 1] (0.5 = median), as the midpoint of its bucket clamped
  // to [min, max]. 0 when empty.
  int64_t ValueAtQuantile(double q) const;

  // {"count":N,"min":..,"max":..,"sum":..,"buckets":[[index,count],...]} (sparse).
  nlohmann::json ToJson() const;
  static absl::StatusOr<LatencyHistogram> FromJson(const nlohmann::json& j);

  bool operator==(const LatencyHistogram& other) const = default;

 private:
  static int BucketIndex(int64_t value);
  static int64_t BucketLow(int index);
  static int64_t BucketHigh(int index);  // exclusive

  std::vector<uint64_t> counts_;  // grown on demand
  uint64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  int64_t sum_ = 0;  // nanoseconds; 600k requests of 73 min each still fit
};

}  // namespace chaosdrill
