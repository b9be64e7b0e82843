// `chaosdrill inject`, `revert`, `doctor` and `faults` run as real processes, including
// the crash-safety drill: SIGKILL an inject holding a pause, then `revert` from the
// journal.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "injector/child_process.h"
#include "injector/fault_registry.h"
#include "injector/preflight.h"
#include "tests/injector/process_helpers.h"
#include "tests/test_support.h"

namespace chaosdrill {
namespace {

using testing::ChildProcess;

bool HaveBinary() {
  return !testing::SkipUnless(std::filesystem::exists(testing::ChaosdrillBinary()),
                              "build the chaosdrill binary first");
}

bool Stopped(char s) { return s == 'T'; }
bool NotStopped(char s) { return s != 'T' && s != 0; }

TEST_CASE("inject SIGKILLed while pausing: revert resumes the target", "[cli]") {
  if (!HaveBinary()) return;
  testing::TempDir dir;
  std::string journal = dir.path() + "/journal";
  ChildProcess target({"/bin/sleep", "1000"});
  // watchdog=false: only the journal can resume the target, which is what this tests.
  ChildProcess inject({testing::ChaosdrillBinary(), "inject", "process.pause", "--set",
                       absl::StrCat("pid=", target.pid()), "--set", "watchdog=false", "--duration",
                       "60s", "--journal", journal});
  REQUIRE(testing::WaitForState(target.pid(), Stopped, 10'000));
  kill(inject.pid(), SIGKILL);
  CHECK(inject.WaitForSignal(5000) == SIGKILL);
  CHECK(testing::ProcState(target.pid()) == 'T');  // still paused: nobody reverted yet

  testing::CommandResult r =
      testing::RunCommand({testing::ChaosdrillBinary(), "revert", "--journal", journal});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("reverted process.pause") != std::string::npos);
  CHECK(testing::WaitForState(target.pid(), NotStopped, 5000));

  r = testing::RunCommand({testing::ChaosdrillBinary(), "revert", "--journal", journal});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("nothing to revert") != std::string::npos);
}

TEST_CASE("inject SIGKILLed while pausing: the watchdog resumes the target", "[cli]") {
  if (!HaveBinary()) return;
  testing::TempDir dir;
  ChildProcess target({"/bin/sleep", "1000"});
  ChildProcess inject({testing::ChaosdrillBinary(), "inject", "process.pause", "--set",
                       absl::StrCat("pid=", target.pid()), "--duration", "60s", "--journal",
                       dir.path() + "/journal"});
  REQUIRE(testing::WaitForState(target.pid(), Stopped, 10'000));
  kill(inject.pid(), SIGKILL);
  CHECK(inject.WaitForSignal(5000) == SIGKILL);
  CHECK(testing::WaitForState(target.pid(), NotStopped, 5000));
}

TEST_CASE("inject holds for --duration, reverts and exits 0", "[cli]") {
  if (!HaveBinary()) return;
  testing::TempDir dir;
  ChildProcess target({"/bin/sleep", "1000"});
  testing::CommandResult r =
      testing::RunCommand({testing::ChaosdrillBinary(), "inject", "process.pause", "--set",
                           absl::StrCat("pid=", target.pid()), "--duration", "300ms", "--journal",
                           dir.path() + "/journal"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("reverted") != std::string::npos);
  CHECK(testing::WaitForState(target.pid(), NotStopped, 5000));
  CHECK(std::filesystem::file_size(dir.path() + "/journal") == 0);  // compacted
}

TEST_CASE("inject on SIGTERM reverts and exits 0", "[cli]") {
  if (!HaveBinary()) return;
  testing::TempDir dir;
  ChildProcess target({"/bin/sleep", "1000"});
  ChildProcess inject({testing::ChaosdrillBinary(), "inject", "process.pause", "--set",
                       absl::StrCat("pid=", target.pid()), "--journal", dir.path() + "/journal"});
  REQUIRE(testing::WaitForState(target.pid(), Stopped, 10'000));
  // The journal holds the update once Inject returned; then the signalfd is armed.
  REQUIRE(injector::PollUntil(
      [&] {
        std::error_code ec;
        return std::filesystem::file_size(dir.path() + "/journal", ec) > 0;
      },
      absl::Seconds(5)));
  kill(inject.pid(), SIGTERM);
  int status = 0;
  REQUIRE(injector::PollUntil([&] { return waitpid(inject.pid(), &status, WNOHANG) > 0; },
                              absl::Seconds(10)));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(testing::WaitForState(target.pid(), NotStopped, 5000));
}

TEST_CASE("inject rejects an unknown kind or a bad parameter and applies nothing", "[cli]") {
  if (!HaveBinary()) return;
  testing::TempDir dir;
  std::string journal = dir.path() + "/journal";
  testing::CommandResult r = testing::RunCommand(
      {testing::ChaosdrillBinary(), "inject", "process.explode", "--journal", journal});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("process.explode") != std::string::npos);

  r = testing::RunCommand({testing::ChaosdrillBinary(), "inject", "stress.cpu", "--set",
                           "load=150%", "--journal", journal});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("\"load\"") != std::string::npos);

  r = testing::RunCommand({testing::ChaosdrillBinary(), "inject", "process.pause", "--set",
                           "pid=999999999", "--journal", journal, "--duration", "1s"});
  CHECK(r.exit_code == 4);
  CHECK(r.err.find("999999999") != std::string::npos);
  CHECK(testing::RunCommand({testing::ChaosdrillBinary(), "revert", "--journal", journal})
            .out.find("nothing to revert") != std::string::npos);
}

// While alive, this process is the reaper of its orphaned descendants
// (PR_SET_CHILD_SUBREAPER): a worker that outlives the `chaosdrill inject` that forked it
// becomes our child, not init's, so LiveChildren() sees it. On destruction, reaps such
// orphans and stops being a subreaper.
class SubreaperScope {
 public:
  SubreaperScope() { REQUIRE(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); }
  ~SubreaperScope() {
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    prctl(PR_SET_CHILD_SUBREAPER, 0);
  }
  SubreaperScope(const SubreaperScope&) = delete;
  SubreaperScope& operator=(const SubreaperScope&) = delete;
};

// The workers named by the latest "update" line of a journal (JSONL), or empty.
std::vector<injector::ProcessId> JournaledWorkers(const std::string& journal) {
  std::vector<injector::ProcessId> out;
  std::ifstream in(journal);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("op", "") != "update") continue;
    out.clear();
    for (const auto& w : j["record"].value("workers", nlohmann::json::array())) {
      auto id = injector::ProcessId::FromJson(w);
      if (id.ok()) out.push_back(*id);
    }
  }
  return out;
}

TEST_CASE("inject stress.cpu for a short duration leaves no worker behind", "[cli]") {
  if (!HaveBinary()) return;
  SubreaperScope reaper;
  testing::TempDir dir;
  const std::string journal = dir.path() + "/journal";
  testing::CommandResult r;
  std::thread inject([&] {
    r = testing::RunCommand({testing::ChaosdrillBinary(), "inject", "stress.cpu", "--set",
                             "cores=2", "--set", "load=20%", "--duration", "2s", "--journal",
                             journal});
  });
  // The workers are the inject's children, not ours: their pids (and start times, so a
  // reused pid is not mistaken for one) come from the journal while the fault is held.
  std::vector<injector::ProcessId> workers;
  bool seen = injector::PollUntil(
      [&] {
        workers = JournaledWorkers(journal);
        return workers.size() == 2;
      },
      absl::Seconds(10));
  bool alive_while_held = false;
  for (const auto& w : workers) alive_while_held |= injector::StatIfSameAndAlive(w).has_value();
  inject.join();
  INFO(r.out << r.err);
  REQUIRE(seen);
  CHECK(alive_while_held);
  CHECK(r.exit_code == 0);
  for (const auto& w : workers) {
    INFO("worker " << w.pid);
    CHECK_FALSE(injector::StatIfSameAndAlive(w).has_value());
  }
  // Nothing of the inject's is left anywhere below us (orphans would be ours now).
  CHECK(testing::LiveChildren().empty());
}

TEST_CASE("doctor lists every registered kind as available or not and why", "[cli]") {
  if (!HaveBinary()) return;
  injector::RegisterBuiltinFaults();
  const std::vector<const injector::FaultFactory*> kinds = injector::FaultRegistry::Global().All();
  testing::CommandResult r = testing::RunCommand({testing::ChaosdrillBinary(), "doctor", "--json"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE(j.is_array());
  REQUIRE(j.size() == kinds.size());
  testing::CommandResult table = testing::RunCommand({testing::ChaosdrillBinary(), "doctor"});
  CHECK(table.exit_code == 0);
  int available = 0;
  for (size_t i = 0; i < kinds.size(); ++i) {
    const injector::FaultFactory& f = *kinds[i];
    const nlohmann::json& row = j[i];
    INFO(row.dump());
    CHECK(row.value("kind", "") == f.name());  // same kinds, same order (sorted)
    REQUIRE(row["available"].is_boolean());
    REQUIRE(row["reason"].is_string());
    REQUIRE(row["fix"].is_string());
    // The binary's answer is this node's Preflight, as the library gives it.
    const injector::PreflightResult pre = f.Preflight();
    CHECK(row["available"].get<bool>() == pre.available);
    CHECK(row["reason"].get<std::string>() == pre.reason);
    if (!pre.available) {
      CHECK_FALSE(pre.reason.empty());  // why
      CHECK_FALSE(pre.fix.empty());     // and what would fix it
    } else {
      ++available;
    }
    // The table has the kind's row: "<kind>  yes|NO  <reason>".
    std::regex table_row("(^|\\n)" +
                         std::regex_replace(std::string(f.name()), std::regex("\\."), "\\.") +
                         " +" + (pre.available ? "yes" : "NO") + "( |\\n)");
    CHECK(std::regex_search(table.out, table_row));
  }
  CHECK_THAT(table.out, Catch::Contains(absl::StrCat(available, " of ", kinds.size(),
                                                     " kinds available on this node.")));
}

TEST_CASE("faults lists parameters and inject --help shows examples", "[cli]") {
  if (!HaveBinary()) return;
  testing::CommandResult r =
      testing::RunCommand({testing::ChaosdrillBinary(), "faults", "stress.cpu"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("cores") != std::string::npos);
  CHECK(r.out.find("100%") != std::string::npos);
  r = testing::RunCommand({testing::ChaosdrillBinary(), "inject", "--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("Examples") != std::string::npos);
}

}  // namespace
}  // namespace chaosdrill
