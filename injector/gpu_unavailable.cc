// RegisterGpuFaults() for builds without the CUDA toolkit (CMake compiles this file instead
// of gpu_faults/register_cuda.cc): every gpu.* kind is described, so scenarios validate,
// but Preflight says "built without CUDA" and Create refuses with FailedPrecondition.
#include <memory>

#include "absl/strings/str_cat.h"
#include "injector/gpu_kinds.h"

namespace chaosdrill::injector {
namespace {

constexpr char kReason[] = "built without CUDA";
constexpr char kFix[] =
    "rebuild chaosdrill on a machine with the CUDA toolkit (/usr/local/cuda) so that CMake "
    "builds gpu_faults/";

class UnavailableGpuFactory : public FaultFactory {
 public:
  explicit UnavailableGpuFactory(const FaultKindInfo& info) : info_(info) {}
  const FaultKindInfo& info() const override { return info_; }
  PreflightResult Preflight() const override {
    return {.available = false, .reason = kReason, .fix = kFix};
  }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& /*spec*/) const override {
    return absl::FailedPreconditionError(absl::StrCat(info_.kind, ": ", kReason));
  }
  // Nothing of a gpu.* kind can have been applied by this build; a record from a CUDA build
  // cannot be undone here.
  absl::Status RevertFromRecord(const nlohmann::json& /*record*/) const override {
    return absl::FailedPreconditionError(
        absl::StrCat(info_.kind, ": cannot revert from record: ", kReason));
  }

 private:
  const FaultKindInfo& info_;
};

}  // namespace

void RegisterGpuFaults(FaultRegistry& registry) {
  for (const FaultKindInfo* info : GpuKindInfos()) {
    registry.Add(std::make_unique<UnavailableGpuFactory>(*info));
  }
}

}  // namespace chaosdrill::injector
