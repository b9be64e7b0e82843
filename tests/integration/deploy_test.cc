// The deployment files in deploy/ are at least well-formed and consistent with the code:
// every Kubernetes manifest parses and names its kind, namespace and name; the agent
// ConfigMap's agent.yaml is accepted by the agent's own config parser; every scenario in
// the game-day ConfigMap validates against the registered fault kinds; the DaemonSet and
// CronJob reference volumes, ConfigMap keys and files that exist; the CI workflows parse
// and name library scenarios that exist. No cluster is involved (docs/kubernetes.md says
// what that leaves unverified).
#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "injector/agent/agent_config.h"
#include "injector/fault_registry.h"
#include "scenarios/scenario_loader.h"
#include "tests/test_support.h"

namespace chaosdrill {
namespace {

using testing::SourcePath;

std::vector<YAML::Node> LoadDocs(const std::string& relative) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAllFromFile(SourcePath(relative));
  } catch (const YAML::Exception& e) {
    FAIL(relative << ": " << e.what());
  }
  return docs;
}

// Every manifest document, with the file it came from.
std::vector<std::pair<std::string, YAML::Node>> Manifests() {
  std::vector<std::pair<std::string, YAML::Node>> out;
  for (const auto& e : std::filesystem::directory_iterator(SourcePath("deploy/kubernetes"))) {
    std::string name = e.path().filename().string();
    if (e.path().extension() != ".yaml" || name == "kustomization.yaml") continue;
    for (const YAML::Node& d : LoadDocs("deploy/kubernetes/" + name)) out.emplace_back(name, d);
  }
  return out;
}

YAML::Node Find(const std::string& kind, const std::string& name) {
  for (const auto& [file, d] : Manifests()) {
    if (d["kind"].as<std::string>() == kind && d["metadata"]["name"].as<std::string>() == name) {
      return d;
    }
  }
  FAIL("no " << kind << " " << name << " in deploy/kubernetes");
  return {};
}

TEST_CASE("every Kubernetes manifest parses and names its kind, namespace and name", "[deploy]") {
  auto manifests = Manifests();
  REQUIRE(manifests.size() >= 8);
  for (const auto& [file, d] : manifests) {
    INFO(file);
    REQUIRE(d.IsMap());
    CHECK(d["apiVersion"].IsScalar());
    REQUIRE(d["kind"].IsScalar());
    REQUIRE(d["metadata"]["name"].IsScalar());
    if (d["kind"].as<std::string>() != "Namespace") {
      CHECK(d["metadata"]["namespace"].as<std::string>() == "chaosdrill");
    }
  }
  YAML::Node kustomization = LoadDocs("deploy/kubernetes/kustomization.yaml").at(0);
  for (const YAML::Node& r : kustomization["resources"]) {
    INFO(r.as<std::string>());
    CHECK(std::filesystem::exists(SourcePath("deploy/kubernetes/" + r.as<std::string>())));
  }
}

TEST_CASE("the agent ConfigMap's agent.yaml is accepted by the agent's config parser", "[deploy]") {
  YAML::Node cm = Find("ConfigMap", "chaosdrill-agent");
  auto config = agent::ParseAgentConfig(cm["data"]["agent.yaml"].as<std::string>(),
                                        "deploy/kubernetes/agent-config.yaml");
  INFO(config.status().ToString());
  REQUIRE(config.ok());
}

TEST_CASE("every game-day scenario in the ConfigMap validates, and the CronJob runs them",
          "[deploy]") {
  injector::RegisterBuiltinFaults();
  auto catalog = injector::FaultRegistry::Global().Catalog();
  YAML::Node cm = Find("ConfigMap", "chaosdrill-gameday-scenarios");
  std::set<std::string> keys;
  for (const auto& kv : cm["data"]) {
    std::string key = kv.first.as<std::string>();
    keys.insert(key);
    auto r = scenarios::LoadScenario(kv.second.as<std::string>(), key, catalog);
    std::string errors;
    for (const auto& e : r.errors) errors += e.ToString() + "\n";
    INFO(errors);
    CHECK(r.ok());
  }
  REQUIRE_FALSE(keys.empty());
  YAML::Node job = Find("CronJob", "chaosdrill-gameday");
  YAML::Node pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"];
  YAML::Node command = pod["containers"][0]["command"];
  bool ran_one = false;
  for (const YAML::Node& arg : command) {
    std::string a = arg.as<std::string>();
    const std::string dir = "/etc/chaosdrill/scenarios/";
    if (a.rfind(dir, 0) == 0) {
      INFO(a);
      CHECK(keys.count(a.substr(dir.size())) == 1);
      ran_one = true;
    }
  }
  CHECK(ran_one);
}

TEST_CASE("the agent DaemonSet is host-level but not privileged, and mounts what it names",
          "[deploy]") {
  YAML::Node ds = Find("DaemonSet", "chaosdrill-agent");
  YAML::Node pod = ds["spec"]["template"]["spec"];
  CHECK(pod["hostNetwork"].as<bool>());
  CHECK(pod["hostPID"].as<bool>());
  CHECK_FALSE(pod["automountServiceAccountToken"].as<bool>());
  YAML::Node c = pod["containers"][0];
  CHECK_FALSE(c["securityContext"]["privileged"].as<bool>());
  std::set<std::string> caps;
  for (const YAML::Node& cap : c["securityContext"]["capabilities"]["add"]) {
    caps.insert(cap.as<std::string>());
  }
  CHECK(caps == std::set<std::string>{"NET_ADMIN", "KILL", "SYS_PTRACE", "DAC_READ_SEARCH"});
  std::set<std::string> volumes;
  for (const YAML::Node& v : pod["volumes"]) volumes.insert(v["name"].as<std::string>());
  for (const YAML::Node& m : c["volumeMounts"]) {
    INFO(m["name"].as<std::string>());
    CHECK(volumes.count(m["name"].as<std::string>()) == 1);
  }
  // The config path the command names is where the ConfigMap is mounted.
  bool config_mounted = false;
  for (const YAML::Node& m : c["volumeMounts"]) {
    config_mounted |= m["mountPath"].as<std::string>() == "/etc/chaosdrill/agent.yaml";
  }
  CHECK(config_mounted);
}

TEST_CASE("the CI game-day workflows parse and run library scenarios that exist", "[deploy]") {
  YAML::Node gh = LoadDocs("deploy/ci/github-actions-gameday.yml").at(0);
  YAML::Node gl = LoadDocs("deploy/ci/gitlab-ci-gameday.yml").at(0);
  std::string gh_set = gh["jobs"]["drills"]["env"]["SCENARIOS"].as<std::string>();
  std::string gl_set = gl["gameday"]["variables"]["SCENARIOS"].as<std::string>();
  CHECK(gh_set == gl_set);
  std::vector<std::string> files = absl::StrSplit(gh_set, ' ', absl::SkipWhitespace());
  REQUIRE(files.size() >= 5);
  for (const std::string& f : files) {
    INFO(f);
    CHECK(std::filesystem::exists(SourcePath(f)));
  }
  CHECK(gh["on"]["schedule"][0]["cron"].IsScalar());
  CHECK(gl["gameday"]["artifacts"]["reports"]["junit"].IsScalar());
}

}  // namespace
}  // namespace chaosdrill
