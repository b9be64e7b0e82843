#include "injector/agent/gpu_facts.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#ifdef CHAOSDRILL_AGENT_HAVE_CUDA
#include "gpu_faults/gpu_helper_client.h"
#endif

namespace chaosdrill::agent {
namespace {

constexpr char kDriverDir[] = "/proc/driver/nvidia/gpus";

// The driver's list, in directory (PCI) order; names from each "information" file.
std::vector<GpuDeviceFacts> FromDriver() {
  std::vector<GpuDeviceFacts> out;
  std::error_code ec;
  std::vector<std::filesystem::path> dirs;
  for (const auto& entry : std::filesystem::directory_iterator(kDriverDir, ec)) {
    dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs) {
    GpuDeviceFacts g;
    g.index = static_cast<int>(out.size());
    g.pci_bus_id = dir.filename().string();
    std::ifstream in(dir / "information");
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StartsWith(line, "Model:")) {
        g.name = std::string(absl::StripAsciiWhitespace(absl::string_view(line).substr(6)));
      }
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

GpuFacts::GpuFacts(std::vector<GpuDeviceFacts> devices, std::string error) {
  absl::MutexLock lock(&mu_);
  loaded_ = true;
  devices_ = std::move(devices);
  error_ = std::move(error);
}

void GpuFacts::LoadLocked() {
  if (loaded_) return;
  loaded_ = true;
  std::error_code ec;
  if (!std::filesystem::is_directory(kDriverDir, ec)) {
    error_ = "no NVIDIA driver loaded (no /proc/driver/nvidia/gpus)";
    return;
  }
#ifdef CHAOSDRILL_AGENT_HAVE_CUDA
  gpu::GpuError err;
  std::string helper = gpu::FindGpuHelper(&err);
  gpu::GpuInfo first;
  if (!helper.empty() && gpu::ProbeGpu(helper, 0, &first, &err, 30'000)) {
    for (int d = 0; d < first.count; ++d) {
      gpu::GpuInfo info = first;
      if (d > 0 && !gpu::ProbeGpu(helper, d, &info, &err, 30'000)) {
        error_ = absl::StrCat("probing GPU ", d, ": ", err.message);
        devices_.push_back({.index = d});
        continue;
      }
      devices_.push_back({.index = d,
                          .name = info.name,
                          .pci_bus_id = info.pci_bus_id,
                          .memory_bytes = info.total});
    }
    return;
  }
  error_ = absl::StrCat("GPU probe failed: ", err.message);
#else
  error_ = "this agent was built without CUDA, so it cannot ask a device its memory size";
#endif
  devices_ = FromDriver();
}

std::vector<GpuDeviceFacts> GpuFacts::Devices() {
  absl::MutexLock lock(&mu_);
  LoadLocked();
  return devices_;
}

std::string GpuFacts::error() {
  absl::MutexLock lock(&mu_);
  LoadLocked();
  return error_;
}

}  // namespace chaosdrill::agent
