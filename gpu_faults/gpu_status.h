// The GPU boundary as absl::Status: maps what the helper process reported (gpu::GpuError)
// to the code a caller acts on, and the node-level Preflight shared by the kinds that need
// a device (memory pressure, compute burn).
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gpu_faults/gpu_helper_client.h"
#include "injector/fault.h"

namespace chaosdrill::injector {

// "context: message" with: no_device/bad_device/helper_missing/already_above ->
// FailedPrecondition, oom -> ResourceExhausted, timeout -> DeadlineExceeded, others ->
// Internal.
absl::Status GpuErrorStatus(absl::string_view context, const gpu::GpuError& error);

// Available when the helper is installed and device 0 answers a probe; otherwise the reason
// is the helper's ("no CUDA device visible (cudaGetDeviceCount: ...)").
PreflightResult GpuDevicePreflight();

}  // namespace chaosdrill::injector
