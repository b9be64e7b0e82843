#include "tests/scenarios/test_catalog.h"

namespace chaosdrill::scenarios::testing {
namespace {

std::vector<ParamSpec> ProcessSelector() {
  return {
      {.name = "pid", .type = ParamType::kInt},
      {.name = "exe", .type = ParamType::kRegex},
      {.name = "cmdline", .type = ParamType::kRegex},
      {.name = "cgroup", .type = ParamType::kString},
      {.name = "count", .type = ParamType::kInt},
      {.name = "percent", .type = ParamType::kPercent},
  };
}

FaultKindInfo Proxy(std::string kind, std::vector<ParamSpec> extra) {
  FaultKindInfo info{.kind = std::move(kind), .summary = "proxy"};
  info.params = {{.name = "listen", .type = ParamType::kString, .required = true},
                 {.name = "upstream", .type = ParamType::kString, .required = true}};
  for (ParamSpec& p : extra) info.params.push_back(std::move(p));
  info.params.push_back({.name = "probability", .type = ParamType::kRatio});
  info.params.push_back({.name = "direction",
                         .type = ParamType::kEnum,
                         .choices = {"upstream", "downstream", "both"}});
  return info;
}

std::vector<FaultKindInfo> Build() {
  std::vector<FaultKindInfo> c;
  FaultKindInfo kill{.kind = "process.kill", .summary = "kill", .takes_duration = false};
  kill.params = ProcessSelector();
  kill.params.push_back({.name = "signal", .type = ParamType::kSignal});
  c.push_back(kill);
  FaultKindInfo pause{.kind = "process.pause", .summary = "pause"};
  pause.params = ProcessSelector();
  c.push_back(pause);
  c.push_back({.kind = "stress.cpu",
               .summary = "cpu",
               .params = {{.name = "cores", .type = ParamType::kInt},
                          {.name = "load", .type = ParamType::kPercent},
                          {.name = "cgroup", .type = ParamType::kString}}});
  c.push_back({.kind = "stress.memory",
               .summary = "memory",
               .params = {{.name = "size", .type = ParamType::kSizeOrPercent, .required = true},
                          {.name = "lock", .type = ParamType::kBool},
                          {.name = "cgroup", .type = ParamType::kString}}});
  c.push_back({.kind = "network.netem",
               .summary = "netem",
               .params = {{.name = "interface", .type = ParamType::kString, .required = true},
                          {.name = "delay", .type = ParamType::kDuration},
                          {.name = "jitter", .type = ParamType::kDuration},
                          {.name = "correlation", .type = ParamType::kPercent},
                          {.name = "loss", .type = ParamType::kPercent},
                          {.name = "duplicate", .type = ParamType::kPercent},
                          {.name = "corrupt", .type = ParamType::kPercent},
                          {.name = "reorder", .type = ParamType::kPercent},
                          {.name = "rate", .type = ParamType::kString},
                          {.name = "limit", .type = ParamType::kInt},
                          {.name = "parent", .type = ParamType::kString}}});
  c.push_back({.kind = "network.bandwidth",
               .summary = "tbf",
               .params = {{.name = "interface", .type = ParamType::kString, .required = true},
                          {.name = "rate", .type = ParamType::kString, .required = true},
                          {.name = "burst", .type = ParamType::kSize},
                          {.name = "latency", .type = ParamType::kDuration}}});
  c.push_back(
      {.kind = "network.partition",
       .summary = "nft",
       .params = {{.name = "cidrs", .type = ParamType::kCidrList},
                  {.name = "ports", .type = ParamType::kPortList},
                  {.name = "direction",
                   .type = ParamType::kEnum,
                   .choices = {"ingress", "egress", "both"}},
                  {.name = "protocol", .type = ParamType::kEnum, .choices = {"tcp", "udp", "any"}},
                  {.name = "loss", .type = ParamType::kPercent},
                  {.name = "interface", .type = ParamType::kString}}});
  c.push_back(Proxy("proxy.latency",
                    {{.name = "latency", .type = ParamType::kDuration, .required = true}}));
  c.push_back(
      Proxy("proxy.jitter", {{.name = "jitter", .type = ParamType::kDuration, .required = true},
                             {.name = "latency", .type = ParamType::kDuration}}));
  c.push_back(
      Proxy("proxy.reset",
            {{.name = "target", .type = ParamType::kEnum, .choices = {"new", "existing", "all"}},
             {.name = "after", .type = ParamType::kDuration}}));
  c.push_back({.kind = "gpu.memory_pressure",
               .summary = "gpu",
               .params = {{.name = "device", .type = ParamType::kInt},
                          {.name = "size", .type = ParamType::kSize},
                          {.name = "fraction", .type = ParamType::kRatio},
                          {.name = "leave_free", .type = ParamType::kSize}}});
  FaultKindInfo degrade{.kind = "reference.degrade", .summary = "degrade"};
  degrade.params = ProcessSelector();
  degrade.params.push_back(
      {.name = "mode", .type = ParamType::kEnum, .choices = {"wrong-answers", "errors", "slow"}});
  c.push_back(degrade);
  return c;
}

}  // namespace

const std::vector<FaultKindInfo>& TestCatalog() {
  static const std::vector<FaultKindInfo> kCatalog = Build();
  return kCatalog;
}

}  // namespace chaosdrill::scenarios::testing
