// The lifecycle shared by the stress.* kinds: Inject forks N worker processes (no exec)
// through a WorkerGroup (own process group, PR_SET_PDEATHSIG(SIGKILL), optional cgroup v2
// placement) and returns once each reports it is up to strength; Revert kills the group
// and verifies in /proc that no worker is left. The revert record names the workers by
// pid and start time, so a fresh process kills exactly them. If the holder dies, the
// kernel kills the workers (PDEATHSIG); and when the spec has a duration, each worker also
// exits by itself kSafetyGrace after it, so a wedged holder cannot leave one burning.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "injector/child_process.h"
#include "injector/fault.h"

namespace chaosdrill::injector {

inline constexpr absl::Duration kSafetyGrace = absl::Seconds(30);

// CLOCK_MONOTONIC nanoseconds, as workers compare against it without allocating.
int64_t MonotonicNanos();

class StressFault : public Fault {
 public:
  // `arg` points into `settings`, which the fault keeps alive (a worker reads it after
  // fork). `description` is for Describe(); `kind` goes into the record.
  StressFault(std::string kind, std::string description, int workers, WorkerBody body,
              std::shared_ptr<const void> settings, std::string cgroup_dir,
              absl::Duration ready_timeout);

  absl::Status Inject() override;
  absl::Status Revert() override;
  nlohmann::json RevertRecord() const override;
  std::string Describe() const override { return description_; }

  const WorkerGroup& group() const { return group_; }

 private:
  const std::string kind_;
  const std::string description_;
  const int workers_;
  const WorkerBody body_;
  const std::shared_ptr<const void> settings_;
  const std::string cgroup_dir_;
  const absl::Duration ready_timeout_;
  WorkerGroup group_;
  bool applied_ = false;
};

// RevertFromRecord for every stress.* kind.
absl::Status RevertStressFromRecord(const nlohmann::json& record);

}  // namespace chaosdrill::injector
