// TargetPolicy in-process: the kind's defaults are checked like given parameters, GPU
// sizes in bytes are judged against the device's memory, an interface-less partition does
// not get past the control-interface rule, and a wildcard listener protects loopback too.
#include "injector/agent/target_policy.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include "injector/fault_registry.h"
#include "tests/test_support.h"

namespace chaosdrill::agent {
namespace {

const injector::FaultRegistry& Registry() {
  injector::RegisterBuiltinFaults();
  return injector::FaultRegistry::Global();
}

NodeFacts Facts(std::set<std::string> control = {}) {
  NodeFacts f;
  f.agent_pid = 999'999;
  f.agent_parent_pid = 999'998;
  f.memory_bytes = 8ull << 30;
  f.control_interfaces = std::move(control);
  return f;
}

// The rule a refusal names ("allowlist.gpu_devices"), or the status when it is no refusal.
std::string Rule(const absl::Status& st) {
  if (st.ok()) return "OK";
  if (st.code() != absl::StatusCode::kPermissionDenied) return st.ToString();
  return std::string(st.message().substr(0, st.message().find(':')));
}

TEST_CASE("policy: an omitted gpu device is checked as the kind's default, device 0",
          "[agent][policy]") {
  Allowlist a{.kinds = {"gpu.*"}, .gpu_devices = {1}};
  TargetPolicy policy(a, Facts(), absl::Hours(1), &Registry());
  FaultSpec burn{.kind = "gpu.compute_burn"};
  absl::Status st = policy.Check(burn);
  INFO(st.ToString());
  CHECK(Rule(st) == "allowlist.gpu_devices");
  CHECK_THAT(std::string(st.message()), Catch::Contains("GPU device 0 (the default)"));
  burn.params["device"] = "1";
  CHECK(Rule(policy.Check(burn)) == "OK");
  // Without the registry nothing says what the default is (the old hole): no refusal.
  TargetPolicy no_defaults(a, Facts(), absl::Hours(1));
  CHECK(Rule(no_defaults.Check({.kind = "gpu.compute_burn"})) == "OK");
}

TEST_CASE("policy: defaults count against the limits (stress.cpu cores, gpu sm_fraction)",
          "[agent][policy]") {
  Allowlist a{.kinds = {"stress.*", "gpu.*"},
              .gpu_devices = {0},
              .max_cpu_cores = 0,
              .max_gpu_fraction = 0.5};
  TargetPolicy policy(a, Facts(), absl::Hours(1), &Registry());
  CHECK(Rule(policy.Check({.kind = "stress.cpu"})) == "allowlist.max_cpu_cores");  // 1 core
  CHECK(Rule(policy.Check({.kind = "gpu.compute_burn"})) == "allowlist.max_gpu_fraction");
  CHECK(Rule(policy.Check({.kind = "gpu.compute_burn", .params = {{"sm_fraction", "0.25"}}})) ==
        "OK");
}

TEST_CASE("policy: a GPU size in bytes is a share of the device's memory, refused when unknown",
          "[agent][policy]") {
  Allowlist a{.kinds = {"gpu.*"}, .gpu_devices = {0, 1}, .max_gpu_fraction = 0.5};
  GpuFacts gpus({{.index = 0, .name = "H200", .memory_bytes = 140ull << 30},
                 {.index = 1, .name = "unknown size"}},
                "probe failed: test");
  TargetPolicy policy(a, Facts(), absl::Hours(1), &Registry(), &gpus);
  auto hold = [](std::string param, std::string value, std::string device = "0") {
    return FaultSpec{.kind = "gpu.memory_pressure", .params = {{param, value}, {"device", device}}};
  };
  CHECK(Rule(policy.Check(hold("size", "60GiB"))) == "OK");
  CHECK(Rule(policy.Check(hold("size", "80GiB"))) == "allowlist.max_gpu_fraction");
  CHECK(Rule(policy.Check(hold("fraction", "0.6"))) == "allowlist.max_gpu_fraction");
  CHECK(Rule(policy.Check(hold("fraction", "40%"))) == "OK");
  // leave_free 10 GiB of 140 takes up to 93% of the device.
  CHECK(Rule(policy.Check(hold("leave_free", "10GiB"))) == "allowlist.max_gpu_fraction");
  CHECK(Rule(policy.Check(hold("leave_free", "100GiB"))) == "OK");
  absl::Status unknown = policy.Check(hold("size", "1GiB", "1"));
  CHECK(Rule(unknown) == "allowlist.max_gpu_fraction");
  CHECK_THAT(std::string(unknown.message()), Catch::Contains("cannot be computed") &&
                                                 Catch::Contains("probe failed: test") &&
                                                 Catch::Contains("give fraction="));
  // No GPU facts at all: bytes refused, fractions judged.
  TargetPolicy blind(a, Facts(), absl::Hours(1), &Registry());
  CHECK(Rule(blind.Check(hold("size", "1GiB"))) == "allowlist.max_gpu_fraction");
  CHECK(Rule(blind.Check(hold("fraction", "0.1"))) == "OK");
}

TEST_CASE("policy: stress.memory sizes in bytes and percent against max_memory_fraction",
          "[agent][policy]") {
  Allowlist a{.kinds = {"stress.*"}, .max_memory_fraction = 0.5};
  TargetPolicy policy(a, Facts(), absl::Hours(1), &Registry());  // MemTotal 8 GiB
  CHECK(Rule(policy.Check({.kind = "stress.memory", .params = {{"size", "3GiB"}}})) == "OK");
  CHECK(Rule(policy.Check({.kind = "stress.memory", .params = {{"size", "5GiB"}}})) ==
        "allowlist.max_memory_fraction");
  CHECK(Rule(policy.Check({.kind = "stress.memory", .params = {{"size", "60%"}}})) ==
        "allowlist.max_memory_fraction");
  // proxy.slicer's `size` is bytes per slice, not a memory share.
  Allowlist p{.kinds = {"proxy.*"}, .max_memory_fraction = 0.000001};
  TargetPolicy proxies(p, Facts(), absl::Hours(1), &Registry());
  CHECK(Rule(proxies.Check({.kind = "proxy.slicer", .params = {{"size", "1MiB"}}})) == "OK");
}

TEST_CASE("policy: network.partition without an interface is every interface", "[agent][policy]") {
  FaultSpec partition{.kind = "network.partition", .params = {{"ports", "9000"}}};
  {
    Allowlist a{.kinds = {"network.*"}, .interfaces = {"*"}};
    TargetPolicy policy(a, Facts({"lo", "eth0"}), absl::Hours(1), &Registry());
    absl::Status st = policy.Check(partition);
    CHECK(Rule(st) == "safety.control_interface");
    CHECK_THAT(std::string(st.message()), Catch::Contains("without an interface"));
    FaultSpec on_veth = partition;
    on_veth.params["interface"] = "veth1";
    CHECK(Rule(policy.Check(on_veth)) == "OK");
  }
  {  // every control interface allowed by name, or the rule waived: fine
    Allowlist a{.kinds = {"network.*"}, .interfaces = {"*", "lo", "eth0"}};
    TargetPolicy policy(a, Facts({"lo", "eth0"}), absl::Hours(1), &Registry());
    CHECK(Rule(policy.Check(partition)) == "OK");
    Allowlist w{
        .kinds = {"network.*"}, .interfaces = {"*"}, .protected_targets = {"control_interface"}};
    TargetPolicy waived(w, Facts({"lo", "eth0"}), absl::Hours(1), &Registry());
    CHECK(Rule(waived.Check(partition)) == "OK");
  }
  {  // no TCP listener, but the allowlist names some interfaces only
    Allowlist a{.kinds = {"network.*"}, .interfaces = {"veth*"}};
    TargetPolicy policy(a, Facts(), absl::Hours(1), &Registry());
    CHECK(Rule(policy.Check(partition)) == "allowlist.interfaces");
  }
}

TEST_CASE("policy: a wildcard listener protects loopback and every interface with an address",
          "[agent][policy]") {
  NodeFacts wildcard = NodeFacts::Current("0.0.0.0:7443");
  NodeFacts v6 = NodeFacts::Current("[::]:7443");
  NodeFacts loopback = NodeFacts::Current("127.0.0.1:7443");
  NodeFacts name = NodeFacts::Current("localhost:7443");
  NodeFacts none = NodeFacts::Current("");
  for (const NodeFacts* f : {&wildcard, &v6, &loopback, &name})
    CHECK(f->control_interfaces.count("lo") == 1);
  CHECK(loopback.control_interfaces == std::set<std::string>{"lo"});
  CHECK(none.control_interfaces.empty());
  Allowlist a{.kinds = {"network.*"}, .interfaces = {"l*", "e*", "v*"}};
  TargetPolicy policy(a, wildcard, absl::Hours(1), &Registry());
  CHECK(Rule(policy.Check({.kind = "network.netem", .params = {{"interface", "lo"}}})) ==
        "safety.control_interface");
}

TEST_CASE(
    "policy: cgroups are normalised, '..' refused, and a cgroup holding a protected "
    "process is not a selector target",
    "[agent][policy]") {
  CHECK(*NormalizeCgroup("/sys/fs/cgroup/chaos/a/") == "/chaos/a");
  CHECK(*NormalizeCgroup("chaos/a") == "/chaos/a");
  CHECK(NormalizeCgroup("/chaos/../system.slice").status().code() ==
        absl::StatusCode::kInvalidArgument);
  Allowlist a{.kinds = {"stress.*", "process.*"}, .processes = {"*"}, .cgroups = {"/chaos/*"}};
  TargetPolicy policy(a, Facts(), absl::Hours(1), &Registry());
  CHECK(Rule(policy.Check(
            {.kind = "stress.cpu", .params = {{"cgroup", "/sys/fs/cgroup/chaos/w"}}})) == "OK");
  CHECK(Rule(policy.Check({.kind = "stress.cpu", .params = {{"cgroup", "/system.slice"}}})) ==
        "allowlist.cgroups");
  CHECK(policy.Check({.kind = "stress.cpu", .params = {{"cgroup", "/chaos/../x"}}}).code() ==
        absl::StatusCode::kInvalidArgument);
  // "/" holds PID 1: selecting it is PID 1's rule, even with cgroups: ["*"].
  Allowlist all{.kinds = {"process.*"}, .processes = {"*"}, .cgroups = {"*"}};
  TargetPolicy any(all, Facts(), absl::Hours(1), &Registry());
  CHECK(Rule(any.Check({.kind = "process.kill", .params = {{"cgroup", "/"}}})) == "safety.pid1");
}

}  // namespace
}  // namespace chaosdrill::agent
