// Typed, validated settings of the gpu.* kinds (parameters described in
// injector/gpu_kinds.h), parsed once from a FaultSpec. Every error is InvalidArgument
// naming the kind and the parameter. Needs no device: everything here is checkable anywhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/fault_spec.h"
#include "gpu_faults/cuda_fault_control.h"
#include "gpu_faults/gpu_helper_client.h"

namespace chaosdrill::injector {

constexpr int kMaxGpuDevice = 63;

struct MemoryPressureSettings {
  int device = 0;
  gpu::MemoryTarget target;
  uint64_t chunk = 256ull << 20;
  absl::Duration ramp = absl::ZeroDuration();
};
absl::StatusOr<MemoryPressureSettings> ParseMemoryPressureSettings(const FaultSpec& spec);

struct ComputeBurnSettings {
  int device = 0;
  double sm_fraction = 1.0;
  double duty_cycle = 1.0;
  absl::Duration period = absl::Milliseconds(100);
};
absl::StatusOr<ComputeBurnSettings> ParseComputeBurnSettings(const FaultSpec& spec);

struct CudaErrorsSettings {
  std::string control_path;       // absolute
  gpu::CudaFaultControl control;  // owner left empty; the fault fills it in
};
absl::StatusOr<CudaErrorsSettings> ParseCudaErrorsSettings(const FaultSpec& spec);

struct XidSettings {
  int xid = 0;
  std::string message;
  std::optional<std::string> pci;  // "0000:3b:00"; empty: ask the device
  int device = 0;
  int count = 1;
  absl::Duration interval = absl::ZeroDuration();
};
absl::StatusOr<XidSettings> ParseXidSettings(const FaultSpec& spec);

// The driver's text for well-known Xids ("GPU has fallen off the bus."), or nullopt.
std::optional<std::string> DefaultXidMessage(int xid);

// "0000:3B:00.0" (cudaDeviceGetPCIBusId) -> "0000:3b:00" (as NVRM prints it in Xid lines).
std::string XidPciFromBusId(absl::string_view bus_id);

}  // namespace chaosdrill::injector
