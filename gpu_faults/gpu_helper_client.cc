#include "gpu_faults/gpu_helper_client.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace chaosdrill::gpu {
namespace {

using nlohmann::json;

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::string Dir(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// Reads lines until one parses as a JSON object; an {"event":"error"} becomes *error.
}  // namespace

bool ReadGpuHelperEvent(HelperProcess& helper, int timeout_ms, json* event, GpuError* error) {
  int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    std::string line, why;
    int64_t left = deadline - NowMs();
    if (left <= 0 || !helper.ReadLine(static_cast<int>(std::max<int64_t>(left, 1)), &line, &why)) {
      helper.Running();
      *error = {why.find("no answer") == 0 ? "timeout" : "protocol", "gpu helper: " + why};
      return false;
    }
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("event")) continue;  // not ours (a driver warning)
    if (j["event"] == "error") {
      *error = {j.value("code", "cuda"), j.value("message", "gpu helper failed")};
      return false;
    }
    *event = std::move(j);
    return true;
  }
}

std::unique_ptr<HelperProcess> SpawnGpuHelper(const std::string& helper,
                                              std::vector<std::string> args, GpuError* error) {
  args.insert(args.begin(), helper);
  std::string why;
  auto child = HelperProcess::Spawn({.argv = std::move(args)}, &why);
  if (!child) *error = {"spawn", "starting " + helper + ": " + why};
  return child;
}

std::string FindGpuHelper(GpuError* error) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("CHAOSDRILL_GPU_HELPER"); env != nullptr && *env) {
    candidates.push_back(env);
  } else {
    std::string self = SelfExe();
    if (!self.empty()) candidates.push_back(Dir(self) + "/" + kGpuHelperName);
#ifdef CHAOSDRILL_GPU_HELPER_BUILD_PATH
    candidates.push_back(CHAOSDRILL_GPU_HELPER_BUILD_PATH);
#endif
  }
  std::string looked;
  for (const std::string& c : candidates) {
    if (access(c.c_str(), X_OK) == 0) return c;
    looked += (looked.empty() ? "" : ", ") + c;
  }
  *error = {"helper_missing", std::string(kGpuHelperName) + " not found (looked at " + looked +
                                  "); install it next to the chaosdrill binary"};
  return "";
}

bool ProbeGpu(const std::string& helper, int device, GpuInfo* info, GpuError* error,
              int timeout_ms) {
  auto child = SpawnGpuHelper(helper, {"probe", "--device", std::to_string(device)}, error);
  if (!child) return false;
  json j;
  if (!ReadGpuHelperEvent(*child, timeout_ms, &j, error)) return false;
  info->count = j.value("count", 0);
  info->device = j.value("device", device);
  info->name = j.value("name", "");
  info->pci_bus_id = j.value("pci_bus_id", "");
  info->total = j.value("total", uint64_t{0});
  info->free = j.value("free", uint64_t{0});
  info->sm_count = j.value("sm_count", 0);
  return true;
}

std::unique_ptr<HelperProcess> StartMemoryHold(const std::string& helper,
                                               const HoldOptions& options, HoldReport* report,
                                               GpuError* error) {
  const int64_t start = NowMs();
  GpuInfo before;
  if (!ProbeGpu(helper, options.device, &before, error)) return nullptr;
  report->total = before.total;
  report->baseline_free = before.free;
  report->tolerance = std::max<uint64_t>(16ull << 20, before.total / 2000);
  const MemoryTarget& t = options.target;
  uint64_t target = 0;
  switch (t.mode) {
    case MemoryTarget::Mode::kSize:
      if (t.bytes > before.free) {
        *error = {"oom", "cannot take " + std::to_string(t.bytes) + " bytes: only " +
                             std::to_string(before.free) + " free on device " +
                             std::to_string(options.device)};
        return nullptr;
      }
      target = before.free - t.bytes;
      break;
    case MemoryTarget::Mode::kFraction:
      target = static_cast<uint64_t>(static_cast<double>(before.total) * (1.0 - t.fraction));
      break;
    case MemoryTarget::Mode::kLeaveFree:
      target = t.bytes;
      break;
  }
  if (target > before.free) {
    *error = {"already_above",
              "device " + std::to_string(options.device) + " has only " +
                  std::to_string(before.free) + " of " + std::to_string(before.total) +
                  " bytes free already, less than the target " + std::to_string(target)};
    return nullptr;
  }
  report->target_free = target;
  auto child =
      SpawnGpuHelper(helper,
                     {"hold", "--device", std::to_string(options.device), "--chunk",
                      std::to_string(options.chunk), "--ramp-ms", std::to_string(options.ramp_ms),
                      "--tolerance", std::to_string(report->tolerance)},
                     error);
  if (!child) return nullptr;
  json context;
  if (!ReadGpuHelperEvent(*child, 60'000, &context, error)) return nullptr;
  // The holder sees free memory with its own context taken; an observer has one more
  // context (its own). Measure the holder's context from outside to aim at what an
  // observer will read.
  GpuInfo during;
  if (!ProbeGpu(helper, options.device, &during, error)) return nullptr;
  report->context_bytes = before.free > during.free ? before.free - during.free : 0;
  const uint64_t holder_target = target + report->context_bytes;
  if (!child->WriteLine("target_free " + std::to_string(holder_target))) {
    *error = {"protocol", "gpu helper went away before the target was sent"};
    return nullptr;
  }
  json ready;
  if (!ReadGpuHelperEvent(*child, static_cast<int>(options.ramp_ms + 300'000), &ready, error)) {
    return nullptr;
  }
  report->held = ready.value("held", uint64_t{0});
  report->holder_free = ready.value("free", uint64_t{0});
  report->within_tolerance = ready.value("within_tolerance", false);
  report->elapsed_ms = NowMs() - start;
  if (report->holder_free > holder_target + report->tolerance) {
    *error = {"oom", "held " + std::to_string(report->held) + " bytes but " +
                         std::to_string(report->holder_free) + " are still free (target " +
                         std::to_string(holder_target) + ")"};
    return nullptr;
  }
  return child;
}

bool WaitForFreeMemory(const std::string& helper, int device, uint64_t min_free, int timeout_ms,
                       uint64_t* last_free, GpuError* error) {
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    GpuInfo info;
    if (!ProbeGpu(helper, device, &info, error, timeout_ms)) return false;
    *last_free = info.free;
    if (info.free >= min_free) return true;
    if (NowMs() >= deadline) {
      *error = {"timeout", "device " + std::to_string(device) + " has " +
                               std::to_string(info.free) + " bytes free " +
                               std::to_string(timeout_ms) + "ms after release, expected " +
                               std::to_string(min_free)};
      return false;
    }
    timespec ts{0, 50'000'000};
    nanosleep(&ts, nullptr);
  }
}

std::unique_ptr<HelperProcess> StartComputeBurn(const std::string& helper,
                                                const BurnOptions& options, BurnReport* report,
                                                GpuError* error) {
  auto child = SpawnGpuHelper(
      helper,
      {"burn", "--device", std::to_string(options.device), "--sm-fraction",
       std::to_string(options.sm_fraction), "--duty-cycle", std::to_string(options.duty_cycle),
       "--period-us", std::to_string(options.period_us)},
      error);
  if (!child) return nullptr;
  json ready;
  if (!ReadGpuHelperEvent(*child, static_cast<int>(60'000 + options.period_us / 1000), &ready,
                          error)) {
    return nullptr;
  }
  report->blocks = ready.value("blocks", 0);
  report->sm_count = ready.value("sm_count", 0);
  return child;
}

}  // namespace chaosdrill::gpu
