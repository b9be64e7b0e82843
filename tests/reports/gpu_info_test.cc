// DescribeGpus on fake /proc and /sys trees (what the NVIDIA kernel driver publishes), and
// on this machine: the description it stores in RunRecord.environment.gpu.
#include "reports/gpu_info.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <iostream>

#include "tests/test_support.h"

namespace chaosdrill::reports {
namespace {

using chaosdrill::testing::TempDir;

void FakeGpu(const TempDir& root, const std::string& bus, const std::string& model) {
  root.Write("proc/driver/nvidia/gpus/" + bus + "/information",
             "Model: \t\t " + model + "\nIRQ:   \t\t 35\nGPU UUID: \t GPU-0000\n" +
                 "Bus Location: \t " + bus + "\nDevice Minor: \t 0\n");
}

TEST_CASE("GPU description from the NVIDIA driver's files", "[reports][gpu]") {
  TempDir root;
  CHECK(DescribeGpus(root.path()) == "none");

  // Only the PCI device: no driver loaded.
  root.Write("sys/bus/pci/devices/0000:00:02.0/vendor", "0x8086\n");  // Intel VGA: ignored
  root.Write("sys/bus/pci/devices/0000:00:02.0/class", "0x030000\n");
  root.Write("sys/bus/pci/devices/0000:18:00.0/vendor", "0x10de\n");
  root.Write("sys/bus/pci/devices/0000:18:00.0/class", "0x030200\n");
  root.Write("sys/bus/pci/devices/0000:18:00.0/device", "0x2335\n");
  root.Write("sys/bus/pci/devices/0000:19:00.0/vendor", "0x10de\n");  // NVIDIA audio: ignored
  root.Write("sys/bus/pci/devices/0000:19:00.0/class", "0x040300\n");
  CHECK(DescribeGpus(root.path()) == "NVIDIA GPU [10de:2335] (no NVIDIA driver loaded)");

  // The driver: models from /proc, version from the NVRM line.
  for (int i = 0; i < 8; ++i) FakeGpu(root, "0000:1" + std::to_string(i) + ":00.0", "NVIDIA H200");
  root.Write("proc/driver/nvidia/version",
             "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  "
             "(dvs-builder@U16-I3-B03-4-3)  Tue Mar  5 22:15:33 UTC 2024\nGCC version:  gcc 12\n");
  CHECK(DescribeGpus(root.path()) == "8 x NVIDIA H200 (driver 550.54.15)");
  // /sys/module/nvidia/version wins when present.
  root.Write("sys/module/nvidia/version", "580.65.06\n");
  FakeGpu(root, "0000:99:00.0", "Tesla T4");
  CHECK(DescribeGpus(root.path()) == "8 x NVIDIA H200, Tesla T4 (driver 580.65.06)");
}

TEST_CASE("GPU description of this machine", "[reports][gpu]") {
  std::string gpus = DescribeGpus();
  std::cout << "this machine: environment.gpu = \"" << GpuEnvironment() << "\"\n";
  CHECK_FALSE(gpus.empty());
  std::error_code ec;
  if (!std::filesystem::is_empty("/proc/driver/nvidia/gpus", ec) && !ec) {
    // A loaded NVIDIA driver with devices: model and driver version are both known.
    CHECK(gpus != "none");
    CHECK_THAT(gpus, Catch::Contains("(driver "));
  }
}

}  // namespace
}  // namespace chaosdrill::reports
