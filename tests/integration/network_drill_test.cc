// A network drill for real (root): `chaosdrill run` cuts replica[1]'s own link
// (target.reference.network: netns, network.partition on role replica[1]) inside a
// throwaway namespace standing in for the host (tests/reference/netns_host.h), and the
// test watches from outside the runner: the nftables ruleset and the gateway's own
// metrics, sampled while the drill runs, lined up with the drill's --events stream
// (monotonic_ns). The record must name replica[1]'s link; the gateway must take replica[1]
// alone out of routing while the others keep serving, and take it back after the heal;
// nothing may be left afterwards.
#include <time.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "reference/topology.h"
#include "tests/reference/netns_host.h"
#include "tests/reference/service_test_util.h"
#include "tests/test_support.h"

namespace chaosdrill {
namespace {

using nlohmann::json;
using testing::CommandResult;
using testing::MonoNs;
using testing::SkipUnless;

// Whether table inet chaosdrill holds a rule matching iifname/oifname == iface.
bool RuleOn(const std::string& ruleset, const std::string& iface) {
  json j = json::parse(ruleset, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  for (const json& item : j.value("nftables", json::array())) {
    if (!item.contains("rule") || item["rule"].value("table", "") != "chaosdrill") continue;
    if (item["rule"].dump().find(absl::StrCat("\"", iface, "\"")) != std::string::npos) {
      return true;
    }
  }
  return false;
}

bool HasChaosdrillTable(const std::string& ruleset) {
  json j = json::parse(ruleset, nullptr, /*allow_exceptions=*/false);
  for (const json& item : j.value("nftables", json::array())) {
    if (item.contains("table") && item["table"].value("name", "") == "chaosdrill") return true;
  }
  return false;
}

struct Scrape {
  int64_t before_ns = 0, after_ns = 0;
  std::map<std::string, double> routable;  // by replica address
  std::map<std::string, double> ok;        // tries answered OK, by replica address
};

struct NftSample {
  int64_t before_ns = 0, after_ns = 0;
  bool rule = false;
};

std::optional<std::filesystem::path> FindTopology(const std::string& reports) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(reports, ec)) {
    auto p = e.path() / "reference" / "topology.json";
    if (std::filesystem::exists(p)) return p;
  }
  return std::nullopt;
}

TEST_CASE(
    "network drill: a partition of the link of replica 1 takes it alone out of routing and "
    "every witness returns to baseline",
    "[root][netns][integration][slow]") {
  if (!testing::RunInFreshNetns(300'000)) return;
  if (SkipUnless(reference::testing::HaveRedis(), "needs redis-server and redis-sentinel")) return;
  if (SkipUnless(reference::testing::HaveCliReference(), "needs build/chaosdrill")) return;
  testing::TempDir dir;
  const std::string reports = dir.path() + "/reports";
  const std::string events = dir.path() + "/events.jsonl";
  const std::string file = dir.Write(
      "cut.yaml",
      "apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: netns-partition-test}\n"
      "target:\n  reference: {replicas: 3, network: netns, model: {width: 32, depth: 2}}\n"
      "load: {rate: 50/s, timeout: 2s}\nsteady_state: {success_ratio: 0.9}\n"
      "phases: {baseline: 4s, observe: 18s, hold: 2s}\n"
      "faults:\n  - {name: cut-replica-1, kind: network.partition, at: 6s, duration: 6s,\n"
      "     target: {role: \"replica[1]\"}, direction: both}\n"
      "report: {formats: [json]}\n");
  CHECK(testing::LinksNamed("cdr").empty());

  std::atomic<bool> done{false};
  CommandResult run;
  std::thread runner([&] {
    run = testing::RunCommand({testing::ChaosdrillBinary(), "run", "--progress", "none",
                               "--report-dir", reports, "--events", events, file},
                              240'000);
    done = true;
  });

  // Witnesses while it runs: the gateway's metrics every 100 ms, the ruleset each round.
  std::optional<reference::Topology> topology;
  std::vector<Scrape> scrapes;
  std::vector<NftSample> nft;
  std::string iface;
  std::vector<std::string> replicas;  // addresses of replica[0..2]
  while (!done) {
    if (!topology) {
      if (auto p = FindTopology(reports)) {
        auto t = reference::Topology::Load(p->string());
        if (t.ok() && t->running && !t->metrics.empty() && t->roles.count("replica[2]") > 0) {
          topology = *t;
          iface = t->roles.at("replica[1]").interface;
          for (int i = 0; i < 3; ++i) {
            replicas.push_back(t->roles.at(absl::StrCat("replica[", i, "]")).address);
          }
        }
      }
      absl::SleepFor(absl::Milliseconds(100));
      continue;
    }
    Scrape s;
    s.before_ns = MonoNs();
    const std::string body = reference::testing::HttpGet(topology->metrics, "/metrics");
    s.after_ns = MonoNs();
    for (const std::string& r : replicas) {
      if (auto v = reference::testing::PromValue(body, "chaosdrill_gateway_replica_routable",
                                                 {{"replica", r}})) {
        s.routable[r] = *v;
      }
      s.ok[r] = reference::testing::PromValue(body, "chaosdrill_gateway_replica_requests_total",
                                              {{"replica", r}, {"code", "OK"}})
                    .value_or(0);
    }
    if (s.routable.size() == 3) scrapes.push_back(s);
    NftSample n;
    n.before_ns = MonoNs();
    n.rule = RuleOn(testing::NftRuleset(), iface);
    n.after_ns = MonoNs();
    nft.push_back(n);
    absl::SleepFor(absl::Milliseconds(100));
  }
  runner.join();
  INFO(run.out << run.err);
  REQUIRE((run.exit_code == 0 || run.exit_code == 1));  // ran to its verdict
  REQUIRE(topology.has_value());
  CHECK(topology->network == "netns");
  CHECK(absl::StartsWith(iface, "cdr"));

  // The record: the fault went on replica[1]'s link, was applied and reverted.
  json record;
  for (const auto& e : std::filesystem::directory_iterator(reports)) {
    if (e.path().extension() == ".json") {
      std::ifstream in(e.path());
      record = json::parse(in, nullptr, /*allow_exceptions=*/false);
    }
  }
  REQUIRE(record.is_object());
  REQUIRE(record["faults"].size() == 1);
  const json& fault = record["faults"][0];
  CHECK(fault.value("kind", "") == "network.partition");
  CHECK(fault.value("target", "") ==
        absl::StrCat("replica[1] link ", iface, " (", replicas[1], ")"));
  CHECK(fault.contains("injected_ns"));
  CHECK(fault.contains("reverted_ns"));

  // Inject and revert on our clock, from the events stream.
  std::optional<int64_t> inject, revert;
  std::ifstream ev(events);
  for (std::string line; std::getline(ev, line);) {
    json e = json::parse(line, nullptr, false);
    if (!e.is_object() || e.value("fault", "") != "cut-replica-1") continue;
    if (e.value("type", "") == "inject") inject = e.value("monotonic_ns", int64_t{0});
    if (e.value("type", "") == "revert" && !revert) revert = e.value("monotonic_ns", int64_t{0});
  }
  REQUIRE(inject.has_value());
  REQUIRE(revert.has_value());
  CHECK(*revert - *inject >= 5'900'000'000);

  // nftables: our rule on that interface while the fault was held, and only then. (The
  // inject event follows the agent's confirmation; the revert event follows its
  // confirmation that the rules are gone.)
  int during = 0, during_with_rule = 0, outside = 0, outside_with_rule = 0;
  for (const NftSample& n : nft) {
    if (n.before_ns > *inject && n.after_ns < *revert - 100'000'000) {
      ++during;
      during_with_rule += n.rule ? 1 : 0;
    }
    if (n.after_ns < *inject - 1'000'000'000 || n.before_ns > *revert) {
      ++outside;
      outside_with_rule += n.rule ? 1 : 0;
    }
  }
  CHECK(during > 0);
  CHECK(during_with_rule == during);
  CHECK(outside > 0);
  CHECK(outside_with_rule == 0);

  // The gateway: replica[1] out of routing, the others routable and serving, during the
  // fault. Health checks run every 500 ms with a 250 ms timeout and fall 2, so 2.5 s after
  // the cut replica[1] must be out; dropped both ways, it cannot answer anything after the
  // cut (a response counted within 0.5 s of it was on the wire before).
  const Scrape* first = nullptr;
  const Scrape* last = nullptr;
  const Scrape* out = nullptr;
  for (const Scrape& s : scrapes) {
    if (s.before_ns >= *inject + 500'000'000 && s.after_ns <= *revert) {
      if (first == nullptr) first = &s;
      last = &s;
    }
    if (out == nullptr && s.before_ns >= *inject && s.routable.at(replicas[1]) == 0) out = &s;
  }
  REQUIRE(first != nullptr);
  REQUIRE(last != nullptr);
  REQUIRE(last->before_ns >= *inject + 2'500'000'000);
  CHECK(last->routable.at(replicas[1]) == 0);
  CHECK(last->routable.at(replicas[0]) == 1);
  CHECK(last->routable.at(replicas[2]) == 1);
  CHECK(last->ok.at(replicas[1]) == first->ok.at(replicas[1]));
  CHECK(last->ok.at(replicas[0]) > first->ok.at(replicas[0]));
  CHECK(last->ok.at(replicas[2]) > first->ok.at(replicas[2]));
  // After the heal: replica[1] routable and answering again before the drill ended.
  const Scrape* back = nullptr;
  for (const Scrape& s : scrapes) {
    if (s.before_ns > *revert && s.routable.at(replicas[1]) == 1 &&
        s.ok.at(replicas[1]) > last->ok.at(replicas[1])) {
      back = &s;
      break;
    }
  }
  CHECK(back != nullptr);
  std::printf(
      "network drill: %s on %s; replica[1] out of routing %.2f s after the cut; during the "
      "fault OK tries replica[0] +%.0f, replica[1] +%.0f, replica[2] +%.0f; back %.2f s after "
      "the heal; %zu scrapes, nft rule seen in %d of %d samples during the fault and %d of %d "
      "outside\n",
      fault.value("target", "").c_str(), iface.c_str(),
      out ? (out->after_ns - *inject) / 1e9 : -1.0,
      last->ok.at(replicas[0]) - first->ok.at(replicas[0]),
      last->ok.at(replicas[1]) - first->ok.at(replicas[1]),
      last->ok.at(replicas[2]) - first->ok.at(replicas[2]),
      back ? (back->after_ns - *revert) / 1e9 : -1.0, scrapes.size(), during_with_rule, during,
      outside_with_rule, outside);

  // Back at baseline: no chaosdrill table, no replica link, no process of the service.
  CHECK_FALSE(HasChaosdrillTable(testing::NftRuleset()));
  std::vector<std::string> left;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    left = testing::LinksNamed("cdr");
    if (left.empty()) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  CHECK(left.empty());
  std::set<pid_t> pids;
  reference::testing::Remember(*topology, pids);
  CHECK(reference::testing::Leftovers(pids).empty());
}

}  // namespace
}  // namespace chaosdrill
