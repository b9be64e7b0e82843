// TimeBuckets: the 10 ms counters of a request log, merged across runners and round-tripped
// through JSON.
#include "common/time_buckets.h"

#include <catch2/catch.hpp>

namespace chaosdrill {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST_CASE("a request lands in the bucket of its intended time, by outcome", "[common][buckets]") {
  TimeBuckets t;
  t.Add(0, 0, false, false);         // ok, bucket 0
  t.Add(9 * kMs, 14, false, false);  // UNAVAILABLE, bucket 0
  t.Add(10 * kMs, 4, true, false);   // timeout, bucket 1
  t.Add(25 * kMs, 0, false, true);   // wrong answer, bucket 2
  t.Add(-3, 99, false, false);       // negative time: bucket 0; unknown code counts as 2
  REQUIRE(t.buckets().size() == 3);
  CHECK(t.buckets()[0].count == 3);
  CHECK(t.buckets()[0].ok == 1);
  CHECK(t.buckets()[0].errors[14] == 1);
  CHECK(t.buckets()[0].errors[2] == 1);
  CHECK(t.buckets()[1].timeouts == 1);
  CHECK(t.buckets()[1].errors[4] == 1);
  CHECK(t.buckets()[2].wrong == 1);
  CHECK(t.total() == 5);
}

TEST_CASE("merging buckets equals recording the union, in either order", "[common][buckets]") {
  // Two runners' logs of different lengths: a short one and one that goes on longer.
  TimeBuckets a, b, both;
  for (int i = 0; i < 300; ++i) {
    int64_t t = i * 3 * kMs;
    int code = i % 7 == 0 ? 14 : 0;
    a.Add(t, code, false, i % 11 == 0);
    both.Add(t, code, false, i % 11 == 0);
  }
  for (int i = 0; i < 500; ++i) {
    int64_t t = i * 5 * kMs + 1;
    bool timeout = i % 13 == 0;
    b.Add(t, timeout ? 4 : 0, timeout, false);
    both.Add(t, timeout ? 4 : 0, timeout, false);
  }
  TimeBuckets ab = a, ba = b;
  ab.Merge(b);
  ba.Merge(a);
  CHECK(ab == both);
  CHECK(ba == both);
  CHECK(ab.total() == 800);
  // Merging an empty one changes nothing; the merge survives JSON.
  TimeBuckets empty;
  ab.Merge(empty);
  CHECK(ab == both);
  auto parsed = TimeBuckets::FromJson(ab.ToJson());
  REQUIRE(parsed.ok());
  CHECK(*parsed == both);
}

TEST_CASE("an inconsistent timeline is an error naming the bucket", "[common][buckets]") {
  TimeBuckets t;
  t.Add(0, 0, false, false);
  nlohmann::json j = t.ToJson();
  j["count"][0] = 2;
  auto parsed = TimeBuckets::FromJson(j);
  REQUIRE_FALSE(parsed.ok());
  CHECK(std::string(parsed.status().message()).find("bucket 0") != std::string::npos);
}

}  // namespace
}  // namespace chaosdrill
