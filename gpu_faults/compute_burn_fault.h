// gpu.compute_burn: a chaosdrill-gpu-holder child in burn mode runs a persistent spin
// kernel on sm_fraction of the SMs for duty_cycle of every period (a noisy neighbour).
// Inject returns once the first spin kernel has run; Revert SIGKILLs the child's group and
// reaps it (a dead process's kernels stop with its context).
// Unlike most faults, destroying the object kills the child (as the owner's death does):
// a GPU load never outlives the process that holds the Fault.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>

#include "gpu_faults/gpu_fault_settings.h"
#include "gpu_faults/gpu_helper_client.h"
#include "gpu_faults/helper_process.h"
#include "injector/fault.h"

namespace chaosdrill::injector {

class ComputeBurnFault : public Fault {
 public:
  explicit ComputeBurnFault(ComputeBurnSettings settings);

  absl::Status Inject() override;
  absl::Status Revert() override;
  // {"kind", "device", "pid", "start_time", "pgid"}; pid 0 before Inject.
  nlohmann::json RevertRecord() const override;
  std::string Describe() const override;

 private:
  const ComputeBurnSettings settings_;
  std::unique_ptr<gpu::HelperProcess> burner_;
  gpu::BurnReport report_;
};

absl::Status RevertComputeBurnRecord(const nlohmann::json& record);

}  // namespace chaosdrill::injector
