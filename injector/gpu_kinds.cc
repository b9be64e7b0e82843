#include "injector/gpu_kinds.h"

namespace chaosdrill::injector {
namespace {

ParamSpec DeviceParam() {
  return {.name = "device",
          .type = ParamType::kInt,
          .default_value = "0",
          .doc = "CUDA device index as the CUDA runtime numbers it (after CUDA_VISIBLE_DEVICES)"};
}

}  // namespace

const FaultKindInfo& GpuMemoryPressureInfo() {
  static const FaultKindInfo info{
      .kind = "gpu.memory_pressure",
      .summary =
          "hold GPU memory in a child process (chunked cudaMalloc, verified with "
          "cudaMemGetInfo); the driver frees it if the child dies",
      .takes_duration = true,
      .params = {
          DeviceParam(),
          {.name = "size",
           .type = ParamType::kSize,
           .doc = "take this many bytes away from other processes (the holder's own CUDA "
                  "context included); exactly one of size, fraction, leave_free"},
          {.name = "fraction",
           .type = ParamType::kRatio,
           .doc = "take this share of the device's total memory, in (0, 1): 0.9 or 90%"},
          {.name = "leave_free",
           .type = ParamType::kSize,
           .doc = "allocate until only this many bytes are free on the device"},
          {.name = "ramp",
           .type = ParamType::kDuration,
           .default_value = "0",
           .doc = "spread the allocation evenly over this long (0: as fast as possible)"},
          {.name = "chunk",
           .type = ParamType::kSize,
           .default_value = "256MiB",
           .doc = "cudaMalloc chunk size, 2MiB..64GiB (the last chunk is cut to the target)"},
      }};
  return info;
}

const FaultKindInfo& GpuComputeBurnInfo() {
  static const FaultKindInfo info{
      .kind = "gpu.compute_burn",
      .summary =
          "a noisy neighbour: a persistent spin kernel on a share of the SMs at a "
          "duty cycle, in a child process",
      .takes_duration = true,
      .params = {
          DeviceParam(),
          {.name = "sm_fraction",
           .type = ParamType::kRatio,
           .default_value = "1",
           .doc = "share of the SMs to occupy, in (0, 1]: blocks = fraction x SM count (>= 1)"},
          {.name = "duty_cycle",
           .type = ParamType::kRatio,
           .default_value = "1",
           .doc = "share of each period the kernel spins, in (0, 1]"},
          {.name = "period",
           .type = ParamType::kDuration,
           .default_value = "100ms",
           .doc = "duty-cycle period, 1ms..10s"},
      }};
  return info;
}

const FaultKindInfo& GpuCudaErrorsInfo() {
  static const FaultKindInfo info{
      .kind = "gpu.cuda_errors",
      .summary =
          "make chosen CUDA runtime calls of a process started with "
          "LD_PRELOAD=libchaosdrill_cuda_fault.so fail with probability p",
      .takes_duration = true,
      .params = {
          {.name = "control",
           .type = ParamType::kString,
           .required = true,
           .doc = "control file the target reads (its CHAOSDRILL_CUDA_FAULT_CONTROL); "
                  "written on inject, removed on revert"},
          {.name = "calls",
           .type = ParamType::kStringList,
           .default_value = "cudaMalloc",
           .doc = "calls to fail: cudaMalloc, cudaMemcpy, cudaMemcpyAsync, cudaLaunchKernel"},
          {.name = "error",
           .type = ParamType::kString,
           .default_value = "cudaErrorMemoryAllocation",
           .doc = "error to return: a cudaError name (cudaErrorMemoryAllocation, "
                  "cudaErrorLaunchFailure, ...) or its number"},
          {.name = "probability",
           .type = ParamType::kRatio,
           .default_value = "1",
           .doc = "chance that each matching call fails, in [0, 1]"},
          {.name = "seed",
           .type = ParamType::kInt,
           .default_value = "0",
           .doc = "random seed for reproducible failures (0: a fresh seed per process)"},
      }};
  return info;
}

const FaultKindInfo& GpuXidInfo() {
  static const FaultKindInfo info{
      .kind = "gpu.xid",
      .summary =
          "write NVRM Xid reports in the driver's format to /dev/kmsg (root) to drill "
          "node-health detection; does nothing to the GPU itself",
      .takes_duration = false,
      .params = {
          {.name = "xid",
           .type = ParamType::kInt,
           .required = true,
           .doc = "Xid number (79: fallen off the bus, 48: DBE, 63/64: row remap, 94/95: ECC)"},
          {.name = "message",
           .type = ParamType::kString,
           .doc = "text after the Xid number; default: the driver's text for well-known Xids"},
          {.name = "pci",
           .type = ParamType::kString,
           .doc = "PCI bus id as the driver prints it (0000:3b:00); default: queried from "
                  "`device`, or 0000:00:00 when no device answers"},
          DeviceParam(),
          {.name = "count",
           .type = ParamType::kInt,
           .default_value = "1",
           .doc = "number of reports to write, 1..1000"},
          {.name = "interval",
           .type = ParamType::kDuration,
           .default_value = "0",
           .doc = "pause between reports"},
      }};
  return info;
}

std::vector<const FaultKindInfo*> GpuKindInfos() {
  return {&GpuComputeBurnInfo(), &GpuCudaErrorsInfo(), &GpuMemoryPressureInfo(), &GpuXidInfo()};
}

}  // namespace chaosdrill::injector
