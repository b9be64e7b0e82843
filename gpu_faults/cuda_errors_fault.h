// gpu.cuda_errors: writes the control file that libchaosdrill_cuda_fault.so (preloaded into
// the target process) re-reads, which makes the chosen CUDA calls fail; revert removes it.
// The file is replaced atomically (write + rename) and carries an owner token, so revert
// removes only a file this fault wrote. The fault never touches the target process: it
// must have been started with LD_PRELOAD=<CudaFaultLibraryPath()> and
// CHAOSDRILL_CUDA_FAULT_CONTROL=<control>, and link libcudart dynamically.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "gpu_faults/gpu_fault_settings.h"
#include "injector/fault.h"

namespace chaosdrill::injector {

constexpr char kCudaFaultLibraryName[] = "libchaosdrill_cuda_fault.so";

// $CHAOSDRILL_CUDA_FAULT_LIB, else next to the running executable, else in the build tree;
// empty when none exists.
std::string CudaFaultLibraryPath();

class CudaErrorsFault : public Fault {
 public:
  explicit CudaErrorsFault(CudaErrorsSettings settings);

  absl::Status Inject() override;
  absl::Status Revert() override;
  // {"kind", "control", "owner"}: enough to remove the file if it is still ours.
  nlohmann::json RevertRecord() const override;
  std::string Describe() const override;

 private:
  CudaErrorsSettings settings_;  // control.owner set at construction
};

// Removes `path` if it is a control file whose owner is `owner`; a missing file or one
// someone else wrote is left alone (OK). Verifies afterwards.
absl::Status RemoveCudaFaultControl(const std::string& path, const std::string& owner);

}  // namespace chaosdrill::injector
