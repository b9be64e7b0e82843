// process.kill and process.pause on real child processes (/bin/sleep) of the test.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "injector/child_process.h"
#include "injector/fault_registry.h"
#include "injector/process_target.h"
#include "tests/injector/process_helpers.h"
#include "tests/test_support.h"

namespace chaosdrill::injector {
namespace {

using testing::ChildProcess;

const FaultFactory& Factory(const std::string& kind) {
  RegisterBuiltinFaults();
  auto f = FaultRegistry::Global().Find(kind);
  REQUIRE(f.ok());
  return **f;
}

FaultPtr MustCreate(const std::string& kind, std::map<std::string, std::string> params,
                    std::optional<absl::Duration> duration = std::nullopt) {
  FaultSpec spec{kind, std::move(params), duration};
  auto f = Factory(kind).Create(spec);
  INFO(f.status().ToString());
  REQUIRE(f.ok());
  return std::move(*f);
}

bool NotStopped(char s) { return s != 'T' && s != 0; }

// A sleep argument unique to this test run and case ("0.<pid><tag>", a valid number),
// and the cmdline regex that matches sleeps carrying it.
std::string Token(int tag) { return absl::StrCat("0.", getpid(), tag); }
std::string TokenPattern(int tag) {
  return absl::StrCat("^/bin/sleep 1000 0\\.", getpid(), tag, "$");
}

TEST_CASE("signals parse by name, short name and number", "[process]") {
  CHECK(*ParseSignal("SIGKILL") == SIGKILL);
  CHECK(*ParseSignal("term") == SIGTERM);
  CHECK(*ParseSignal("9") == 9);
  CHECK(ParseSignal("SIGFOO").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ParseSignal("0").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(SignalName(SIGSTOP) == "SIGSTOP");
}

TEST_CASE("process.kill by pid sends SIGKILL by default", "[process]") {
  ChildProcess child({"/bin/sleep", "1000"});
  FaultPtr f = MustCreate("process.kill", {{"pid", std::to_string(child.pid())}});
  REQUIRE(f->Inject().ok());
  CHECK(child.WaitForSignal(5000) == SIGKILL);
  CHECK(f->RevertRecord()["nothing_to_revert"] == true);
  CHECK(f->Revert().ok());
}

TEST_CASE("process.kill by cmdline regex sends the given signal to every match", "[process]") {
  std::string token = Token(1);
  ChildProcess a({"/bin/sleep", "1000", token});
  ChildProcess b({"/bin/sleep", "1000", token});
  ChildProcess other({"/bin/sleep", "1001"});
  // Wait until both have exec'd (their cmdline carries the token).
  FaultPtr f;
  for (int i = 0; i < 200; ++i) {
    auto sel = SelectProcesses(ProcessSelector{.cmdline_pattern = TokenPattern(1)});
    if (sel.ok() && sel->size() == 2) break;
    usleep(10'000);
  }
  f = MustCreate("process.kill", {{"cmdline", TokenPattern(1)}, {"signal", "TERM"}});
  REQUIRE(f->Inject().ok());
  CHECK(a.WaitForSignal(5000) == SIGTERM);
  CHECK(b.WaitForSignal(5000) == SIGTERM);
  CHECK(testing::ProcState(other.pid()) != 0);
  CHECK(testing::ProcState(other.pid()) != 'Z');
}

TEST_CASE("process.kill by exe regex signals only processes running that executable", "[process]") {
  // A copy of sleep under a name unique to this run: its /proc/PID/exe is the copy.
  testing::TempDir dir;
  const std::string exe = absl::StrCat(dir.path(), "/chaosdrill-test-sleeper-", getpid());
  {
    std::ifstream from("/bin/sleep", std::ios::binary);
    std::ofstream to(exe, std::ios::binary);
    to << from.rdbuf();
  }
  REQUIRE(chmod(exe.c_str(), 0755) == 0);
  ChildProcess copy({exe, "1000"});
  ChildProcess plain({"/bin/sleep", "1000", Token(3)});  // same cmdline shape, other exe
  const std::string pattern = absl::StrCat("/chaosdrill-test-sleeper-", getpid(), "$");
  auto exec_done = [&] {
    auto sel = SelectProcesses(ProcessSelector{.exe_pattern = pattern});
    return sel.ok() && sel->size() == 1;
  };
  REQUIRE(PollUntil(exec_done, absl::Seconds(5)));
  FaultPtr f = MustCreate("process.kill", {{"exe", pattern}});
  REQUIRE(f->Inject().ok());
  CHECK(copy.WaitForSignal(5000) == SIGKILL);
  CHECK(f->RevertRecord()["signalled"].size() == 1);
  CHECK(f->RevertRecord()["signalled"][0] == copy.pid());
  char s = testing::ProcState(plain.pid());
  CHECK(s != 0);
  CHECK(s != 'Z');
}

// Where the cgroup v2 hierarchy is mounted ("/sys/fs/cgroup", or "/sys/fs/cgroup/unified"
// on a hybrid v1/v2 host), from /proc/self/mounts; "" if there is none.
std::string CgroupV2Mount() {
  std::ifstream in("/proc/self/mounts");
  std::string device, dir, type, rest;
  while (in >> device >> dir >> type && std::getline(in, rest)) {
    if (type == "cgroup2") return dir;
  }
  return "";
}

TEST_CASE("process.kill by cgroup signals the members of that cgroup only", "[process][root]") {
  if (testing::SkipUnless(testing::IsRoot(), "needs root to create a cgroup")) return;
  const std::string mount = CgroupV2Mount();
  if (testing::SkipUnless(!mount.empty(), "no cgroup v2 hierarchy mounted")) return;
  const std::string name = absl::StrCat("chaosdrill-test-kill-", getpid());
  const std::string dir = mount + "/" + name;
  if (testing::SkipUnless(mkdir(dir.c_str(), 0755) == 0,
                          absl::StrCat("cannot create ", dir, ": ", strerror(errno)))) {
    return;
  }
  // Declared after the children so that it runs after they are killed and reaped: a
  // cgroup can only be removed once it has no member left.
  std::unique_ptr<ChildProcess> inside, outside;
  struct RemoveCgroup {
    std::string d;
    ~RemoveCgroup() {
      if (rmdir(d.c_str()) != 0)
        std::printf("could not remove %s: %s\n", d.c_str(), strerror(errno));
    }
  } remove{dir};
  inside = std::make_unique<ChildProcess>(std::vector<std::string>{"/bin/sleep", "1000"});
  outside = std::make_unique<ChildProcess>(std::vector<std::string>{"/bin/sleep", "1000"});
  {
    std::ofstream procs(dir + "/cgroup.procs");
    procs << inside->pid() << "\n";
    procs.flush();
    REQUIRE(procs.good());
  }
  FaultPtr f = MustCreate("process.kill", {{"cgroup", "/" + name}, {"signal", "SIGTERM"}});
  REQUIRE(f->Inject().ok());
  CHECK(inside->WaitForSignal(5000) == SIGTERM);
  CHECK(f->RevertRecord()["signalled"].size() == 1);
  char s = testing::ProcState(outside->pid());
  CHECK(s != 0);
  CHECK(s != 'Z');
  // With nobody left in it, NotFound.
  FaultPtr again = MustCreate("process.kill", {{"cgroup", "/" + name}});
  CHECK(again->Inject().code() == absl::StatusCode::kNotFound);
  inside.reset();
  outside.reset();
}

TEST_CASE("process.kill count and percent pick that many of the matches", "[process]") {
  std::string token = Token(2);
  std::vector<std::unique_ptr<ChildProcess>> children;
  for (int i = 0; i < 4; ++i) {
    children.push_back(
        std::make_unique<ChildProcess>(std::vector<std::string>{"/bin/sleep", "1000", token}));
  }
  std::string pattern = TokenPattern(2);
  for (int i = 0; i < 200; ++i) {
    auto sel = SelectProcesses(ProcessSelector{.cmdline_pattern = pattern});
    if (sel.ok() && sel->size() == 4) break;
    usleep(10'000);
  }
  auto alive = [&] {
    int n = 0;
    for (auto& c : children) {
      char s = testing::ProcState(c->pid());
      if (s != 0 && s != 'Z') ++n;
    }
    return n;
  };
  FaultPtr one = MustCreate("process.kill", {{"cmdline", pattern}, {"count", "1"}});
  REQUIRE(one->Inject().ok());
  CHECK(one->RevertRecord()["signalled"].size() == 1);
  REQUIRE(testing::WaitForState(
      one->RevertRecord()["signalled"][0].get<pid_t>(), [](char s) { return s == 'Z'; }, 5000));
  CHECK(alive() == 3);
  // 50% of the 3 left, rounded up: 2.
  FaultPtr half = MustCreate("process.kill", {{"cmdline", pattern}, {"percent", "50%"}});
  REQUIRE(half->Inject().ok());
  CHECK(half->RevertRecord()["signalled"].size() == 2);
  const nlohmann::json record = half->RevertRecord();
  for (const auto& pid : record["signalled"]) {
    REQUIRE(testing::WaitForState(
        pid.get<pid_t>(), [](char s) { return s == 'Z'; }, 5000));
  }
  CHECK(alive() == 1);
}

TEST_CASE("process targeting never picks PID 1, itself or its parent", "[process]") {
  for (pid_t forbidden : {pid_t{1}, getpid(), getppid()}) {
    FaultPtr f = MustCreate("process.kill", {{"pid", std::to_string(forbidden)}});
    absl::Status s = f->Inject();
    CHECK(s.code() == absl::StatusCode::kPermissionDenied);
  }
  // A regex matching everything still skips them.
  auto sel = SelectProcesses(ProcessSelector{.cmdline_pattern = ".*"});
  REQUIRE(sel.ok());
  for (const ProcessId& p : *sel) {
    CHECK(p.pid != 1);
    CHECK(p.pid != getpid());
    CHECK(p.pid != getppid());
  }
}

TEST_CASE("process.kill of a missing pid is NotFound", "[process]") {
  FaultPtr f = MustCreate("process.kill", {{"pid", "999999999"}});
  CHECK(f->Inject().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("process.pause stops the target and revert resumes it", "[process]") {
  ChildProcess child({"/bin/sleep", "1000"});
  FaultPtr f =
      MustCreate("process.pause", {{"pid", std::to_string(child.pid())}}, absl::Seconds(30));
  REQUIRE(f->Prepare().ok());
  auto record = f->RevertRecord();
  REQUIRE(record["targets"].size() == 1);
  CHECK(record["targets"][0]["pid"] == child.pid());
  REQUIRE(f->Inject().ok());
  CHECK(testing::ProcState(child.pid()) == 'T');
  CHECK(f->RevertRecord().contains("watchdog"));
  REQUIRE(f->Revert().ok());
  CHECK(testing::WaitForState(child.pid(), NotStopped, 5000));
  CHECK(f->Revert().ok());                                            // idempotent
  CHECK(testing::LiveChildren() == std::vector<pid_t>{child.pid()});  // watchdog gone
}

TEST_CASE("process.pause revert from the record alone resumes the target", "[process]") {
  ChildProcess child({"/bin/sleep", "1000"});
  FaultPtr f =
      MustCreate("process.pause", {{"pid", std::to_string(child.pid())}, {"watchdog", "false"}});
  REQUIRE(f->Inject().ok());
  REQUIRE(testing::ProcState(child.pid()) == 'T');
  REQUIRE(Factory("process.pause").RevertFromRecord(f->RevertRecord()).ok());
  CHECK(testing::WaitForState(child.pid(), NotStopped, 5000));
  CHECK(Factory("process.pause").RevertFromRecord(f->RevertRecord()).ok());  // idempotent
}

TEST_CASE("process.pause resumes the target when its holder dies", "[process]") {
  ChildProcess target({"/bin/sleep", "1000"});
  RegisterBuiltinFaults();
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  pid_t holder = fork();
  REQUIRE(holder >= 0);
  if (holder == 0) {
    close(ready[0]);
    FaultSpec spec{"process.pause", {{"pid", std::to_string(target.pid())}}, std::nullopt};
    auto f = FaultRegistry::Global().Find("process.pause").value()->Create(spec);
    if (!f.ok() || !(*f)->Inject().ok()) _exit(1);
    (void)!write(ready[1], "r", 1);
    while (true) pause();
  }
  close(ready[1]);
  char c = 0;
  REQUIRE(read(ready[0], &c, 1) == 1);
  close(ready[0]);
  CHECK(testing::ProcState(target.pid()) == 'T');
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  CHECK(testing::WaitForState(target.pid(), NotStopped, 5000));
}

TEST_CASE("process faults reject bad parameters naming the field", "[process]") {
  struct Case {
    std::string kind;
    std::map<std::string, std::string> params;
    std::string field;
  };
  std::vector<Case> cases = {
      {"process.kill", {{"pid", "1234"}, {"signal", "SIGFOO"}}, "signal"},
      {"process.kill", {{"pid", "abc"}}, "pid"},
      {"process.kill", {{"pid", "0"}}, "pid"},
      {"process.kill", {{"exe", "("}}, "exe"},
      {"process.kill", {{"pid", "5"}, {"bogus", "1"}}, "bogus"},
      {"process.kill", {}, "pid"},
      {"process.kill", {{"cmdline", "x"}, {"count", "1"}, {"percent", "5%"}}, "count"},
      {"process.kill", {{"cmdline", "x"}, {"percent", "150%"}}, "percent"},
      {"process.pause", {{"pid", "5"}, {"watchdog", "maybe"}}, "watchdog"},
  };
  for (const Case& c : cases) {
    FaultSpec spec{c.kind, c.params, std::nullopt};
    auto f = Factory(c.kind).Create(spec);
    INFO(c.kind << " " << c.field);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(f.status().message()).find("\"" + c.field + "\"") != std::string::npos);
  }
}

}  // namespace
}  // namespace chaosdrill::injector
