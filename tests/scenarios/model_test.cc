// Small pieces of the scenario model: roles, "did you mean", error formatting.
#include <catch2/catch.hpp>

#include "scenarios/did_you_mean.h"
#include "scenarios/role.h"
#include "scenarios/validation_error.h"

namespace chaosdrill::scenarios {
namespace {

TEST_CASE("roles parse in every documented form", "[scenarios]") {
  CHECK(ParseRole("gateway")->kind == Role::Kind::kGateway);
  CHECK(ParseRole("store.primary")->kind == Role::Kind::kStorePrimary);
  CHECK(ParseRole("store.replica")->kind == Role::Kind::kStoreReplica);
  CHECK(ParseRole("replica[2]")->index == 2);
  CHECK(ParseRole("sentinel[0]")->kind == Role::Kind::kSentinel);
  CHECK(ParseRole("replica")->is_family());
  CHECK_FALSE(ParseRole("replica[1]")->is_family());
  for (const char* bad : {"", "replica[", "replica[]", "replica[-1]", "replica[1x]", "replica 1",
                          "Gateway", "store", "gateway[0]", "replica[99999999999]"}) {
    INFO(bad);
    CHECK_FALSE(ParseRole(bad).ok());
  }
  for (const char* text : {"gateway", "replica", "replica[3]", "sentinel[1]", "store.replica"}) {
    CHECK(ParseRole(text)->ToString() == text);
  }
}

TEST_CASE("role indices are checked against the service's size", "[scenarios]") {
  CHECK(CheckRoleExists(*ParseRole("replica[2]"), 3).ok());
  CHECK(CheckRoleExists(*ParseRole("replica[3]"), 3).code() == absl::StatusCode::kOutOfRange);
  CHECK(CheckRoleExists(*ParseRole("sentinel[2]"), 1).ok());
  CHECK_FALSE(CheckRoleExists(*ParseRole("sentinel[3]"), 10).ok());
  CHECK(CheckRoleExists(*ParseRole("replica"), 1).ok());
}

TEST_CASE("edit distance and suggestions", "[scenarios]") {
  CHECK(EditDistance("", "") == 0);
  CHECK(EditDistance("rate", "rat") == 1);
  CHECK(EditDistance("timeout", "timout") == 1);
  CHECK(EditDistance("kitten", "sitting") == 3);
  CHECK(ClosestMatch("timout", {"rate", "timeout"}) == "timeout");
  CHECK(ClosestMatch("Rate", {"rate"}) == "rate");
  CHECK_FALSE(ClosestMatch("zzzz", {"rate", "timeout"}).has_value());
  CHECK_FALSE(ClosestMatch("ab", {"xy"}).has_value());
  CHECK_FALSE(ClosestMatch(std::string(100, 'a'), {"a"}).has_value());
  CHECK(DidYouMean("fautls", {"faults", "load"}) == " did you mean \"faults\"?");
  CHECK(DidYouMean("qqqqqq", {"faults"}).empty());
}

TEST_CASE("errors print as FILE:LINE:COL: path: message", "[scenarios]") {
  ValidationError e{"a.yaml", {3, 7}, "load.rate", "expected a rate"};
  CHECK(e.ToString() == "a.yaml:3:7: load.rate: expected a rate");
  ValidationError whole{"b.yaml", {}, "(file)", "too big"};
  CHECK(whole.ToString() == "b.yaml:1:1: (file): too big");
}

TEST_CASE("errors touching a field suppress dependent checks", "[scenarios]") {
  ValidationErrors errors("f");
  errors.Add({1, 1}, "faults[1].target", "x");
  CHECK(errors.TouchesError("faults[1].target"));
  CHECK(errors.TouchesError("faults[1].target.role"));
  CHECK(errors.TouchesError("faults[1]"));
  CHECK_FALSE(errors.TouchesError("faults[1].at"));
  CHECK_FALSE(errors.TouchesError("faults[10].target"));
  CHECK_FALSE(
      errors.TouchesError("faults"
                          "[2]"));
}

}  // namespace
}  // namespace chaosdrill::scenarios
