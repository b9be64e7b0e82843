#include "injector/stress_fault.h"

#include <time.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace chaosdrill::injector {

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

StressFault::StressFault(std::string kind, std::string description, int workers, WorkerBody body,
                         std::shared_ptr<const void> settings, std::string cgroup_dir,
                         absl::Duration ready_timeout)
    : kind_(std::move(kind)),
      description_(std::move(description)),
      workers_(workers),
      body_(body),
      settings_(std::move(settings)),
      cgroup_dir_(std::move(cgroup_dir)),
      ready_timeout_(ready_timeout) {}

absl::Status StressFault::Inject() {
  if (applied_) return absl::OkStatus();
  if (!cgroup_dir_.empty()) {
    RETURN_IF_ERROR(
        Annotate(CheckCgroupPlacement(cgroup_dir_), absl::StrCat(kind_, ": parameter \"cgroup\"")));
  }
  RETURN_IF_ERROR(
      Annotate(group_.Start(workers_, body_, settings_.get(), cgroup_dir_, ready_timeout_), kind_));
  applied_ = true;
  return absl::OkStatus();
}

absl::Status StressFault::Revert() {
  if (!applied_) return absl::OkStatus();
  RETURN_IF_ERROR(Annotate(group_.Stop(), absl::StrCat(kind_, " revert")));
  applied_ = false;
  return absl::OkStatus();
}

nlohmann::json StressFault::RevertRecord() const {
  nlohmann::json r = group_.ToJson();
  r["kind"] = kind_;
  return r;
}

absl::Status RevertStressFromRecord(const nlohmann::json& record) {
  return WorkerGroup::KillFromJson(record);
}

}  // namespace chaosdrill::injector
