// Load on the agent (issue 4): 8 clients x 200 Inject/Revert pairs at once over the Unix
// socket. Its own binary so that ctest can give it a longer timeout: every pair costs the
// journal three or four fsyncs, which on a busy shared disk can take tens of ms each.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "injector/journal.h"
#include "tests/agent/agent_harness.h"
#include "tests/agent/test_pause_fault.h"

namespace chaosdrill::testing {
namespace {

using agent::AgentClient;

FaultSpec Pause(pid_t pid) {
  return {.kind = "test.pause", .params = {{"pid", std::to_string(pid)}}};
}

TEST_CASE(
    "load: 8 clients x 200 Inject/Revert pairs, all reverted, journal consistent, no "
    "fd or thread growth",
    "[agent][slow]") {
  AgentHarness h;
  h.Start();
  std::vector<std::unique_ptr<Child>> sleepers;
  std::vector<std::unique_ptr<AgentClient>> clients;
  for (int i = 0; i < 8; ++i) {
    sleepers.push_back(StartSleeper());
    clients.push_back(h.UnixClient());
  }
  // Warm up each connection once so the baseline includes its steady-state fds.
  for (int i = 0; i < 8; ++i) {
    auto r = clients[i]->Inject(Pause(sleepers[i]->pid()));
    REQUIRE(r.ok());
    REQUIRE(clients[i]->Revert(r->fault_id()).ok());
  }
  std::string proc = absl::StrCat("/proc/", h.agent->pid());
  int fds_before = CountEntries(proc + "/fd");
  int threads_before = CountEntries(proc + "/task");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < 200; ++n) {
        auto r = clients[i]->Inject(Pause(sleepers[i]->pid()));
        if (!r.ok() || !clients[i]->Revert(r->fault_id()).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  for (auto& s : sleepers) CHECK(ProcessState(s->pid()) != 'T');
  auto list = clients[0]->List();
  REQUIRE(list.ok());
  for (const auto& f : list->faults()) CHECK(f.state() != agent::v1::FAULT_STATE_ACTIVE);
  auto journal = injector::RevertJournal::Open(h.journal);
  REQUIRE(journal.ok());
  CHECK((*journal)->OpenEntries()->empty());
  int fds_after = CountEntries(proc + "/fd");
  int threads_after = CountEntries(proc + "/task");
  INFO("fds " << fds_before << " -> " << fds_after << ", threads " << threads_before << " -> "
              << threads_after);
  CHECK(fds_after <= fds_before + 2);
  CHECK(threads_after <= threads_before + 4);  // gRPC's executor may scale a little
}

}  // namespace
}  // namespace chaosdrill::testing
