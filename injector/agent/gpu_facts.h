// What the agent knows about this node's GPUs: index, name, PCI bus id and total memory,
// for Capabilities and for the allowlist's GPU checks (a `size` in bytes is judged against
// max_gpu_fraction as a share of the device's total memory).
//
// With a CUDA build the facts come from chaosdrill-gpu-holder's "probe" (one short helper
// process per device, so the agent itself never holds a CUDA context), asked once, on the
// first call, and only when the NVIDIA driver is loaded (/proc/driver/nvidia/gpus); the
// answer (or the failure) is kept for the agent's lifetime. Without CUDA, or when the
// probe fails, devices come from /proc/driver/nvidia/gpus with memory_bytes = 0
// (unknown), and `error()` says why.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace chaosdrill::agent {

struct GpuDeviceFacts {
  int index = 0;  // CUDA runtime numbering (the `device` parameter of gpu.* kinds)
  std::string name;
  std::string pci_bus_id;     // "0000:3B:00.0"; empty when unknown
  uint64_t memory_bytes = 0;  // 0 = unknown
};

class GpuFacts {
 public:
  // This node's GPUs, probed lazily.
  GpuFacts() = default;
  // Fixed facts (tests); `error` is what error() says when a device's memory is unknown.
  GpuFacts(std::vector<GpuDeviceFacts> devices, std::string error);
  GpuFacts(const GpuFacts&) = delete;
  GpuFacts& operator=(const GpuFacts&) = delete;

  std::vector<GpuDeviceFacts> Devices();
  // Why memory sizes are unknown ("built without CUDA", the probe's error), or "".
  std::string error();

 private:
  void LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<GpuDeviceFacts> devices_ ABSL_GUARDED_BY(mu_);
  std::string error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chaosdrill::agent
