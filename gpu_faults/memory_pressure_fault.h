// gpu.memory_pressure: a chaosdrill-gpu-holder child (own process group, PDEATHSIG, stdin
// EOF watch) cudaMallocs chunks until other processes see the target level, verified with
// cudaMemGetInfo before Inject returns. Revert SIGKILLs the group (the driver frees a dead
// process's memory) and verifies with a fresh probe that the memory is back.
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

class MemoryPressureFault : public Fault {
 public:
  explicit MemoryPressureFault(MemoryPressureSettings settings);
  ~MemoryPressureFault() override = default;

  absl::Status Inject() override;
  absl::Status Revert() override;
  // {"kind", "device", "pid", "start_time", "pgid", "baseline_free", "tolerance"}; pid 0
  // before Inject.
  nlohmann::json RevertRecord() const override;
  std::string Describe() const override;

  const gpu::HoldReport& report() const { return report_; }

 private:
  const MemoryPressureSettings settings_;
  std::unique_ptr<gpu::HelperProcess> holder_;
  gpu::HoldReport report_;
  bool verify_pending_ = false;  // killed, memory not yet seen back
};

// Kills the recorded holder (if still the same process) and waits for memory to be back.
absl::Status RevertMemoryPressureRecord(const nlohmann::json& record);

}  // namespace chaosdrill::injector
