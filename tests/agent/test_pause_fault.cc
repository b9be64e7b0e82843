#include "tests/agent/test_pause_fault.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "injector/fault_registry.h"

namespace chaosdrill::testing {
namespace {

using injector::Fault;
using injector::FaultFactory;
using injector::FaultPtr;
using injector::PreflightResult;

const FaultKindInfo& Info() {
  static const FaultKindInfo info{
      .kind = "test.pause",
      .summary = "SIGSTOP a pid, SIGCONT on revert (test-only)",
      .takes_duration = true,
      .params = {{.name = "pid", .type = ParamType::kInt, .required = true, .doc = "target"}}};
  return info;
}

bool WaitState(pid_t pid, bool stopped) {
  for (int i = 0; i < 500; ++i) {  // up to ~1 s: the kernel applies signals asynchronously
    char s = ProcessState(pid);
    if (s == '?' || (s == 'T') == stopped) return true;
    ::usleep(2000);
  }
  return false;
}

absl::Status Cont(pid_t pid) {
  if (::kill(pid, SIGCONT) != 0 && errno != ESRCH) {
    return absl::InternalError(absl::StrCat("SIGCONT ", pid));
  }
  if (!WaitState(pid, false)) return absl::InternalError(absl::StrCat(pid, " still stopped"));
  return absl::OkStatus();
}

class TestPause : public Fault {
 public:
  explicit TestPause(pid_t pid) : pid_(pid) {}
  absl::Status Inject() override {
    if (::kill(pid_, SIGSTOP) != 0) return absl::NotFoundError(absl::StrCat("no pid ", pid_));
    if (!WaitState(pid_, true)) return absl::InternalError("did not stop");
    return absl::OkStatus();
  }
  absl::Status Revert() override { return Cont(pid_); }
  nlohmann::json RevertRecord() const override { return {{"pid", pid_}}; }
  std::string Describe() const override { return absl::StrCat("test.pause pid ", pid_); }

 private:
  const pid_t pid_;
};

class TestPauseFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override { return Info(); }
  PreflightResult Preflight() const override { return {.available = true}; }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    int pid = 0;
    auto p = spec.Get("pid");
    if (!p || !absl::SimpleAtoi(*p, &pid) || pid <= 0) {
      return absl::InvalidArgumentError("test.pause: parameter \"pid\" required");
    }
    return FaultPtr(new TestPause(pid));
  }
  absl::Status RevertFromRecord(const nlohmann::json& record) const override {
    return Cont(record.at("pid").get<pid_t>());
  }
};

// "testslow.inject": Inject sleeps `ms` milliseconds (a long fault operation in a family of
// its own), Revert does nothing.
const FaultKindInfo& SlowInfo() {
  static const FaultKindInfo info{
      .kind = "testslow.inject",
      .summary = "an Inject that takes `ms` milliseconds (test-only)",
      .takes_duration = true,
      .params = {{.name = "ms", .type = ParamType::kInt, .default_value = "0", .doc = "sleep"}}};
  return info;
}

class SlowInject : public Fault {
 public:
  explicit SlowInject(int ms) : ms_(ms) {}
  absl::Status Inject() override {
    ::usleep(static_cast<useconds_t>(ms_) * 1000);  // the point: a slow fault operation
    return absl::OkStatus();
  }
  absl::Status Revert() override { return absl::OkStatus(); }
  nlohmann::json RevertRecord() const override { return nlohmann::json::object(); }
  std::string Describe() const override { return absl::StrCat("testslow.inject ", ms_, " ms"); }

 private:
  const int ms_;
};

class SlowFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override { return SlowInfo(); }
  PreflightResult Preflight() const override { return {.available = true}; }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    int ms = 0;
    if (auto p = spec.Get("ms")) (void)absl::SimpleAtoi(*p, &ms);
    return FaultPtr(new SlowInject(ms));
  }
  absl::Status RevertFromRecord(const nlohmann::json&) const override { return absl::OkStatus(); }
};

}  // namespace

char ProcessState(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return '?';
  return text[paren + 2];
}

void RegisterTestPauseFault() {
  static std::once_flag once;
  std::call_once(once, [] {
    injector::FaultRegistry::Global().Add(std::make_unique<TestPauseFactory>());
    injector::FaultRegistry::Global().Add(std::make_unique<SlowFactory>());
  });
}

}  // namespace chaosdrill::testing
