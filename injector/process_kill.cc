// process.kill: sends a signal (SIGKILL by default) to the matching processes, once.
// Nothing to revert: the record says so, and which processes were signalled.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "injector/fault_params.h"
#include "injector/fault_registry.h"
#include "injector/preflight.h"
#include "injector/process_target.h"

namespace chaosdrill::injector {
namespace {

const FaultKindInfo& KillInfo() {
  static const FaultKindInfo* info = [] {
    auto* i = new FaultKindInfo;
    i->kind = "process.kill";
    i->summary = "send a signal (SIGKILL by default) to matching processes, once";
    i->takes_duration = false;
    i->params.push_back({"signal",
                         ParamType::kSignal,
                         false,
                         "SIGKILL",
                         "signal to send: a name (SIGKILL, KILL, TERM) or a number",
                         {}});
    for (ParamSpec& p : ProcessSelectorParams()) i->params.push_back(std::move(p));
    return i;
  }();
  return *info;
}

class KillFault : public Fault {
 public:
  KillFault(ProcessSelector selector, int signal)
      : selector_(std::move(selector)), signal_(signal) {}

  absl::Status Prepare() override {
    if (prepared_) return absl::OkStatus();
    ASSIGN_OR_RETURN(targets_, SelectProcesses(selector_));
    prepared_ = true;
    return absl::OkStatus();
  }

  absl::Status Inject() override {
    RETURN_IF_ERROR(Prepare());
    for (const ProcessId& t : targets_) {
      bool sent = false;
      absl::Status s = SignalProcess(t, signal_, &sent);
      if (!s.ok()) {
        return Annotate(s, absl::StrCat("process.kill (signalled ", absl::StrJoin(signalled_, ", "),
                                        " before)"));
      }
      if (sent) signalled_.push_back(t.pid);
    }
    return absl::OkStatus();
  }

  absl::Status Revert() override { return absl::OkStatus(); }

  nlohmann::json RevertRecord() const override {
    nlohmann::json targets = nlohmann::json::array();
    for (const ProcessId& t : targets_) targets.push_back(t.ToJson());
    return {{"kind", "process.kill"},
            {"nothing_to_revert", true},
            {"signal", SignalName(signal_)},
            {"targets", targets},
            {"signalled", signalled_}};
  }

  std::string Describe() const override {
    return absl::StrCat(SignalName(signal_), " to ", selector_.Describe());
  }

 private:
  const ProcessSelector selector_;
  const int signal_;
  bool prepared_ = false;
  std::vector<ProcessId> targets_;
  std::vector<pid_t> signalled_;
};

class ProcessKillFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override { return KillInfo(); }
  PreflightResult Preflight() const override { return SignalPreflight(); }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    RETURN_IF_ERROR(ValidateFaultSpec(info(), spec));
    FaultParams params(info(), spec);
    ASSIGN_OR_RETURN(ProcessSelector selector, ProcessSelectorFromParams(params));
    auto signal = ParseSignal(*params.String("signal"));
    if (!signal.ok()) return params.Error("signal", signal.status().message());
    return FaultPtr(new KillFault(std::move(selector), *signal));
  }
  absl::Status RevertFromRecord(const nlohmann::json&) const override {
    return absl::OkStatus();  // a signal cannot be taken back
  }
};

}  // namespace

CHAOSDRILL_REGISTER_FAULT(ProcessKillFactory)

}  // namespace chaosdrill::injector
