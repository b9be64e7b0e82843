// Every library drill that needs neither root nor a GPU, run for real with `chaosdrill run`
// against the reference service (about a minute each, hence [slow]). Each case checks that
// the drill completed (exit 0 or 1: it ran to its verdict), that every fault was injected,
// and the property the drill exists to show — the part of its verdict that does not depend
// on how busy this machine is (sync loses no acknowledged write, async does, the deep
// probe ejects a wrong-answering replica, ...). Latency and RTO SLOs are also judged and
// printed, but a shared 2-core machine stalls for hundreds of milliseconds now and then,
// so an SLO verdict of 1 is reported, not failed; the SLO outcomes measured on a quiet run
// are in docs/scenarios.md.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

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

// Runs scenarios/library/NAME.yaml; returns its exit code, output and run record.
Run RunLibraryDrill(const std::string& name, const testing::TempDir& dir) {
  Run run;
  auto r = RunCommand({ChaosdrillBinary(), "run", "--progress", "none", "--report-dir", dir.path(),
                       SourcePath("scenarios/library/" + name + ".yaml")},
                      300'000);
  run.exit_code = r.exit_code;
  run.out = r.out + r.err;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    if (e.path().extension() == ".json") {
      std::ifstream in(e.path());
      run.record = json::parse(in, nullptr, /*allow_exceptions=*/false);
    }
  }
  // Completed: verdict reached (0 all SLOs met, 1 an SLO failed). 2-4 would be a bug.
  INFO(run.out);
  CHECK((run.exit_code == 0 || run.exit_code == 1));
  REQUIRE(run.record.is_object());
  for (const json& f : run.record["faults"]) {
    INFO(f.dump());
    CHECK_FALSE(f["inject_failed"].get<bool>());
  }
  // The verdict, for the log.
  std::printf("%s: exit %d\n", name.c_str(), run.exit_code);
  for (const json& v : run.record["analysis"]["slos"]) {
    std::printf("  slo %-28s %-4s target %-8s measured %s\n", v["name"].get<std::string>().c_str(),
                v["pass"].get<bool>() ? "ok" : "FAIL", v["target"].get<std::string>().c_str(),
                v["measured"].get<std::string>().c_str());
  }
  if (run.exit_code == 1) std::printf("  (SLO verdict failed on this machine; see above)\n");
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

TEST_CASE("library store-primary-kill-async: the loss stays within the replication lag",
          "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("store-primary-kill-async", dir);
  const json& rpo = run.record["analysis"]["rpo"];
  INFO(rpo.dump());
  CHECK(rpo["acknowledged"].get<int>() > 0);
  // At most the 5 s the replica was frozen, at 200 writes/s. Over loopback the kernel
  // buffers the stream and this is usually 0 (see the scenario's header).
  CHECK(rpo["lost"].get<int>() <= 1000);
  std::printf("  async RPO: %d of %d acknowledged writes lost\n", rpo["lost"].get<int>(),
              rpo["acknowledged"].get<int>());
}

TEST_CASE("library store-primary-kill-sync: no acknowledged write is lost (RPO 0)",
          "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("store-primary-kill-sync", dir);
  const json& rpo = run.record["analysis"]["rpo"];
  INFO(rpo.dump());
  CHECK(rpo["acknowledged"].get<int>() > 0);
  CHECK(rpo["lost"].get<int>() == 0);
}

TEST_CASE("library rolling-restart: every replica restarts and the drill recovers",
          "[library][slow]") {
  if (!Ready()) return;
  testing::TempDir dir;
  Run run = RunLibraryDrill("rolling-restart", dir);
  for (const char* f : {"restart-replica-0", "restart-replica-1", "restart-replica-2"}) {
    INFO(f);
    CHECK(Fault(run, f)["recovered"].get<bool>());
  }
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
}

}  // namespace
}  // namespace chaosdrill
