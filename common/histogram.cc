#include "common/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace chaosdrill {
namespace {

constexpr int kSubBits = 7;
constexpr int64_t kSub = int64_t{1} << kSubBits;  // 128 sub-buckets per power of two

}  // namespace

int LatencyHistogram::BucketIndex(int64_t v) {
  if (v < kSub) return static_cast<int>(v);
  int e = 63 - std::countl_zero(static_cast<uint64_t>(v));  // floor(log2 v) >= kSubBits
  int shift = e - kSubBits;
  int64_t sub = (v >> shift) - kSub;  // [0, kSub)
  return static_cast<int>(kSub + int64_t{shift} * kSub + sub);
}

int64_t LatencyHistogram::BucketLow(int index) {
  if (index < kSub) return index;
  int shift = (index - kSub) / kSub;
  int64_t sub = (index - kSub) % kSub;
  return (kSub + sub) << shift;
}

int64_t LatencyHistogram::BucketHigh(int index) {
  if (index < kSub) return index + 1;
  int shift = (index - kSub) / kSub;
  return BucketLow(index) + (int64_t{1} << shift);
}

void LatencyHistogram::Record(int64_t value_ns, uint64_t count) {
  if (count == 0) return;
  int64_t v = std::clamp<int64_t>(value_ns, 0, kMaxValue);
  size_t index = static_cast<size_t>(BucketIndex(v));
  if (index >= counts_.size()) counts_.resize(index + 1, 0);
  counts_[index] += count;
  if (count_ == 0) {
    min_ = max_ = v;
  } else {
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }
  count_ += count;
  sum_ += v * static_cast<int64_t>(count);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  if (other.counts_.size() > counts_.size()) counts_.resize(other.counts_.size(), 0);
  for (size_t i = 0; i < other.counts_.size(); ++i) counts_[i] += other.counts_[i];
  if (count_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  count_ += other.count_;
  sum_ += other.sum_;
}

int64_t LatencyHistogram::ValueAtQuantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank-th smallest value (1-based), nearest-rank definition.
  uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * count_)));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      int index = static_cast<int>(i);
      int64_t mid =
          index < kSub ? index : BucketLow(index) + (BucketHigh(index) - BucketLow(index)) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

nlohmann::json LatencyHistogram::ToJson() const {
  nlohmann::json buckets = nlohmann::json::array();
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] != 0) buckets.push_back({i, counts_[i]});
  }
  return {{"count", count_}, {"min", min()}, {"max", max()}, {"sum", sum_}, {"buckets", buckets}};
}

absl::StatusOr<LatencyHistogram> LatencyHistogram::FromJson(const nlohmann::json& j) {
  LatencyHistogram h;
  try {
    uint64_t total = 0;
    for (const auto& b : j.at("buckets")) {
      int64_t index = b.at(0).get<int64_t>();
      uint64_t n = b.at(1).get<uint64_t>();
      if (index < 0 || index > BucketIndex(kMaxValue)) {
        return absl::InvalidArgumentError(
            absl::StrCat("histogram bucket index ", index, " out of range"));
      }
      if (static_cast<size_t>(index) >= h.counts_.size()) h.counts_.resize(index + 1, 0);
      h.counts_[index] += n;
      total += n;
    }
    h.count_ = j.at("count").get<uint64_t>();
    if (h.count_ != total) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram count ", h.count_, " != sum of buckets ", total));
    }
    h.min_ = j.at("min").get<int64_t>();
    h.max_ = j.at("max").get<int64_t>();
    h.sum_ = j.at("sum").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed histogram: ", e.what()));
  }
  return h;
}

}  // namespace chaosdrill
