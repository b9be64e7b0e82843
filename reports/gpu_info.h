// What GPUs the host has, for RunRecord.environment.gpu: NVIDIA models and driver version
// read from what the kernel driver publishes (/proc/driver/nvidia, /sys/module/nvidia,
// PCI ids in /sys/bus/pci). No CUDA, no NVML, no child process: the runner calls it in
// every build, with or without the CUDA toolkit, and it never creates a CUDA context.
#pragma once

#include <string>

namespace chaosdrill::reports {

// "NVIDIA H200 (driver 550.54.15)", "8 x NVIDIA H100 80GB HBM3 (driver 580.65.06)",
// "NVIDIA A100-SXM4-40GB, NVIDIA T4 (driver ...)"; "NVIDIA GPU [10de:2335] (no NVIDIA
// driver loaded)" when only the PCI device is there; "none" when there is no NVIDIA GPU.
// `root` prefixes every path read (tests point it at a fake tree); "" is the real system.
std::string DescribeGpus(const std::string& root = "");

// DescribeGpus() plus a note when this chaosdrill was built without CUDA (GPU faults are
// then unavailable even though a GPU is present): what the runner stores.
std::string GpuEnvironment();

}  // namespace chaosdrill::reports
