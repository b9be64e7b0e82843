#include "common/fault_spec.h"

#include <catch2/catch.hpp>
#include <string>

namespace chaosdrill {
namespace {

absl::Status Check(ParamType type, const char* value) {
  ParamSpec spec{.name = "p", .type = type};
  if (type == ParamType::kEnum) spec.choices = {"ingress", "egress", "both"};
  return ValidateParamValue(spec, value);
}

TEST_CASE("parameter values are checked against their declared type", "[common]") {
  CHECK(Check(ParamType::kInt, "3").ok());
  CHECK_FALSE(Check(ParamType::kInt, "-3").ok());
  CHECK_FALSE(Check(ParamType::kInt, "three").ok());
  CHECK(Check(ParamType::kBool, "true").ok());
  CHECK_FALSE(Check(ParamType::kBool, "yes").ok());
  CHECK(Check(ParamType::kDuration, "100ms").ok());
  CHECK_FALSE(Check(ParamType::kDuration, "100").ok());
  CHECK(Check(ParamType::kEnum, "egress").ok());
  CHECK_THAT(std::string(Check(ParamType::kEnum, "sideways").message()),
             Catch::Contains("expected one of ingress, egress, both"));
  CHECK(Check(ParamType::kCidrList, "10.0.0.0/24, 192.168.1.1,fd00::/8").ok());
  CHECK_THAT(std::string(Check(ParamType::kCidrList, "10.0.0.0/33").message()),
             Catch::Contains("invalid prefix length"));
  CHECK_THAT(std::string(Check(ParamType::kCidrList, "10.0.0.300").message()),
             Catch::Contains("not an IPv4/IPv6 address"));
  CHECK(Check(ParamType::kPortList, "80,8000-8080").ok());
  CHECK_FALSE(Check(ParamType::kPortList, "0").ok());
  CHECK_FALSE(Check(ParamType::kPortList, "70000").ok());
  CHECK(Check(ParamType::kRegex, "replica-[0-9]+").ok());
  CHECK_THAT(std::string(Check(ParamType::kRegex, "(unclosed").message()),
             Catch::Contains("invalid regular expression"));
  CHECK(Check(ParamType::kSizeOrPercent, "80%").ok());
  CHECK(Check(ParamType::kRatio, "0.5").ok());
  CHECK(Check(ParamType::kRate, "100/s").ok());
  CHECK(Check(ParamType::kPercent, "30%").ok());
}

TEST_CASE("a kind's parameter description is searchable by name", "[common]") {
  FaultKindInfo info{.kind = "network.netem",
                     .summary = "delay",
                     .params = {{.name = "delay", .type = ParamType::kDuration}}};
  REQUIRE(info.Find("delay") != nullptr);
  CHECK(info.Find("delay")->type == ParamType::kDuration);
  CHECK(info.Find("jitter") == nullptr);
  FaultSpec spec{.kind = "network.netem", .params = {{"delay", "100ms"}}};
  CHECK(spec.Get("delay") == "100ms");
  CHECK_FALSE(spec.Get("loss").has_value());
}

}  // namespace
}  // namespace chaosdrill
