#include "common/quantity.h"

#include <catch2/catch.hpp>
#include <string>

namespace chaosdrill {
namespace {

TEST_CASE("durations parse in every unit and compound form", "[common]") {
  struct Case {
    const char* text;
    absl::Duration want;
  };
  const Case cases[] = {
      {"250ms", absl::Milliseconds(250)},
      {"1.5s", absl::Milliseconds(1500)},
      {"2m", absl::Minutes(2)},
      {"1h", absl::Hours(1)},
      {"1h30m", absl::Minutes(90)},
      {"10us", absl::Microseconds(10)},
      {"10µs", absl::Microseconds(10)},
      {"7ns", absl::Nanoseconds(7)},
      {"0", absl::ZeroDuration()},
      {"0s", absl::ZeroDuration()},
      {" 3s ", absl::Seconds(3)},
      {".5s", absl::Milliseconds(500)},
      {"1m0.5s", absl::Milliseconds(60500)},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto d = ParseDuration(c.text);
    REQUIRE(d.ok());
    CHECK(*d == c.want);
  }
}

TEST_CASE("bad durations are rejected with a message that says why", "[common]") {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"", "empty"},
      {"   ", "empty"},
      {"-5s", "must not be negative"},
      {"10", "missing unit after 10"},
      {"10x", "unknown unit \"x\""},
      {"ten seconds", "expected a number and a unit"},
      {"5 s", "unknown unit \" s\""},
      {"1e3ms", "unknown unit \"e\""},
      {"s", "expected a number"},
      {"1..5s", "expected a number"},
      {"999999999999h", "too large"},
      {"nan", "expected a number"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto d = ParseDuration(c.text);
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(d.status().message()), Catch::Contains(c.message));
  }
}

TEST_CASE("durations format back to what parses to the same value", "[common]") {
  for (const char* text : {"250ms", "1.5s", "2m", "1h30m", "10us", "7ns", "0s", "1h0m5s"}) {
    INFO(text);
    auto d = ParseDuration(text);
    REQUIRE(d.ok());
    auto again = ParseDuration(DurationToString(*d));
    REQUIRE(again.ok());
    CHECK(*again == *d);
  }
  CHECK(DurationToString(absl::Milliseconds(250)) == "250ms");
  CHECK(DurationToString(absl::Milliseconds(1500)) == "1.5s");
  CHECK(DurationToString(absl::Minutes(90)) == "1h30m");
}

TEST_CASE("sizes parse in decimal and binary units", "[common]") {
  struct Case {
    const char* text;
    uint64_t want;
  };
  const Case cases[] = {
      {"4096", 4096},       {"4096B", 4096},          {"1KB", 1000},
      {"1kB", 1000},        {"64KiB", 65536},         {"512MiB", 512ull << 20},
      {"2GiB", 2ull << 30}, {"1.5GB", 1'500'000'000}, {"1TiB", 1ull << 40},
      {"0.5KiB", 512},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto s = ParseSize(c.text);
    REQUIRE(s.ok());
    CHECK(*s == c.want);
  }
}

TEST_CASE("bad sizes are rejected with a message that says why", "[common]") {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"", "empty"},
      {"-1MiB", "must not be negative"},
      {"12 parsecs", "unknown unit \"parsecs\""},
      {"MiB", "expected a number"},
      {"1.3B", "not a whole number of bytes"},
      {"99999999999TiB", "too large"},
      {"80%", "percentage is not allowed"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto s = ParseSize(c.text);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(std::string(s.status().message()), Catch::Contains(c.message));
  }
}

TEST_CASE("a size may be a percentage of a base known later", "[common]") {
  auto pct = ParseSizeOrPercent("80%");
  REQUIRE(pct.ok());
  CHECK_FALSE(pct->bytes.has_value());
  CHECK(pct->Resolve(1000) == 800);
  auto abs = ParseSizeOrPercent("1KiB");
  REQUIRE(abs.ok());
  CHECK(abs->Resolve(1'000'000) == 1024);
  CHECK_FALSE(ParseSizeOrPercent("0%").ok());
  CHECK_FALSE(ParseSizeOrPercent("101%").ok());
  CHECK_FALSE(ParseSizeOrPercent("-5%").ok());
}

TEST_CASE("rates are events per second", "[common]") {
  CHECK(*ParseRate("200/s") == 200);
  CHECK(*ParseRate("200") == 200);
  CHECK(*ParseRate("0") == 0);
  CHECK(*ParseRate("12/m") == Approx(0.2));
  CHECK(*ParseRate("3600/h") == Approx(1));
  CHECK(*ParseRate("0.5/s") == 0.5);
  CHECK_THAT(std::string(ParseRate("-3/s").status().message()),
             Catch::Contains("must not be negative"));
  CHECK_THAT(std::string(ParseRate("fast").status().message()), Catch::Contains("expected"));
  CHECK_THAT(std::string(ParseRate("5/fortnight").status().message()),
             Catch::Contains("unknown unit"));
  CHECK_THAT(std::string(ParseRate("99999999999/s").status().message()),
             Catch::Contains("too large"));
}

TEST_CASE("percentages and ratios stay in range", "[common]") {
  CHECK(*ParsePercent("30%") == 30);
  CHECK(*ParsePercent("30") == 30);
  CHECK(*ParsePercent("2.5%") == 2.5);
  CHECK(*ParsePercent("100%") == 100);
  CHECK_FALSE(ParsePercent("101%").ok());
  CHECK_FALSE(ParsePercent("-1%").ok());
  CHECK_FALSE(ParsePercent("30%%").ok());
  CHECK(*ParseRatio("0.99") == 0.99);
  CHECK(*ParseRatio("1") == 1);
  CHECK(*ParseRatio("99%") == Approx(0.99));
  CHECK_FALSE(ParseRatio("1.01").ok());
  CHECK_FALSE(ParseRatio("-0.5").ok());
  CHECK_FALSE(ParseRatio("half").ok());
}

}  // namespace
}  // namespace chaosdrill
