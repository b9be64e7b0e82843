// Every library drill that needs neither root nor a GPU, run for real with `chaosdrill run`
// against the reference service (about a minute each, hence [slow]), each with its expected
// verdict (issue 9): the exit code is asserted (0: every SLO met; no library drill is
// designed to fail one: store-primary-kill-async states its loss as a bound, as
// docs/gameday-ci.md advises), every fault was injected, and the property the drill exists
// to show holds (sync loses no acknowledged write, async loses exactly a tail acknowledged
// while the link was slow, the deep probe ejects a wrong-answering replica, ...). Every SLO
// is printed with its target and measured value.
//
// The drills run as the library ships them, except where an SLO measures this machine's
// scheduling rather than the service: a variant (written next to the run from the library
// file, with `slo` entries replaced) loosens exactly those, each with its reason printed.
// The measured values on this box are in docs/scenarios.md.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/test_support.h"

namespace chaosdrill {
namespace {

using nlohmann::json;
using testing::ChaosdrillBinary;
using testing::RunCommand;
using testing::SkipUnless;
using testing::SourcePath;

struct Run {
  int exit_code = -1;
  std::string out;
  json record;
};

bool HaveRedis() {
  for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
    if (std::filesystem::exists(p)) return true;
  }
  return false;
}

// SLO entries a variant replaces (e.g. {"p99", "1s"}), and why.
struct Loosen {
  std::vector<std::pair<std::string, std::string>> slo;
  std::string why;
};

// The file to run: the library's own, or a copy in `dir` with `loosen` applied.
std::string ScenarioFile(const std::string& name, const testing::TempDir& dir,
                         const Loosen& loosen) {
  const std::string source = SourcePath("scenarios/library/" + name + ".yaml");
  if (loosen.slo.empty()) return source;
  YAML::Node doc = YAML::LoadFile(source);
  for (const auto& [key, value] : loosen.slo) {
    std::printf("%s: variant slo.%s %s -> %s (%s)\n", name.c_str(), key.c_str(),
                doc["slo"][key] ? doc["slo"][key].as<std::string>().c_str() : "unset",
                value.c_str(), loosen.why.c_str());
    doc["slo"][key] = value;
  }
  YAML::Emitter out;
  out << doc;
  const std::string path = dir.path() + "/" + name + ".yaml";
  std::ofstream(path) << out.c_str() << "\n";
  return path;
}

// Runs scenarios/library/NAME.yaml (or its variant) and checks that it ended with
// `expected_exit`; returns its exit code, output and run record.
Run RunLibraryDrill(const std::string& name, const testing::TempDir& dir, int expected_exit = 0,
                    const Loosen& loosen = {}) {
  Run run;
  const std::string file = ScenarioFile(name, dir, loosen);
  const std::string reports = dir.path() + "/reports";
  std::filesystem::create_directories(reports);
  auto r = RunCommand(
      {ChaosdrillBinary(), "run", "--progress", "none", "--report-dir", reports, file}, 300'000);
  run.exit_code = r.exit_code;
  run.out = r.out + r.err;
  for (const auto& e : std::filesystem::directory_iterator(reports)) {
    if (e.path().extension() == ".json") {
      std::ifstream in(e.path());
      run.record = json::parse(in, nullptr, /*allow_exceptions=*/false);
    }
  }
  INFO(run.out);
  REQUIRE(run.record.is_object());
  for (const json& f : run.record["faults"]) {
    INFO(f.dump());
    CHECK_FALSE(f["inject_failed"].get<bool>());
  }
  // The verdict, measured values first, then the assertion.
  const std::string reason = run.record["exit"].value("reason", std::string());
  std::printf("%s: exit %d (expected %d)%s%s\n", name.c_str(), run.exit_code, expected_exit,
              reason.empty() ? "" : ": ", reason.c_str());
  for (const json& v : run.record["analysis"]["slos"]) {
    std::printf("  slo %-28s %-4s target %-8s measured %s\n", v["name"].get<std::string>().c_str(),
                v["pass"].get<bool>() ? "ok" : "FAIL", v["target"].get<std::string>().c_str(),
                v["measured"].get<std::string>().c_str());
  }
  for (const json& f : run.record["analysis"]["faults"]) {
    std::printf("  fault %-20s impact %-3s recovered %-3s rto %.3f s, failed %d\n",
                f["name"].get<std::string>().c_str(), f["impact"].get<bool>() ? "yes" : "no",
                f["recovered"].get<bool>() ? "yes" : "no", f.value("rto_ns", int64_t{0}) / 1e9,
                f.value("failed_requests", 0));
  }
  std::printf("  availability %.4f, p99 %.1f ms\n",
              run.record["analysis"].value("availability", 0.0),
              run.record["analysis"].value("p99_ns", int64_t{0}) / 1e6);
  CHECK(run.exit_code == expected_exit);
  return run;
}

const json& Fault(const Run& run, const std::string& name) {
  for (const json& f : run.record["analysis"]["faults"]) {
    if (f["name"] == name) return f;
  }
  FAIL("no fault result named " << name);
  static json none;
  return none;
}

bool Ready() {
  if (SkipUnless(std::filesystem::exists(ChaosdrillBinary()), "needs build/chaosdrill")) {
    return false;
  }
  return !SkipUnless(HaveRedis(), "redis-server not installed (scripts/install-deps.sh)");
}

TEST_CASE("library replica-kill: both kills are absorbed and recovered", "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("replica-kill", dir);
  CHECK(Fault(run, "kill-replica-0")["recovered"].get<bool>());
  CHECK(Fault(run, "kill-any-replica")["recovered"].get<bool>());
  CHECK(run.record["analysis"]["rpo"]["lost"].get<int>() == 0);
}

TEST_CASE("library replica-hang: the frozen replica is routed around and recovered",
          "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("replica-hang", dir);
  const json& f = Fault(run, "hang-replica-1");
  CHECK(f["recovered"].get<bool>());
  // Without health checks a third of 15 s of traffic would be lost; with them, a handful.
  CHECK(f["failed_requests"].get<int>() < 150);
}

TEST_CASE("library gray-failure: wrong answers are seen and the deep probe stops them",
          "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("gray-failure", dir);
  const json& f = Fault(run, "wrong-answers");
  CHECK(f["impact"].get<bool>());     // the fault really made answers wrong
  CHECK(f["recovered"].get<bool>());  // ...and they stopped while it was still applied
  CHECK(f["recovered_ns"].get<int64_t>() < run.record["faults"][0]["reverted_ns"].get<int64_t>());
}

TEST_CASE("library latency-spike: both proxy faults are applied and recovered", "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("latency-spike", dir);
  CHECK(Fault(run, "gateway-latency")["recovered"].get<bool>());
  CHECK(Fault(run, "gateway-jitter")["recovered"].get<bool>());
  // 150 ms was really added: the drill's p99 is above it.
  CHECK(run.record["analysis"]["p99_ns"].get<int64_t>() > 150'000'000);
}

TEST_CASE("library cpu-noisy-neighbour: the burn is applied and recovered", "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("cpu-noisy-neighbour", dir);
  CHECK(Fault(run, "noisy-neighbour")["recovered"].get<bool>());
}

TEST_CASE("library memory-pressure: the memory is held and released", "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("memory-pressure", dir);
  CHECK(Fault(run, "hold-ram")["recovered"].get<bool>());
  CHECK(run.record["analysis"]["rpo"]["lost"].get<int>() == 0);
}

// The writes the record lists as lost: each acknowledged between `from_ns` and `to_ns`, and
// per session a contiguous run of its acknowledged sequence (the old primary's tail).
void CheckLostTail(const Run& run, int64_t from_ns, int64_t to_ns) {
  const json& rpo = run.record["analysis"]["rpo"];
  std::map<std::string, std::vector<int64_t>> lost;
  int64_t first = std::numeric_limits<int64_t>::max(), last = 0;
  for (const json& l : rpo["lost_writes"]) {
    lost[l["session"].get<std::string>()].push_back(l["seq"].get<int64_t>());
    const int64_t ack = l["ack_ns"].get<int64_t>();
    first = std::min(first, ack);
    last = std::max(last, ack);
  }
  CHECK(rpo["lost_writes"].size() == rpo["lost"].get<size_t>());
  std::set<std::pair<std::string, int64_t>> acked;
  for (const json& w : run.record["writes"]) {
    if (w.contains("ack_ns") && !w["ack_ns"].is_null()) {
      acked.insert({w["session"].get<std::string>(), w["seq"].get<int64_t>()});
    }
  }
  int not_contiguous = 0;
  for (auto& [session, seqs] : lost) {
    std::sort(seqs.begin(), seqs.end());
    for (int64_t q = seqs.front(); q <= seqs.back(); ++q) {
      // Every acknowledged write between the first and the last lost one is lost too.
      if (acked.count({session, q}) && !std::binary_search(seqs.begin(), seqs.end(), q)) {
        ++not_contiguous;
      }
    }
  }
  std::printf(
      "  lost: %zu writes in %zu sessions, acknowledged %.2f..%.2f s (window %.2f..%.2f s); "
      "e.g. %s seq %lld..%lld\n",
      rpo["lost_writes"].size(), lost.size(), first / 1e9, last / 1e9, from_ns / 1e9, to_ns / 1e9,
      lost.empty() ? "-" : lost.begin()->first.c_str(),
      lost.empty() ? 0LL : static_cast<long long>(lost.begin()->second.front()),
      lost.empty() ? 0LL : static_cast<long long>(lost.begin()->second.back()));
  CHECK(first >= from_ns);
  CHECK(last <= to_ns);
  CHECK(not_contiguous == 0);
}

int64_t InjectedNs(const Run& run, const std::string& name) {
  for (const json& f : run.record["faults"]) {
    if (f["name"] == name) return f["injected_ns"].get<int64_t>();
  }
  FAIL("no fault named " << name);
  return 0;
}

TEST_CASE("library store-primary-kill-async: a tail acknowledged over the slowed link is lost",
          "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("store-primary-kill-async", dir);
  const json& rpo = run.record["analysis"]["rpo"];
  std::printf("  async RPO: %d of %d acknowledged writes lost (%.3f s)\n", rpo["lost"].get<int>(),
              rpo["acknowledged"].get<int>(), rpo["rpo_ns"].get<int64_t>() / 1e9);
  CHECK(rpo["acknowledged"].get<int>() > 0);
  // Real loss: the replica was ~184 KiB/s behind for the 6 s before the kill.
  CHECK(rpo["lost"].get<int>() > 0);
  // ...and only that: acknowledged after the link slowed (less the one in flight) and
  // before the primary died (300 ms: an acknowledgement on its way through the gateway).
  CheckLostTail(run, InjectedNs(run, "slow-link") - 100'000'000,
                InjectedNs(run, "kill-store-primary") + 300'000'000);
}

TEST_CASE("library store-primary-kill-sync: no acknowledged write is lost (RPO 0)",
          "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("store-primary-kill-sync", dir);
  const json& rpo = run.record["analysis"]["rpo"];
  std::printf("  sync RPO: %d of %d acknowledged writes lost, %d writes, %d ambiguous\n",
              rpo["lost"].get<int>(), rpo["acknowledged"].get<int>(), rpo["writes"].get<int>(),
              rpo["ambiguous"].get<int>());
  CHECK(rpo["acknowledged"].get<int>() > 0);
  CHECK(rpo["lost"].get<int>() == 0);
  // Not vacuous: the same slowed link, and writes went on after the failover.
  CHECK_FALSE(Fault(run, "slow-link")["impact"].get<bool>());
  int64_t acked_after_kill = 0;
  const int64_t kill = InjectedNs(run, "kill-store-primary");
  for (const json& w : run.record["writes"]) {
    if (w.contains("ack_ns") && !w["ack_ns"].is_null() && w["ack_ns"].get<int64_t>() > kill) {
      ++acked_after_kill;
    }
  }
  std::printf("  %lld acknowledged after the kill\n", static_cast<long long>(acked_after_kill));
  CHECK(acked_after_kill > 100);
}

TEST_CASE("library rolling-restart: every replica restarts and no request fails",
          "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  // The drill's promise is zero failed requests, which its SLOs spell availability 1.0 and
  // RTO 1 s with a 1 s good_latency: one request held past 1 s by this shared machine's
  // scheduling anywhere in a restart's 15 s span would fail both (the RTO becoming the
  // time to that stall). The variant tolerates lateness (availability 0.999, rto 15 s: the
  // span) and the test asserts the promise itself: no request answered with an error, no
  // timeout, no wrong answer.
  Run run = RunLibraryDrill(
      "rolling-restart", dir, 0,
      {{{"availability", "0.999"}, {"rto", "15s"}},
       "a loaded 2-core box can delay a request past good_latency; errors are checked apart"});
  for (const char* f : {"restart-replica-0", "restart-replica-1", "restart-replica-2"}) {
    INFO(f);
    CHECK(Fault(run, f)["recovered"].get<bool>());
  }
  const json& q = run.record["requests"];
  int errors = 0, timeouts = 0, wrong = 0, late = 0;
  const int64_t good_latency = run.record["analysis"]["good_latency_ns"].get<int64_t>();
  for (size_t i = 0; i < q["code"].size(); ++i) {
    const int flags = q["flags"][i].get<int>();
    errors += q["code"][i].get<int>() != 0;
    timeouts += (flags & 1) != 0;
    wrong += (flags & 4) != 0;
    late += q["code"][i].get<int>() == 0 && q["latency_ns"][i].get<int64_t>() > good_latency;
  }
  std::printf("  rolling restart: %zu requests, %d errors, %d timeouts, %d wrong, %d late\n",
              q["code"].size(), errors, timeouts, wrong, late);
  CHECK(errors == 0);
  CHECK(timeouts == 0);
  CHECK(wrong == 0);
  // Three distinct replicas were signalled, one at a time.
  std::set<std::string> targets;
  for (const json& f : run.record["faults"]) targets.insert(f["target"].get<std::string>());
  CHECK(targets.size() == 3);
}

TEST_CASE("library demo: every fault recovers and the latency spike costs about its length",
          "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("demo", dir);
  const json& spike = Fault(run, "gateway-latency");
  CHECK(spike["impact"].get<bool>());
  CHECK(spike["recovered"].get<bool>());
  // 150 ms > good_latency 100 ms for 4 s: the outage is about the fault's length (longer
  // only if this machine stalls right after the revert).
  CHECK(spike["outage_ns"].get<int64_t>() > 3'000'000'000);
  CHECK(spike["outage_ns"].get<int64_t>() < 8'000'000'000);
  // Async over a replication link slowed to 4 KiB/s for the 6 s before the store kill: the
  // demo shows RPO > 0, a tail acknowledged while the link was slow.
  const json& rpo = run.record["analysis"]["rpo"];
  std::printf("  demo RPO: %d of %d acknowledged writes lost (%.3f s)\n", rpo["lost"].get<int>(),
              rpo["acknowledged"].get<int>(), rpo["rpo_ns"].get<int64_t>() / 1e9);
  CHECK(rpo["lost"].get<int>() > 0);
  CheckLostTail(run, InjectedNs(run, "slow-link") - 100'000'000,
                InjectedNs(run, "kill-store-primary") + 300'000'000);
}

}  // namespace
}  // namespace chaosdrill
