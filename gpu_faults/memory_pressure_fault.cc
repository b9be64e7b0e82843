#include "gpu_faults/memory_pressure_fault.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/status.h"
#include "gpu_faults/gpu_status.h"
#include "injector/fault_registry.h"
#include "injector/gpu_kinds.h"

namespace chaosdrill::injector {
namespace {

constexpr int kMemoryBackTimeoutMs = 15'000;

std::string Bytes(uint64_t b) {
  return absl::StrCat(absl::SixDigits(static_cast<double>(b) / (1ull << 30)), "GiB");
}

// Memory counts as back when a fresh process sees what it saw before the hold, less slack
// for the probe's own noise (other tenants allocating meanwhile show up as a failure that
// names both figures).
uint64_t BackThreshold(uint64_t baseline_free, uint64_t tolerance) {
  uint64_t slack = 2 * tolerance;
  return baseline_free > slack ? baseline_free - slack : 0;
}

absl::Status WaitMemoryBack(int device, uint64_t baseline_free, uint64_t tolerance) {
  gpu::GpuError error;
  std::string helper = gpu::FindGpuHelper(&error);
  if (helper.empty()) return GpuErrorStatus("verifying GPU memory is back", error);
  uint64_t last_free = 0;
  if (!gpu::WaitForFreeMemory(helper, device, BackThreshold(baseline_free, tolerance),
                              kMemoryBackTimeoutMs, &last_free, &error)) {
    return GpuErrorStatus(absl::StrCat("verifying GPU memory on device ", device,
                                       " is back after the holder was killed"),
                          error);
  }
  return absl::OkStatus();
}

}  // namespace

MemoryPressureFault::MemoryPressureFault(MemoryPressureSettings settings)
    : settings_(std::move(settings)) {}

absl::Status MemoryPressureFault::Inject() {
  if (holder_) return absl::OkStatus();
  gpu::GpuError error;
  std::string helper = gpu::FindGpuHelper(&error);
  if (helper.empty()) return GpuErrorStatus("gpu.memory_pressure", error);
  gpu::HoldOptions options{.device = settings_.device,
                           .target = settings_.target,
                           .chunk = settings_.chunk,
                           .ramp_ms = absl::ToInt64Milliseconds(settings_.ramp)};
  report_ = {};
  holder_ = gpu::StartMemoryHold(helper, options, &report_, &error);
  if (!holder_) {
    return GpuErrorStatus(absl::StrCat("gpu.memory_pressure on device ", settings_.device), error);
  }
  verify_pending_ = false;
  LogInfo("gpu.memory_pressure", Describe());
  return absl::OkStatus();
}

absl::Status MemoryPressureFault::Revert() {
  if (holder_) {
    holder_->Kill();
    holder_.reset();
    verify_pending_ = true;
  }
  if (!verify_pending_) return absl::OkStatus();
  RETURN_IF_ERROR(WaitMemoryBack(settings_.device, report_.baseline_free, report_.tolerance));
  verify_pending_ = false;
  return absl::OkStatus();
}

nlohmann::json MemoryPressureFault::RevertRecord() const {
  nlohmann::json record = {{"kind", GpuMemoryPressureInfo().kind},
                           {"device", settings_.device},
                           {"pid", 0},
                           {"start_time", 0},
                           {"pgid", 0},
                           {"baseline_free", report_.baseline_free},
                           {"tolerance", report_.tolerance}};
  if (holder_) {
    record["pid"] = holder_->pid();
    record["start_time"] = holder_->start_time();
    record["pgid"] = holder_->pgid();
  }
  return record;
}

std::string MemoryPressureFault::Describe() const {
  std::string what;
  switch (settings_.target.mode) {
    case gpu::MemoryTarget::Mode::kSize:
      what = absl::StrCat("take ", Bytes(settings_.target.bytes));
      break;
    case gpu::MemoryTarget::Mode::kFraction:
      what = absl::StrCat("fill to ", settings_.target.fraction * 100, "% of total");
      break;
    case gpu::MemoryTarget::Mode::kLeaveFree:
      what = absl::StrCat("leave ", Bytes(settings_.target.bytes), " free");
      break;
  }
  std::string out = absl::StrCat("gpu memory pressure on device ", settings_.device, ": ", what);
  if (holder_) {
    absl::StrAppend(&out, " (holder pid ", holder_->pid(), " holds ", Bytes(report_.held),
                    ", target ", Bytes(report_.target_free), " free of ", Bytes(report_.total),
                    ", reached in ", report_.elapsed_ms, "ms)");
  }
  return out;
}

absl::Status RevertMemoryPressureRecord(const nlohmann::json& record) {
  try {
    pid_t pid = record.at("pid").get<pid_t>();
    if (pid == 0) return absl::OkStatus();  // journaled before anything was started
    std::string error;
    if (!gpu::KillRecordedGroup(pid, record.at("start_time").get<uint64_t>(),
                                record.at("pgid").get<pid_t>(), 10'000, &error)) {
      return absl::InternalError(absl::StrCat("gpu.memory_pressure revert: ", error));
    }
    return WaitMemoryBack(record.at("device").get<int>(),
                          record.at("baseline_free").get<uint64_t>(),
                          record.at("tolerance").get<uint64_t>());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("gpu.memory_pressure revert record: ", e.what()));
  }
}

class MemoryPressureFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override { return GpuMemoryPressureInfo(); }
  PreflightResult Preflight() const override { return GpuDevicePreflight(); }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    ASSIGN_OR_RETURN(MemoryPressureSettings settings, ParseMemoryPressureSettings(spec));
    return std::make_unique<MemoryPressureFault>(std::move(settings));
  }
  absl::Status RevertFromRecord(const nlohmann::json& record) const override {
    return RevertMemoryPressureRecord(record);
  }
};

CHAOSDRILL_REGISTER_FAULT(MemoryPressureFactory)

}  // namespace chaosdrill::injector
