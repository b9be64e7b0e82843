// reference.degrade against a real reference replica process (`chaosdrill reference
// replica --admin-socket ...`): the mode really changes (witness: the replica's own
// `status` answer, asked through reference::AdminRequest), revert restores the previous
// mode from the object or from its record alone, and targets that are not replicas, or
// are gone, behave as documented.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "injector/child_process.h"
#include "injector/fault_registry.h"
#include "reference/admin_socket.h"
#include "tests/test_support.h"

extern char** environ;

namespace chaosdrill::injector {
namespace {

using chaosdrill::testing::ChaosdrillBinary;
using chaosdrill::testing::SkipUnless;
using chaosdrill::testing::TempDir;

// A child process, SIGKILLed and reaped on destruction.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) != 0) pid_ = -1;
  }
  ~Child() { Kill(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
};

// A small replica with an admin socket in `dir`; waits (up to 60 s) for its ready file.
struct Replica {
  explicit Replica(const TempDir& dir)
      : socket(dir.path() + "/admin.sock"),
        child({ChaosdrillBinary(), "reference", "replica", "--listen", "127.0.0.1:0", "--width",
               "16", "--depth", "1", "--ready-file", dir.path() + "/ready", "--admin-socket",
               socket}) {
    REQUIRE(child.pid() > 0);
    ready = PollUntil([&] { return std::filesystem::exists(dir.path() + "/ready"); },
                      absl::Seconds(60));
  }
  std::string Mode() const {
    auto answer = reference::AdminRequest(socket, "status");
    if (!answer.ok()) return "error: " + answer.status().ToString();
    size_t at = answer->find("degrade=");
    if (at == std::string::npos) return "unexpected: " + *answer;
    size_t end = answer->find(' ', at);
    return answer->substr(at + 8, end == std::string::npos ? end : end - at - 8);
  }
  std::string socket;
  Child child;
  bool ready = false;
};

const FaultFactory& Factory() {
  RegisterBuiltinFaults();
  auto f = FaultRegistry::Global().Find("reference.degrade");
  REQUIRE(f.ok());
  return **f;
}

FaultSpec Spec(pid_t pid, const std::string& mode) {
  FaultSpec spec{.kind = "reference.degrade"};
  spec.params["pid"] = absl::StrCat(pid);
  if (!mode.empty()) spec.params["mode"] = mode;
  return spec;
}

bool HaveBinary() {
  return !SkipUnless(std::filesystem::exists(ChaosdrillBinary()),
                     "needs " + ChaosdrillBinary() + " (build the chaosdrill target)");
}

TEST_CASE("reference.degrade switches a replica to wrong-answers and revert restores none",
          "[reference_degrade]") {
  if (!HaveBinary()) return;
  TempDir dir;
  Replica replica(dir);
  REQUIRE(replica.ready);
  REQUIRE(replica.Mode() == "none");

  auto fault = Factory().Create(Spec(replica.child.pid(), ""));  // default mode
  REQUIRE(fault.ok());
  REQUIRE((*fault)->Prepare().ok());
  nlohmann::json before = (*fault)->RevertRecord();
  CHECK(before["targets"][0]["socket"] == replica.socket);
  REQUIRE((*fault)->Inject().ok());
  CHECK(replica.Mode() == "wrong-answers");
  CHECK((*fault)->Describe().find("wrong-answers") != std::string::npos);
  CHECK((*fault)->RevertRecord()["targets"][0]["previous"] == "none");

  REQUIRE((*fault)->Revert().ok());
  CHECK(replica.Mode() == "none");
  CHECK((*fault)->Revert().ok());  // idempotent
}

TEST_CASE("reference.degrade restores the mode the replica had before, from the record alone",
          "[reference_degrade]") {
  if (!HaveBinary()) return;
  TempDir dir;
  Replica replica(dir);
  REQUIRE(replica.ready);
  REQUIRE(reference::AdminRequest(replica.socket, "degrade slow").ok());

  auto fault = Factory().Create(Spec(replica.child.pid(), "errors"));
  REQUIRE(fault.ok());
  REQUIRE((*fault)->Inject().ok());
  CHECK(replica.Mode() == "errors");
  nlohmann::json record = (*fault)->RevertRecord();
  fault->reset();  // a crashed holder: only the record is left

  REQUIRE(Factory().RevertFromRecord(record).ok());
  CHECK(replica.Mode() == "slow");
}

TEST_CASE("reference.degrade on a replica that died counts as reverted", "[reference_degrade]") {
  if (!HaveBinary()) return;
  TempDir dir;
  Replica replica(dir);
  REQUIRE(replica.ready);
  auto fault = Factory().Create(Spec(replica.child.pid(), "errors"));
  REQUIRE(fault.ok());
  REQUIRE((*fault)->Inject().ok());
  replica.child.Kill();
  CHECK((*fault)->Revert().ok());
  CHECK(Factory().RevertFromRecord((*fault)->RevertRecord()).ok());
}

TEST_CASE("reference.degrade refuses a process started without --admin-socket",
          "[reference_degrade]") {
  Child sleeper({"/bin/sleep", "30"});
  REQUIRE(sleeper.pid() > 0);
  REQUIRE(PollUntil(
      [&] {
        auto st = ReadProcStat(sleeper.pid());
        return st.ok() && st->comm == "sleep";
      },
      absl::Seconds(10)));
  auto fault = Factory().Create(Spec(sleeper.pid(), "wrong-answers"));
  REQUIRE(fault.ok());
  absl::Status s = (*fault)->Inject();
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(s.message()), Catch::Contains("--admin-socket"));
  CHECK_THAT(std::string(s.message()), Catch::Contains(absl::StrCat(sleeper.pid())));
}

TEST_CASE("reference.degrade validates its parameters once", "[reference_degrade]") {
  FaultSpec no_target{.kind = "reference.degrade"};
  auto a = Factory().Create(no_target);
  CHECK(a.status().code() == absl::StatusCode::kInvalidArgument);

  FaultSpec bad_mode = Spec(1234, "sideways");
  auto b = Factory().Create(bad_mode);
  CHECK(b.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(b.status().message()), Catch::Contains("mode"));

  auto pid1 = Factory().Create(Spec(1, "errors"));
  REQUIRE(pid1.ok());
  CHECK((*pid1)->Inject().code() == absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace chaosdrill::injector
