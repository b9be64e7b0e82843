#include "common/time_buckets.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace chaosdrill {

TimeBuckets::Bucket& TimeBuckets::At(int64_t t_ns) {
  size_t index = t_ns < 0 ? 0 : static_cast<size_t>(t_ns / kBucketNs);
  if (index >= buckets_.size()) buckets_.resize(index + 1);
  return buckets_[index];
}

void TimeBuckets::Add(int64_t t_ns, int code, bool timeout, bool wrong) {
  Bucket& b = At(t_ns);
  ++b.count;
  if (code != 0) {
    ++b.errors[code > 0 && code < kCodes ? code : 2];  // 2 = UNKNOWN
  } else if (wrong) {
    ++b.wrong;
  } else {
    ++b.ok;
  }
  if (timeout) ++b.timeouts;
}

void TimeBuckets::Merge(const TimeBuckets& other) {
  if (other.buckets_.size() > buckets_.size()) buckets_.resize(other.buckets_.size());
  for (size_t i = 0; i < other.buckets_.size(); ++i) {
    Bucket& b = buckets_[i];
    const Bucket& o = other.buckets_[i];
    b.count += o.count;
    b.ok += o.ok;
    b.timeouts += o.timeouts;
    b.wrong += o.wrong;
    for (int c = 0; c < kCodes; ++c) b.errors[c] += o.errors[c];
  }
}

uint64_t TimeBuckets::total() const {
  uint64_t n = 0;
  for (const Bucket& b : buckets_) n += b.count;
  return n;
}

nlohmann::json TimeBuckets::ToJson() const {
  nlohmann::json count = nlohmann::json::array(), ok = nlohmann::json::array(),
                 timeouts = nlohmann::json::array(), wrong = nlohmann::json::array(),
                 errors = nlohmann::json::object();
  for (size_t i = 0; i < buckets_.size(); ++i) {
    const Bucket& b = buckets_[i];
    count.push_back(b.count);
    ok.push_back(b.ok);
    timeouts.push_back(b.timeouts);
    wrong.push_back(b.wrong);
    for (int c = 1; c < kCodes; ++c) {
      if (b.errors[c] == 0) continue;
      nlohmann::json& list = errors[std::to_string(c)];
      if (list.is_null()) list = nlohmann::json::array();
      list.push_back({i, b.errors[c]});
    }
  }
  return {{"bucket_ns", kBucketNs}, {"count", count}, {"ok", ok},
          {"timeouts", timeouts},   {"wrong", wrong}, {"errors", errors}};
}

absl::StatusOr<TimeBuckets> TimeBuckets::FromJson(const nlohmann::json& j) {
  TimeBuckets t;
  try {
    if (!j.is_object()) return absl::InvalidArgumentError("timeline: expected an object");
    if (j.at("bucket_ns").get<int64_t>() != kBucketNs) {
      return absl::InvalidArgumentError(absl::StrCat("timeline.bucket_ns: expected ", kBucketNs,
                                                     ", got ", j.at("bucket_ns").dump()));
    }
    const nlohmann::json& count = j.at("count");
    size_t n = count.size();
    for (const char* key : {"count", "ok", "timeouts", "wrong"}) {
      if (!j.at(key).is_array() || j.at(key).size() != n) {
        return absl::InvalidArgumentError(
            absl::StrCat("timeline.", key, ": expected an array of ", n, " counts"));
      }
    }
    t.buckets_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      Bucket& b = t.buckets_[i];
      b.count = count[i].get<uint64_t>();
      b.ok = j["ok"][i].get<uint64_t>();
      b.timeouts = j["timeouts"][i].get<uint64_t>();
      b.wrong = j["wrong"][i].get<uint64_t>();
    }
    for (const auto& [code, list] : j.at("errors").items()) {
      int c = -1;
      try {
        c = std::stoi(code);
      } catch (const std::exception&) {
      }
      if (c < 1 || c >= kCodes || std::to_string(c) != code) {
        return absl::InvalidArgumentError(
            absl::StrCat("timeline.errors.", code, ": not a gRPC error code 1..16"));
      }
      for (const auto& entry : list) {
        size_t index = entry.at(0).get<size_t>();
        if (index >= n) {
          return absl::InvalidArgumentError(
              absl::StrCat("timeline.errors.", code, ": bucket ", index, " out of range"));
        }
        t.buckets_[index].errors[c] += entry.at(1).get<uint64_t>();
      }
    }
    for (size_t i = 0; i < n; ++i) {
      const Bucket& b = t.buckets_[i];
      uint64_t sum = b.ok + b.wrong;
      for (uint64_t e : b.errors) sum += e;
      if (sum != b.count || b.timeouts > b.count) {
        return absl::InvalidArgumentError(absl::StrCat(
            "timeline bucket ", i, ": ok + wrong + errors = ", sum, " but count = ", b.count));
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed timeline: ", e.what()));
  }
  return t;
}

}  // namespace chaosdrill
