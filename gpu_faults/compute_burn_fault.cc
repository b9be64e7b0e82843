#include "gpu_faults/compute_burn_fault.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/quantity.h"
#include "common/status.h"
#include "gpu_faults/gpu_status.h"
#include "injector/fault_registry.h"
#include "injector/gpu_kinds.h"

namespace chaosdrill::injector {

ComputeBurnFault::ComputeBurnFault(ComputeBurnSettings settings) : settings_(std::move(settings)) {}

absl::Status ComputeBurnFault::Inject() {
  if (burner_) return absl::OkStatus();
  gpu::GpuError error;
  std::string helper = gpu::FindGpuHelper(&error);
  if (helper.empty()) return GpuErrorStatus("gpu.compute_burn", error);
  gpu::BurnOptions options{.device = settings_.device,
                           .sm_fraction = settings_.sm_fraction,
                           .duty_cycle = settings_.duty_cycle,
                           .period_us = absl::ToInt64Microseconds(settings_.period)};
  burner_ = gpu::StartComputeBurn(helper, options, &report_, &error);
  if (!burner_) {
    return GpuErrorStatus(absl::StrCat("gpu.compute_burn on device ", settings_.device), error);
  }
  LogInfo("gpu.compute_burn", Describe());
  return absl::OkStatus();
}

absl::Status ComputeBurnFault::Revert() {
  if (!burner_) return absl::OkStatus();
  burner_->Kill();  // SIGKILL to the group, then waitpid: gone when this returns
  burner_.reset();
  return absl::OkStatus();
}

nlohmann::json ComputeBurnFault::RevertRecord() const {
  nlohmann::json record = {{"kind", GpuComputeBurnInfo().kind},
                           {"device", settings_.device},
                           {"pid", 0},
                           {"start_time", 0},
                           {"pgid", 0}};
  if (burner_) {
    record["pid"] = burner_->pid();
    record["start_time"] = burner_->start_time();
    record["pgid"] = burner_->pgid();
  }
  return record;
}

std::string ComputeBurnFault::Describe() const {
  std::string out =
      absl::StrCat("gpu compute burn on device ", settings_.device, ": ",
                   settings_.sm_fraction * 100, "% of SMs at ", settings_.duty_cycle * 100,
                   "% duty per ", DurationToString(settings_.period));
  if (burner_) {
    absl::StrAppend(&out, " (burner pid ", burner_->pid(), ", ", report_.blocks, " of ",
                    report_.sm_count, " SMs)");
  }
  return out;
}

absl::Status RevertComputeBurnRecord(const nlohmann::json& record) {
  try {
    pid_t pid = record.at("pid").get<pid_t>();
    if (pid == 0) return absl::OkStatus();
    std::string error;
    if (!gpu::KillRecordedGroup(pid, record.at("start_time").get<uint64_t>(),
                                record.at("pgid").get<pid_t>(), 10'000, &error)) {
      return absl::InternalError(absl::StrCat("gpu.compute_burn revert: ", error));
    }
    return absl::OkStatus();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("gpu.compute_burn revert record: ", e.what()));
  }
}

class ComputeBurnFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override { return GpuComputeBurnInfo(); }
  PreflightResult Preflight() const override { return GpuDevicePreflight(); }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    ASSIGN_OR_RETURN(ComputeBurnSettings settings, ParseComputeBurnSettings(spec));
    return std::make_unique<ComputeBurnFault>(std::move(settings));
  }
  absl::Status RevertFromRecord(const nlohmann::json& record) const override {
    return RevertComputeBurnRecord(record);
  }
};

CHAOSDRILL_REGISTER_FAULT(ComputeBurnFactory)

}  // namespace chaosdrill::injector
