// Per-10 ms counters of a request log (DESIGN §7): how many requests were due in each
// bucket, how many succeeded, failed (by gRPC code), timed out or answered wrongly. A
// request lands in the bucket of its *intended* send time, so buckets line up with the
// open-loop schedule and with RTO (which is defined on intended times). Merging adds
// counters bucket by bucket, so buckets from several runners merge exactly. Not
// thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/status/statusor.h"

namespace chaosdrill {

class TimeBuckets {
 public:
  static constexpr int64_t kBucketNs = 10'000'000;  // 10 ms
  static constexpr int kCodes = 17;                 // gRPC status codes 0..16

  struct Bucket {
    uint64_t count = 0;
    uint64_t ok = 0;        // status OK and (where checked) the golden answer
    uint64_t timeouts = 0;  // missed the deadline (also counted in errors[code])
    uint64_t wrong = 0;     // OK status, but the answer differed from the golden one
    std::array<uint64_t, kCodes> errors{};  // non-OK by gRPC code (codes > 16 count as 2)
    bool operator==(const Bucket&) const = default;
  };

  // One request intended at `t_ns` (negative times count in bucket 0).
  void Add(int64_t t_ns, int code, bool timeout, bool wrong);
  void Merge(const TimeBuckets& other);

  const std::vector<Bucket>& buckets() const { return buckets_; }
  uint64_t total() const;

  // {"bucket_ns":10000000,"count":[..],"ok":[..],"timeouts":[..],"wrong":[..],
  //  "errors":{"14":[[index,n],..]}} — arrays dense over the buckets, errors sparse.
  nlohmann::json ToJson() const;
  // Strict: every array the same length, counts consistent (ok + errors + wrong = count).
  static absl::StatusOr<TimeBuckets> FromJson(const nlohmann::json& j);

  bool operator==(const TimeBuckets&) const = default;

 private:
  Bucket& At(int64_t t_ns);
  std::vector<Bucket> buckets_;
};

}  // namespace chaosdrill
