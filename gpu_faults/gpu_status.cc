#include "gpu_faults/gpu_status.h"

#include "absl/strings/str_cat.h"

namespace chaosdrill::injector {

absl::Status GpuErrorStatus(absl::string_view context, const gpu::GpuError& error) {
  std::string message = absl::StrCat(context, ": ", error.message);
  const std::string& code = error.code;
  if (code == "no_device" || code == "bad_device" || code == "helper_missing" ||
      code == "already_above") {
    return absl::FailedPreconditionError(message);
  }
  if (code == "oom") return absl::ResourceExhaustedError(message);
  if (code == "timeout") return absl::DeadlineExceededError(message);
  return absl::InternalError(message);
}

PreflightResult GpuDevicePreflight() {
  gpu::GpuError error;
  std::string helper = gpu::FindGpuHelper(&error);
  if (helper.empty()) {
    return {.available = false,
            .reason = error.message,
            .fix = "install chaosdrill-gpu-holder next to the chaosdrill binary"};
  }
  gpu::GpuInfo info;
  if (!gpu::ProbeGpu(helper, 0, &info, &error)) {
    return {.available = false,
            .reason = error.message,
            .fix =
                "run on a node with an NVIDIA GPU and driver (nvidia-smi lists it) and "
                "check CUDA_VISIBLE_DEVICES"};
  }
  return {.available = true};
}

}  // namespace chaosdrill::injector
