// One case per way a scenario can be wrong: each asserts the line, the column, the field
// path and the message of the single error it must produce (DESIGN §8, issue 2).
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "scenarios/scenario_loader.h"
#include "tests/scenarios/test_catalog.h"
#include "tests/test_support.h"

namespace chaosdrill::scenarios {
namespace {

// Five lines, valid on their own. Cases replace a line or append from line 6.
constexpr char kBase[] =
    "apiVersion: chaosdrill/v1\n"           // 1
    "kind: Scenario\n"                      // 2
    "metadata: {name: t}\n"                 // 3
    "target: {reference: {replicas: 3}}\n"  // 4
    "load: {rate: 100/s}\n";                // 5

std::string Append(absl::string_view suffix) { return absl::StrCat(kBase, suffix); }

std::string Replace(absl::string_view from, absl::string_view to) {
  std::string out = absl::StrReplaceAll(kBase, {{from, to}});
  REQUIRE(out != kBase);
  return out;
}

// A single fault at line 7; its first field starts at column 6 ("  - {name: ...").
std::string Fault(absl::string_view fields) {
  return Append(absl::StrCat("faults:\n  - {", fields, "}\n"));
}

struct Case {
  const char* name;
  std::string yaml;
  int line;
  int column;
  const char* path;
  const char* message;  // a substring of the message
};

ScenarioLoadResult Load(const std::string& yaml) {
  return LoadScenario(yaml, "case.yaml", testing::TestCatalog());
}

// Each case through the library, and through `chaosdrill validate` (the same loader, the
// same registry) on the same text: exit 2 and exactly that one error line.
void CheckCases(const std::vector<Case>& cases) {
  REQUIRE(std::filesystem::exists(chaosdrill::testing::ChaosdrillBinary()));
  chaosdrill::testing::TempDir dir;
  for (const Case& c : cases) {
    INFO("case: " << c.name << "\n--- yaml ---\n" << c.yaml);
    ScenarioLoadResult r = Load(c.yaml);
    std::string all;
    for (const ValidationError& e : r.errors) absl::StrAppend(&all, e.ToString(), "\n");
    INFO("errors:\n" << all);
    CHECK_FALSE(r.ok());
    REQUIRE(r.errors.size() == 1);
    const ValidationError& e = r.errors[0];
    CHECK(e.file == "case.yaml");
    CHECK(e.location.line == c.line);
    CHECK(e.location.column == c.column);
    CHECK(e.path == c.path);
    CHECK_THAT(e.message, Catch::Contains(c.message));
    const std::string file = dir.Write("case.yaml", c.yaml);
    chaosdrill::testing::CommandResult cli = chaosdrill::testing::RunCommand(
        {chaosdrill::testing::ChaosdrillBinary(), "validate", file});
    ValidationError printed = e;
    printed.file = file;
    CHECK(cli.exit_code == 2);
    CHECK(cli.err == printed.ToString() + "\n");
    CHECK(cli.out.empty());
  }
}

TEST_CASE("the base of the invalid cases is valid", "[scenarios]") {
  ScenarioLoadResult r = Load(kBase);
  REQUIRE(r.errors.empty());
  REQUIRE(r.ok());
  CHECK(r.scenario->load.rate == 100);
}

TEST_CASE("document-level fields: unknown, missing, wrong version", "[scenarios]") {
  CheckCases({
      {"unknown top-level field", Append("extra: 1\n"), 6, 1, "extra",
       "unknown field \"extra\" (known fields of a scenario: apiVersion, kind"},
      {"misspelt top-level field suggests", Append("fautls: []\n"), 6, 1, "fautls",
       "unknown field \"fautls\"; did you mean \"faults\"?"},
      {"missing apiVersion", Replace("apiVersion: chaosdrill/v1\n", ""), 1, 1, "apiVersion",
       "required field is missing; expected chaosdrill/v1"},
      {"wrong apiVersion", Replace("apiVersion: chaosdrill/v1", "apiVersion: v1"), 1, 13,
       "apiVersion",
       "expected chaosdrill/v1 (the only schema version this build reads), found "
       "\"v1\""},
      {"wrong kind", Replace("kind: Scenario", "kind: Drill"), 2, 7, "kind",
       "expected Scenario, found \"Drill\""},
      {"duplicate top-level field", Append("load: {rate: 5/s}\n"), 6, 1, "load",
       "duplicate field \"load\" (first given at line 5)"},
      {"metadata is not a mapping", Replace("metadata: {name: t}", "metadata: t"), 3, 11,
       "metadata", "expected metadata (a mapping), found \"t\""},
      {"metadata.name missing", Replace("{name: t}", "{description: x}"), 3, 11, "metadata.name",
       "required field is missing; expected a name"},
      {"metadata.name not a DNS label", Replace("{name: t}", "{name: My_Drill}"), 3, 18,
       "metadata.name", "expected a name of lowercase letters, digits and '-'"},
      {"metadata.tags not a list", Replace("{name: t}", "{name: t, tags: x}"), 3, 27,
       "metadata.tags", "expected tags (a list), found \"x\""},
  });
}

TEST_CASE("target: reference and endpoint", "[scenarios]") {
  CheckCases({
      {"both reference and endpoint",
       Replace("{reference: {replicas: 3}}",
               "{reference: {}, endpoint: {address: \"a:1\", model: m}}"),
       4, 35, "target.endpoint",
       "expected exactly one of target.reference or target.endpoint, "
       "found both"},
      {"neither reference nor endpoint", Replace("{reference: {replicas: 3}}", "{}"), 4, 9,
       "target", "expected exactly one of reference"},
      {"replicas out of range", Replace("replicas: 3", "replicas: 65"), 4, 32,
       "target.reference.replicas", "expected an integer from 1 to 64, found \"65\""},
      {"replication misspelt", Replace("replicas: 3", "replication: asnyc"), 4, 35,
       "target.reference.replication",
       "expected one of async, sync, found \"asnyc\"; did you mean \"async\"?"},
      {"device unknown", Replace("replicas: 3", "device: tpu"), 4, 30, "target.reference.device",
       "expected one of cpu, cuda, found \"tpu\""},
      {"model option misspelt", Replace("replicas: 3", "model: {widht: 8}"), 4, 30,
       "target.reference.model.widht", "unknown field \"widht\"; did you mean \"width\"?"},
      {"endpoint without address", Replace("{reference: {replicas: 3}}", "{endpoint: {model: m}}"),
       4, 20, "target.endpoint.address", "required field is missing; expected an address"},
      {"endpoint address without port",
       Replace("{reference: {replicas: 3}}", "{endpoint: {address: \"host\", model: m}}"), 4, 30,
       "target.endpoint.address", "expected an address host:port"},
      {"endpoint protocol unknown",
       Replace("{reference: {replicas: 3}}",
               "{endpoint: {protocol: http, address: \"a:1\", model: m}}"),
       4, 31, "target.endpoint.protocol", "expected one of oip-grpc, found \"http\""},
      {"endpoint client cert without key",
       Replace("{reference: {replicas: 3}}",
               "{endpoint: {address: \"a:1\", model: m, tls: {cert: c.pem}}}"),
       4, 52, "target.endpoint.tls.key", "expected both cert and key, or neither"},
  });
}

TEST_CASE("load, writes, steady state, phases", "[scenarios]") {
  CheckCases({
      {"load without rate", Replace("{rate: 100/s}", "{connections: 2}"), 5, 7, "load.rate",
       "required field is missing; expected requests per second"},
      {"negative rate", Replace("100/s", "-5"), 5, 14, "load.rate",
       "invalid rate \"-5\": must not be negative"},
      {"zero rate", Replace("100/s", "0/s"), 5, 14, "load.rate",
       "expected a rate above 0, found \"0/s\""},
      {"absurd rate", Replace("100/s", "5000000/s"), 5, 14, "load.rate",
       "expected a rate of at most 100000/s"},
      {"arrival unknown", Replace("{rate: 100/s}", "{rate: 1, arrival: burst}"), 5, 26,
       "load.arrival", "expected one of constant, poisson, found \"burst\""},
      {"timeout without unit", Replace("{rate: 100/s}", "{rate: 1, timeout: 2}"), 5, 26,
       "load.timeout", "missing unit after 2"},
      {"good_latency longer than timeout",
       Replace("{rate: 100/s}", "{rate: 1, timeout: 1s, good_latency: 2s}"), 5, 44,
       "load.good_latency", "expected good_latency no longer than load.timeout (1s)"},
      {"connections not an integer", Replace("{rate: 100/s}", "{rate: 1, connections: many}"), 5,
       30, "load.connections", "expected an integer from 1 to 1024, found \"many\""},
      {"writes without rate", Append("writes: {sessions: 2}\n"), 6, 9, "writes.rate",
       "required field is missing; expected writes per second"},
      {"payload too large", Append("writes: {rate: 1, payload_size: 2MiB}\n"), 6, 33,
       "writes.payload_size", "expected a size from 1 to 1048576 bytes, found \"2MiB\""},
      {"success ratio above 1", Append("steady_state: {success_ratio: 1.2}\n"), 6, 31,
       "steady_state.success_ratio", "must be at most 1"},
      {"p50 above p99", Append("steady_state: {p50: 2s, p99: 1s}\n"), 6, 21, "steady_state.p50",
       "expected p50 no larger than p99 (1s), found 2s"},
      {"zero baseline", Append("phases: {baseline: 0s}\n"), 6, 20, "phases.baseline",
       "expected a duration above 0, found \"0s\""},
      {"hold not shorter than observe", Append("phases: {observe: 10s, hold: 10s}\n"), 6, 30,
       "phases.hold", "expected hold shorter than observe (10s)"},
  });
}

TEST_CASE("faults: timing, kinds and parameters", "[scenarios]") {
  CheckCases({
      {"fault during the baseline",
       Fault("name: k, kind: process.kill, at: 5s, target: {role: gateway}"), 7, 39, "faults[0].at",
       "expected at >= 10s (faults start after the baseline phase"},
      {"fault after the observe window",
       Fault("name: k, kind: process.kill, at: 80s, target: {role: gateway}"), 7, 39,
       "faults[0].at", "expected at before the observe window ends at 1m10s"},
      {"fault outlasting the observe window",
       Fault("name: k, kind: stress.cpu, at: 60s, duration: 20s, target: {role: gateway}"), 7, 52,
       "faults[0].duration",
       "the fault would end at 1m20s (at 1m + duration 20s), after the observe window ends at "
       "1m10s"},
      {"duration on an instantaneous kind",
       Fault("name: k, kind: process.kill, at: 15s, duration: 5s, target: {role: gateway}"), 7, 54,
       "faults[0].duration", "process.kill is instantaneous and takes no duration"},
      {"negative duration",
       Fault("name: k, kind: stress.cpu, at: 15s, duration: -5s, target: {role: gateway}"), 7, 52,
       "faults[0].duration", "must not be negative"},
      {"unknown kind suggests",
       Fault("name: k, kind: process.kil, at: 15s, target: {role: gateway}"), 7, 21,
       "faults[0].kind", "unknown fault kind \"process.kil\"; did you mean \"process.kill\"?"},
      {"unknown kind lists known kinds",
       Fault("name: k, kind: k8s.pod_delete, at: 15s, target: {role: gateway}"), 7, 21,
       "faults[0].kind",
       "(known kinds: gpu.compute_burn, gpu.cuda_errors, gpu.memory_pressure, gpu.xid"},
      {"unknown parameter suggests",
       Fault("name: k, kind: stress.cpu, at: 15s, duration: 5s, target: {role: gateway}, "
             "cors: 2"),
       7, 81, "faults[0].cors",
       "unknown parameter \"cors\" for stress.cpu; did you mean \"cores\"? (parameters of "
       "stress.cpu: cores, load, cgroup"},
      {"bad parameter value",
       Fault("name: k, kind: stress.cpu, at: 15s, duration: 5s, target: {role: gateway}, "
             "load: 150%"),
       7, 87, "faults[0].load",
       "load of stress.cpu: invalid percentage \"150%\": must be at most 100%"},
      {"missing required parameter",
       Fault("name: k, kind: stress.memory, at: 15s, duration: 5s, target: {role: gateway}"), 7, 5,
       "faults[0].size",
       "required parameter of stress.memory is missing; expected a size or percent"},
      {"role-resolved parameter still required for an agent target",
       Fault("name: k, kind: proxy.latency, at: 15s, duration: 5s, target: {agent: local}, "
             "upstream: \"a:1\", latency: 1s"),
       7, 5, "faults[0].listen", "required parameter of proxy.latency is missing"},
      {"scalar parameter given a list",
       Fault("name: k, kind: network.netem, at: 15s, duration: 5s, target: {role: gateway}, "
             "delay: [1ms, 2ms]"),
       7, 91, "faults[0].delay", "expected a duration (a single value), found a list"},
      {"parameter given inline and under params",
       Fault("name: k, kind: stress.cpu, at: 15s, duration: 5s, target: {role: gateway}, "
             "cores: 1, params: {cores: 2}"),
       7, 100, "faults[0].params.cores", "parameter \"cores\" is given twice"},
      {"duplicate fault names",
       Append("faults:\n"
              "  - {name: k, kind: process.kill, at: 15s, target: {role: gateway}}\n"
              "  - {name: k, kind: process.kill, at: 20s, target: {role: gateway}}\n"),
       8, 12, "faults[1].name",
       "expected unique fault names, found \"k\" again (first in faults[0])"},
      {"faults not a list", Append("faults: {name: k}\n"), 6, 9, "faults",
       "expected a list of faults (a list), found a mapping"},
      {"fault without at", Fault("name: k, kind: process.kill, target: {role: gateway}"), 7, 5,
       "faults[0].at", "required field is missing; expected when to inject"},
      {"allow_majority not a bool",
       Fault("name: k, kind: process.kill, at: 15s, target: {role: gateway}, allow_majority: yes"),
       7, 85, "faults[0].allow_majority", "expected true or false, found \"yes\""},
  });
}

TEST_CASE("fault targets: roles, agents, selectors, blast radius", "[scenarios]") {
  CheckCases({
      {"role with a bad index",
       Fault("name: k, kind: process.kill, at: 15s, target: {role: \"replica[x]\"}"), 7, 59,
       "faults[0].target.role", "the index must be a non-negative integer in brackets"},
      {"role unknown", Fault("name: k, kind: process.kill, at: 15s, target: {role: worker}"), 7, 59,
       "faults[0].target.role",
       "expected gateway, replica, replica[i], store.primary, store.replica, store.link, "
       "sentinel or sentinel[i]; found \"worker\""},
      {"store.link takes proxy faults only",
       Fault("name: k, kind: process.kill, at: 15s, target: {role: store.link}"), 7, 59,
       "faults[0].target.role",
       "store.link is the replication link (a proxy): only proxy.* faults act on it, found "
       "kind process.kill"},
      {"proxy faults only on the gateway or store.link",
       Fault("name: k, kind: proxy.latency, at: 15s, duration: 1s, latency: 10ms, "
             "target: {role: \"replica[0]\"}"),
       7, 89, "faults[0].target.role", "expected role gateway or store.link, found \"replica[0]\""},
      {"replica index out of range",
       Fault("name: k, kind: process.kill, at: 15s, target: {role: \"replica[3]\"}"), 7, 59,
       "faults[0].target.role",
       "replica[3] does not exist: the reference service has 3 replicas (replica[0] to "
       "replica[2])"},
      {"sentinel index out of range",
       Fault("name: k, kind: process.kill, at: 15s, target: {role: \"sentinel[3]\"}"), 7, 59,
       "faults[0].target.role", "sentinel[3] does not exist"},
      {"role on an endpoint target",
       Replace("{reference: {replicas: 3}}", "{endpoint: {address: \"a:1\", model: m}}") +
           "faults:\n  - {name: k, kind: process.kill, at: 15s, target: {role: gateway}}\n",
       7, 59, "faults[0].target.role",
       "roles name parts of the reference service, but target is an endpoint"},
      {"unknown agent",
       Fault("name: k, kind: process.kill, at: 15s, target: {agent: lcoal}, pid: 1"), 7, 60,
       "faults[0].target.agent", "no agent named \"lcoal\"; did you mean \"local\"?"},
      {"selector matching no agent",
       Fault("name: k, kind: process.kill, at: 15s, target: {selector: {zone: q}}, pid: 1"), 7, 63,
       "faults[0].target.selector", "no agent has the labels zone=q"},
      {"role and agent together",
       Fault("name: k, kind: process.kill, at: 15s, target: {role: gateway, agent: local}"), 7, 52,
       "faults[0].target",
       "expected exactly one of role (a part of the reference service), agent (an agent's name) "
       "or selector (agent labels), found several"},
      {"no target", Fault("name: k, kind: process.kill, at: 15s, target: {}"), 7, 52,
       "faults[0].target", "expected exactly one of role"},
      {"count on a single process",
       Fault("name: k, kind: process.kill, at: 15s, target: {role: gateway, count: 1}"), 7, 75,
       "faults[0].target.count", "role \"gateway\" is one process"},
      {"count and percent together",
       Fault("name: k, kind: process.kill, at: 15s, target: {role: replica, count: 1, percent: "
             "10%}"),
       7, 87, "faults[0].target.percent", "expected either count or percent, found both"},
      {"count larger than the family",
       Fault("name: k, kind: process.kill, at: 15s, target: {role: replica, count: 4}, "
             "allow_majority: true"),
       7, 75, "faults[0].target.count", "expected a count of at most 3"},
      {"majority of replicas without allow_majority",
       Fault("name: k, kind: process.kill, at: 15s, target: {role: replica, count: 2}"), 7, 52,
       "faults[0].target",
       "the fault would hit 2 of 3 replicas, more than half (blast radius); expected at most 1, "
       "or allow_majority: true"},
      {"percent rounding up to a majority",
       Fault("name: k, kind: process.kill, at: 15s, target: {role: replica, percent: 50%}"), 7, 52,
       "faults[0].target", "the fault would hit 2 of 3 replicas"},
  });
}

// A valid fault at line 6, so that alert probes have something to detect; probes from line 8.
std::string Probes(absl::string_view probes) {
  return Append(absl::StrCat(
      "faults:\n  - {name: kill-one, kind: process.kill, at: 15s, target: {role: gateway}}\n",
      "probes:\n", probes));
}

TEST_CASE("probes: kinds, urls, thresholds, alerts", "[scenarios]") {
  CheckCases({
      {"probe with no kind", Probes("  - {name: p, every: 1s}\n"), 9, 5, "probes[0]",
       "expected exactly one probe kind: prometheus, golden, ready or alert; found none"},
      {"prometheus over https",
       Probes("  - {name: p, prometheus: {url: \"https://h:9090\", query: up, below: 1}}\n"), 9, 33,
       "probes[0].prometheus.url",
       "https is not supported (the probe speaks plain HTTP to Prometheus)"},
      {"prometheus url with a query string",
       Probes("  - {name: p, prometheus: {url: \"http://h:9090/?x=1\", query: up, below: 1}}\n"), 9,
       33, "probes[0].prometheus.url", "a base URL has no query, fragment, user info or spaces"},
      {"prometheus url port out of range",
       Probes("  - {name: p, prometheus: {url: \"http://h:99999\", query: up, below: 1}}\n"), 9, 33,
       "probes[0].prometheus.url", "the port must be 1..65535"},
      {"prometheus url without a host",
       Probes("  - {name: p, prometheus: {url: \"http://:9090\", query: up, below: 1}}\n"), 9, 33,
       "probes[0].prometheus.url", "no host (IPv6 hosts go in brackets)"},
      {"prometheus without a threshold",
       Probes("  - {name: p, prometheus: {url: \"http://h:9090\", query: up}}\n"), 9, 27,
       "probes[0].prometheus", "expected a threshold: below"},
      {"prometheus threshold not a number",
       Probes("  - {name: p, prometheus: {url: \"http://h:9090\", query: up, above: lots}}\n"), 9,
       68, "probes[0].prometheus.above", "expected a number"},
      {"prometheus band that can never hold",
       Probes(
           "  - {name: p, prometheus: {url: \"http://h:9090\", query: up, above: 5, below: 1}}\n"),
       9, 68, "probes[0].prometheus.above", "can never hold; expected above < below"},
      {"prometheus without a query",
       Probes("  - {name: p, prometheus: {url: \"http://h:9090\", below: 1}}\n"), 9, 27,
       "probes[0].prometheus.query", "required field is missing; expected a PromQL expression"},
      {"golden probe on an endpoint",
       Replace("target: {reference: {replicas: 3}}\n",
               "target: {endpoint: {address: \"h:8001\", model: m}}\nprobes:\n"
               "  - {name: g, golden: {}}\n"),
       6, 23, "probes[0].golden", "an endpoint has no golden answer the runner knows"},
      {"golden probe with fields", Probes("  - {name: g, golden: {deep: true}}\n"), 9, 24,
       "probes[0].golden.deep", "unknown field \"deep\""},
      {"alert without within",
       Probes("  - {name: a, alert: {url: \"http://h:9090\", name: Down}}\n"), 9, 22,
       "probes[0].alert.within", "required field is missing; expected how soon"},
      {"alert within zero",
       Probes("  - {name: a, alert: {url: \"http://h:9090\", name: Down, within: 0s}}\n"), 9, 65,
       "probes[0].alert.within", "expected a duration above 0"},
      {"alert without a name",
       Probes("  - {name: a, alert: {url: \"http://h:9090\", within: 30s}}\n"), 9, 22,
       "probes[0].alert.name", "required field is missing; expected the alert's name"},
      {"alert with an empty name",
       Probes("  - {name: a, alert: {url: \"http://h:9090\", name: \"\", within: 30s}}\n"), 9, 51,
       "probes[0].alert.name", "expected an alert name"},
      {"alert with an unknown field",
       Probes("  - {name: a, alert: {url: \"http://h:9090\", name: D, within: 30s, fro: 1s}}\n"), 9,
       67, "probes[0].alert.fro", "unknown field \"fro\""},
      {"alert on a fault that does not exist",
       Probes(
           "  - {name: a, alert: {url: \"http://h:9090\", name: D, within: 30s, faults: [kill-on]}}"
           "\n"),
       9, 76, "probes[0].alert.faults[0]",
       "no fault named \"kill-on\"; did you mean \"kill-one\"?"},
      {"alert naming a fault twice",
       Probes("  - {name: a, alert: {url: \"http://h:9090\", name: D, within: 30s, "
              "faults: [kill-one, kill-one]}}\n"),
       9, 86, "probes[0].alert.faults[1]", "expected each fault once"},
      {"alert in a scenario without faults",
       Append("probes:\n  - {name: a, alert: {url: \"http://h:9090\", name: D, within: 30s}}\n"), 7,
       22, "probes[0].alert", "this scenario has no faults"},
      {"alert url over https",
       Probes("  - {name: a, alert: {url: \"https://h\", name: D, within: 30s}}\n"), 9, 28,
       "probes[0].alert.url", "https is not supported"},
  });
}

TEST_CASE("agents, probes, abort, slo, guard, report", "[scenarios]") {
  CheckCases({
      {"agent over TCP without tls", Append("agents:\n  - {name: a, address: \"10.0.0.1:7443\"}\n"),
       7, 5, "agents[0].tls", "agents over TCP use mutual TLS"},
      {"agent named local", Append("agents:\n  - {name: local, address: \"unix:/run/a.sock\"}\n"),
       7, 12, "agents[0].name", "\"local\" is the runner's private agent"},
      {"agent tls without key",
       Append("agents:\n  - {name: a, address: \"h:1\", tls: {ca: c, cert: d}}\n"), 7, 36,
       "agents[0].tls.key", "agents use mutual TLS, expected ca, cert and key"},
      {"duplicate agent names",
       Append(
           "agents:\n  - {name: a, address: \"unix:/a\"}\n  - {name: a, address: \"unix:/b\"}\n"),
       8, 12, "agents[1].name", "expected unique agent names"},
      {"agent address relative unix path", Append("agents:\n  - {name: a, address: \"unix:a\"}\n"),
       7, 24, "agents[0].address", "expected an absolute socket path after unix:"},
      {"probe with two kinds", Append("probes:\n  - {name: p, golden: {}, ready: {}}\n"), 7, 5,
       "probes[0]",
       "expected exactly one probe kind: prometheus, golden, ready or alert; found several"},
      {"prometheus probe with a bad url",
       Append("probes:\n  - {name: p, prometheus: {url: \"ftp://x\", query: up, below: 1}}\n"), 7,
       33, "probes[0].prometheus.url",
       "not an http:// URL; expected an http:// URL (e.g. http://127.0.0.1:9090), found "
       "\"ftp://x\""},
      {"probe timeout longer than its interval",
       Append("probes:\n  - {name: p, every: 1s, timeout: 2s, ready: {}}\n"), 7, 35,
       "probes[0].timeout", "expected a timeout no longer than every (1s)"},
      {"abort without a condition", Append("abort:\n  - {for: 5s}\n"), 7, 5, "abort[0]",
       "expected a condition: success_ratio_below"},
      {"abort for zero", Append("abort:\n  - {success_ratio_below: 0.5, for: 0s}\n"), 7, 37,
       "abort[0].for", "expected a duration above 0"},
      {"rpo without writes", Append("slo: {rpo: 0}\n"), 6, 12, "slo.rpo",
       "an RPO is measured on acknowledged session writes, and this scenario makes none"},
      {"availability above 1", Append("slo: {availability: 1.5}\n"), 6, 21, "slo.availability",
       "invalid ratio \"1.5\": must be at most 1"},
      {"negative rpo", Append("writes: {rate: 1}\nslo: {rpo: -1}\n"), 7, 12, "slo.rpo",
       "expected an integer from 0 to 1000000000, found \"-1\""},
      {"error budget with a 100% objective",
       Append("slo: {error_budget: {objective: 1, max_consumed: 5%}}\n"), 6, 33,
       "slo.error_budget.objective", "expected an objective below 1"},
      {"guard window malformed", Append("guard: {window: \"9-17\"}\n"), 6, 17, "guard.window",
       "expected a time window HH:MM-HH:MM (e.g. 09:00-17:00)"},
      {"guard day misspelt", Append("guard: {window: \"09:00-17:00\", days: [mon, tues]}\n"), 6, 44,
       "guard.days[1]", "did you mean \"tue\"?"},
      {"guard timezone unknown",
       Append("guard: {window: \"09:00-17:00\", timezone: Mars/Olympus}\n"), 6, 42,
       "guard.timezone", "expected an IANA time zone"},
      {"report format unknown", Append("report: {formats: [json, pdf]}\n"), 6, 26,
       "report.formats[1]", "expected one of json, html, junit, markdown, found \"pdf\""},
      {"report formats empty", Append("report: {formats: []}\n"), 6, 19, "report.formats",
       "found an empty list"},
  });
}

TEST_CASE("an unknown field, a bad duration and a negative rate give exactly three errors",
          "[scenarios]") {
  const std::string yaml =
      "apiVersion: chaosdrill/v1\n"
      "kind: Scenario\n"
      "metadata: {name: three-errors}\n"
      "target: {reference: {replicas: 3}}\n"
      "load:\n"
      "  rate: -5/s\n"
      "  timout: 2s\n"
      "phases:\n"
      "  baseline: 10x\n";
  ScenarioLoadResult r = LoadScenario(yaml, "three.yaml", testing::TestCatalog());
  REQUIRE(r.errors.size() == 3);
  CHECK(r.errors[0].ToString() ==
        "three.yaml:6:9: load.rate: invalid rate \"-5/s\": must not be negative");
  CHECK(r.errors[1].ToString() ==
        "three.yaml:7:3: load.timout: unknown field \"timout\"; did you mean \"timeout\"? (known "
        "fields of load: rate, arrival, connections, timeout, golden_every, good_latency, seed)");
  CHECK(r.errors[2].ToString() ==
        "three.yaml:9:13: phases.baseline: invalid duration \"10x\": unknown unit \"x\" (use ns, "
        "us, ms, s, m, h)");
}

TEST_CASE("every error of a file is reported, in file order", "[scenarios]") {
  const std::string yaml =
      "apiVersion: chaosdrill/v1\n"
      "kind: Scenari\n"
      "metadata: {name: Bad_Name}\n"
      "target: {reference: {replicas: 0}}\n"
      "load: {rate: 0}\n"
      "faults:\n"
      "  - {name: a, kind: nope, at: 15s, target: {role: gateway}}\n"
      "  - {name: b, kind: process.kill, at: 1s, target: {role: gateway}}\n";
  ScenarioLoadResult r = LoadScenario(yaml, "many.yaml", testing::TestCatalog());
  std::vector<std::string> paths;
  for (const ValidationError& e : r.errors) paths.push_back(e.path);
  CHECK(paths == std::vector<std::string>{"kind", "metadata.name", "target.reference.replicas",
                                          "load.rate", "faults[0].kind", "faults[1].at"});
}

TEST_CASE("network faults on the reference service: a replica's own link in network netns",
          "[scenarios]") {
  const std::string netns = "{reference: {replicas: 3, network: netns}}";
  auto with_netns = [&](absl::string_view fields) {
    return absl::StrReplaceAll(Fault(fields), {{"{reference: {replicas: 3}}", netns}});
  };
  CheckCases({
      {"network misspelt", Replace("replicas: 3", "network: netsn"), 4, 31,
       "target.reference.network",
       "expected one of loopback, netns, found \"netsn\"; did you mean \"netns\"?"},
      {"network fault on replicas sharing loopback",
       Fault("name: cut, kind: network.partition, at: 15s, duration: 5s, "
             "target: {role: \"replica[1]\"}"),
       7, 80, "faults[0].target.role",
       "network.partition on replica[1] needs each replica on a link of its own; expected "
       "target.reference.network: netns (root), found loopback"},
      {"network fault on the gateway",
       with_netns("name: cut, kind: network.bandwidth, at: 15s, duration: 5s, rate: 1mbit, "
                  "target: {role: gateway}"),
       7, 93, "faults[0].target.role",
       "network faults on the reference service go on a replica's own link; expected role "
       "replica[i] or replica (with count or percent), found \"gateway\""},
      {"interface given for a replica's link",
       with_netns("name: cut, kind: network.partition, at: 15s, duration: 5s, interface: eth0, "
                  "target: {role: \"replica[1]\"}"),
       7, 76, "faults[0].interface",
       "a fault aimed at replica[1] acts on the replica's own link, which the runner takes from "
       "the topology; expected no interface here"},
  });
  // And the valid form: no interface, the runner fills it in.
  ScenarioLoadResult ok = Load(with_netns(
      "name: cut, kind: network.partition, at: 15s, duration: 5s, target: {role: \"replica[1]\"}"));
  std::string all;
  for (const ValidationError& e : ok.errors) absl::StrAppend(&all, e.ToString(), "\n");
  INFO(all);
  REQUIRE(ok.ok());
  CHECK(ok.scenario->target.reference()->network == Network::kNetns);
  CHECK(ok.scenario->faults[0].spec.params.count("interface") == 0);
}

}  // namespace
}  // namespace chaosdrill::scenarios
