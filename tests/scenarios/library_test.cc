// The example scenarios in scenarios/library/ are valid, and the typed model carries what
// they say (defaults applied, durations and rates converted, positions kept).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "scenarios/scenario_loader.h"
#include "tests/scenarios/test_catalog.h"
#include "tests/test_support.h"

namespace chaosdrill::scenarios {
namespace {

std::vector<std::string> LibraryFiles() {
  std::vector<std::string> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(chaosdrill::testing::SourcePath("scenarios/library"))) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::shared_ptr<const Scenario> LoadLibrary(const std::string& name) {
  ScenarioLoadResult r = LoadScenarioFile(
      chaosdrill::testing::SourcePath("scenarios/library/" + name), testing::TestCatalog());
  for (const ValidationError& e : r.errors) FAIL(e.ToString());
  REQUIRE(r.ok());
  return r.scenario;
}

TEST_CASE("every library scenario validates", "[scenarios][library]") {
  std::vector<std::string> files = LibraryFiles();
  REQUIRE(files.size() >= 3);
  for (const std::string& file : files) {
    INFO(file);
    ScenarioLoadResult r = LoadScenarioFile(file, testing::TestCatalog());
    std::string all;
    for (const ValidationError& e : r.errors) all += e.ToString() + "\n";
    INFO(all);
    CHECK(r.ok());
    if (r.ok()) {
      CHECK(r.scenario->file == file);
      CHECK_FALSE(r.scenario->metadata.description.empty());
      CHECK(std::filesystem::path(file).stem() == r.scenario->metadata.name);
    }
  }
}

TEST_CASE("replica-kill reads into the typed model", "[scenarios][library]") {
  auto sc = LoadLibrary("replica-kill.yaml");
  CHECK(sc->api_version == "chaosdrill/v1");
  const ReferenceTarget* ref = sc->target.reference();
  REQUIRE(ref != nullptr);
  CHECK(ref->replicas == 3);
  CHECK(ref->replication == Replication::kAsync);
  CHECK(ref->model.width == 256);
  CHECK(sc->load.rate == 200);
  CHECK(sc->load.arrival == Arrival::kPoisson);
  CHECK(sc->load.timeout == absl::Seconds(2));
  CHECK(sc->load.seed == 42u);
  REQUIRE(sc->writes.has_value());
  CHECK(sc->writes->payload_size == 128);
  CHECK(sc->phases.End() == absl::Seconds(70));
  REQUIRE(sc->faults.size() == 2);
  const ScenarioFault& kill = sc->faults[0];
  CHECK(kill.name == "kill-replica-0");
  CHECK(kill.spec.kind == "process.kill");
  CHECK(kill.spec.params.at("signal") == "SIGKILL");
  CHECK_FALSE(kill.spec.duration.has_value());
  CHECK(kill.at == absl::Seconds(15));
  REQUIRE(kill.target.role.has_value());
  CHECK(kill.target.role->ToString() == "replica[0]");
  CHECK(sc->faults[1].target.role->is_family());
  CHECK(sc->faults[1].target.count == 1);
  CHECK(sc->FindFault("kill-any-replica") == &sc->faults[1]);
  CHECK(sc->probes.size() == 2);
  CHECK(std::holds_alternative<GoldenProbe>(sc->probes[0].check));
  CHECK(sc->probes[1].every == absl::Milliseconds(500));
  REQUIRE(sc->abort.size() == 1);
  CHECK(sc->abort[0].success_ratio_below == 0.5);
  CHECK(sc->slo.rto == absl::Seconds(3));
  CHECK(sc->slo.rpo == 0);
  REQUIRE(sc->slo.error_budget.has_value());
  CHECK(sc->slo.error_budget->max_consumed == Approx(0.1));
  CHECK(sc->report.formats.size() == 4);
  // Positions of nodes are kept for later messages.
  CHECK(sc->LocationOf("faults[0]").line > 0);
  CHECK(sc->LocationOf("faults[1].target.count").known());
  CHECK(kill.location == sc->LocationOf("faults[0]"));
  CHECK_FALSE(sc->LocationOf("guard").known());
}

TEST_CASE("defaults are applied where a field is left out", "[scenarios][library]") {
  // A minimal scenario of its own rather than a library file: library scenarios are tuned
  // over time and may well spell a default out.
  ScenarioLoadResult r = LoadScenario(
      "apiVersion: chaosdrill/v1\n"
      "kind: Scenario\n"
      "metadata: {name: defaults}\n"
      "target: {reference: {}}\n"
      "load: {rate: 10/s}\n"
      "faults:\n"
      "  - {name: kill, kind: process.kill, at: 15s, target: {role: store.primary}}\n",
      "defaults.yaml", testing::TestCatalog());
  for (const ValidationError& e : r.errors) FAIL(e.ToString());
  REQUIRE(r.ok());
  const Scenario* sc = r.scenario.get();
  CHECK(sc->load.arrival == Arrival::kConstant);
  CHECK(sc->load.connections == 4);
  CHECK(sc->load.golden_every == 10);
  CHECK_FALSE(sc->load.good_latency.has_value());
  CHECK(sc->steady_state.success_ratio == 0.99);
  CHECK(sc->target.reference()->device == Device::kCpu);
  CHECK(sc->target.reference()->model.name == "tiny-mlp");
  CHECK(sc->phases.recovery_ratio == Approx(0.99));  // SCHEMA.md: phases.recovery_ratio
  CHECK(sc->agents.empty());
  CHECK_FALSE(sc->guard.has_value());
  CHECK(sc->faults[0].target.role == Role{.kind = Role::Kind::kStorePrimary});
}

TEST_CASE("endpoint-partition reads agents, selectors, list parameters and probes",
          "[scenarios][library]") {
  auto sc = LoadLibrary("endpoint-partition.yaml");
  const EndpointTarget* ep = sc->target.endpoint();
  REQUIRE(ep != nullptr);
  CHECK(ep->address == "inference.staging.internal:8001");
  REQUIRE(ep->tls.has_value());
  CHECK(ep->tls->server_name == "inference.staging.internal");
  REQUIRE(sc->agents.size() == 3);
  CHECK(sc->FindAgent("node-b")->labels.at("zone") == "b");
  CHECK(sc->faults[0].target.selector.at("zone") == "b");
  CHECK(sc->faults[0].spec.params.at("cidrs") == "10.20.0.0/16");
  CHECK(sc->faults[0].spec.params.at("ports") == "443,9000-9100");
  CHECK(sc->faults[0].spec.duration == absl::Seconds(30));
  CHECK(sc->phases.observe == absl::Minutes(3));
  const auto* prom = std::get_if<PrometheusProbe>(&sc->probes[0].check);
  REQUIRE(prom != nullptr);
  CHECK(prom->below == 0.05);
  REQUIRE(sc->guard.has_value());
  CHECK(sc->guard->start_minute == 10 * 60);
  CHECK(sc->guard->end_minute == 16 * 60);
  CHECK(sc->guard->days.size() == 3);
}

TEST_CASE("the complete example in SCHEMA.md validates", "[scenarios][library]") {
  std::ifstream in(chaosdrill::testing::SourcePath("scenarios/SCHEMA.md"));
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string doc = buf.str();
  const std::string start_marker = "## A complete example\n\n```yaml\n";
  size_t start = doc.find(start_marker);
  REQUIRE(start != std::string::npos);
  start += start_marker.size();
  size_t end = doc.find("```", start);
  REQUIRE(end != std::string::npos);
  ScenarioLoadResult r =
      LoadScenario(doc.substr(start, end - start), "SCHEMA.md example", testing::TestCatalog());
  for (const ValidationError& e : r.errors) FAIL(e.ToString());
  CHECK(r.ok());
}

}  // namespace
}  // namespace chaosdrill::scenarios
