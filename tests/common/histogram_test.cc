#include "common/histogram.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>

namespace chaosdrill {
namespace {

TEST_CASE("every recorded value is reported within 1% of itself", "[common][histogram]") {
  // One value at a time, across 1 ns .. ~70 min.
  for (double v = 1; v < 4e12; v *= 1.07) {
    LatencyHistogram h;
    int64_t value = static_cast<int64_t>(v);
    h.Record(value);
    INFO(value);
    int64_t got = h.ValueAtQuantile(0.5);
    CHECK(std::abs(got - value) <= std::max<double>(0, value * 0.01));
  }
}

TEST_CASE("quantiles of a known distribution", "[common][histogram]") {
  LatencyHistogram h;
  for (int64_t i = 1; i <= 10000; ++i) h.Record(i * 1000);  // 1 us .. 10 ms
  CHECK(h.count() == 10000);
  CHECK(h.min() == 1000);
  CHECK(h.max() == 10'000'000);
  CHECK(h.ValueAtQuantile(0.5) == Approx(5'000'000).epsilon(0.01));
  CHECK(h.ValueAtQuantile(0.99) == Approx(9'900'000).epsilon(0.01));
  CHECK(h.ValueAtQuantile(1.0) == Approx(10'000'000).epsilon(0.01));
  CHECK(h.mean() == Approx(5'000'500));
}

TEST_CASE("merging equals recording the union, and survives JSON", "[common][histogram]") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(15, 2);
  LatencyHistogram a, b, all;
  for (int i = 0; i < 20000; ++i) {
    int64_t v = static_cast<int64_t>(dist(rng));
    (i % 3 ? a : b).Record(v);
    all.Record(v);
  }
  LatencyHistogram merged = a;
  merged.Merge(b);
  CHECK(merged == all);
  auto back = LatencyHistogram::FromJson(merged.ToJson());
  REQUIRE(back.ok());
  CHECK(*back == all);
}

TEST_CASE("a corrupt histogram is an error, not a crash", "[common][histogram]") {
  CHECK_FALSE(LatencyHistogram::FromJson(nlohmann::json::parse("{}")).ok());
  auto bad_count =
      nlohmann::json::parse(R"({"count":3,"min":1,"max":1,"sum":1,"buckets":[[1,1]]})");
  CHECK_FALSE(LatencyHistogram::FromJson(bad_count).ok());
  auto bad_index =
      nlohmann::json::parse(R"({"count":1,"min":1,"max":1,"sum":1,"buckets":[[99999999,1]]})");
  CHECK_FALSE(LatencyHistogram::FromJson(bad_index).ok());
}

TEST_CASE("an empty histogram answers zeros", "[common][histogram]") {
  LatencyHistogram h;
  CHECK(h.ValueAtQuantile(0.99) == 0);
  CHECK(h.min() == 0);
  CHECK(h.mean() == 0);
}

}  // namespace
}  // namespace chaosdrill
