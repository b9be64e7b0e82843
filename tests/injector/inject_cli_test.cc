// `chaosdrill inject`, `revert`, `doctor` and `faults` run as real processes, including
// the crash-safety drill: SIGKILL an inject holding a pause, then `revert` from the
// journal.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "injector/child_process.h"
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

TEST_CASE("inject stress.cpu for a short duration leaves no worker behind", "[cli]") {
  if (!HaveBinary()) return;
  testing::TempDir dir;
  testing::CommandResult r = testing::RunCommand(
      {testing::ChaosdrillBinary(), "inject", "stress.cpu", "--set", "cores=2", "--set", "load=20%",
       "--duration", "500ms", "--journal", dir.path() + "/journal"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(testing::LiveChildren().empty());
}

TEST_CASE("doctor lists every kind; faults lists parameters", "[cli]") {
  if (!HaveBinary()) return;
  testing::CommandResult r = testing::RunCommand({testing::ChaosdrillBinary(), "doctor"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("process.pause") != std::string::npos);
  CHECK(r.out.find("stress.memory") != std::string::npos);
  r = testing::RunCommand({testing::ChaosdrillBinary(), "doctor", "--json"});
  CHECK(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE(j.is_array());
  CHECK(j.size() >= 4);
  r = testing::RunCommand({testing::ChaosdrillBinary(), "faults", "stress.cpu"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("cores") != std::string::npos);
  CHECK(r.out.find("100%") != std::string::npos);
  r = testing::RunCommand({testing::ChaosdrillBinary(), "inject", "--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("Examples") != std::string::npos);
}

}  // namespace
}  // namespace chaosdrill
