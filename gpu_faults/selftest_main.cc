// gpu_faults_selftest: exercises every gpu.* mechanism on one real device and prints the
// measurements as one JSON object (the figures docs/benchmarks.md asks for). Linked with the
// static CUDA runtime and libstdc++; it needs, next to itself, chaosdrill-gpu-holder, and
// for the cuda_errors part chaosdrill-cuda-victim + libchaosdrill_cuda_fault.so (+
// libcudart.so.13 next to it when the machine has no CUDA toolkit; see FindCudartDir). Without a
// device it prints
// {"ok": false, "error": ...} and exits 2 within a second or so.
//
//   gpu_faults_selftest [--device N] [--skip memory,burn,errors,xid] [--kmsg]
//
// memory: holds 50% and 90% of total; the level a separate observer process reads with
//   cudaMemGetInfo vs the target, time to reach it, time until the observer sees the memory
//   free again after revert and after SIGKILL of the holder.
// burn:   a tiled-SGEMM victim's throughput alone and beside compute burn at 50%/100% SMs.
// errors: a dynamically linked victim preloaded with the interposer does N cudaMallocs at
//   p = 0.1 (failure fraction, binomial bounds), then N more after the control file is gone.
// xid:    the exact record for Xid 79 with this device's PCI id, written to a scratch file
//   (to /dev/kmsg with --kmsg).
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gpu_faults/cuda_fault_control.h"
#include "gpu_faults/gemm_kernel.h"
#include "gpu_faults/gpu_helper_client.h"
#include "gpu_faults/helper_process.h"
#include "gpu_faults/xid_record.h"

namespace chaosdrill::gpu {
namespace {

using nlohmann::json;

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

std::string SelfDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string self(buf, static_cast<size_t>(n));
  return self.substr(0, self.rfind('/'));
}

void Progress(const std::string& what) { std::cerr << "selftest: " << what << std::endl; }

json ErrorJson(const GpuError& e) {
  return {{"ok", false}, {"code", e.code}, {"error", e.message}};
}

// A separate process with its own CUDA context that reads cudaMemGetInfo on request.
class Observer {
 public:
  bool Start(const std::string& helper, int device, GpuError* error) {
    process_ = SpawnGpuHelper(helper, {"observe", "--device", std::to_string(device)}, error);
    json context;
    return process_ && ReadGpuHelperEvent(*process_, 60'000, &context, error);
  }
  bool Read(uint64_t* free, uint64_t* total, GpuError* error) {
    json e;
    if (!process_->WriteLine("read") || !ReadGpuHelperEvent(*process_, 10'000, &e, error)) {
      return false;
    }
    *free = e.value("free", uint64_t{0});
    *total = e.value("total", uint64_t{0});
    return true;
  }
  // Milliseconds until the observer sees at least `bytes` free; negative on timeout.
  double WaitFree(uint64_t bytes, int timeout_ms, GpuError* error) {
    json e;
    if (!process_->WriteLine("wait_free_at_least " + std::to_string(bytes) + " " +
                             std::to_string(timeout_ms)) ||
        !ReadGpuHelperEvent(*process_, timeout_ms + 10'000, &e, error)) {
      return -1;
    }
    if (e.value("event", "") != "reached") return -1;
    return e.value("elapsed_us", int64_t{0}) / 1000.0;
  }

 private:
  std::unique_ptr<HelperProcess> process_;
};

json MemoryStep(const std::string& helper, int device, Observer& observer, double fraction,
                bool sigkill) {
  GpuError error;
  uint64_t free0 = 0, total = 0;
  if (!observer.Read(&free0, &total, &error)) return ErrorJson(error);
  HoldOptions options{.device = device,
                      .target = {.mode = MemoryTarget::Mode::kFraction, .fraction = fraction}};
  HoldReport report;
  auto holder = StartMemoryHold(helper, options, &report, &error);
  if (!holder) return ErrorJson(error);
  uint64_t free1 = 0;
  if (!observer.Read(&free1, &total, &error)) return ErrorJson(error);
  const double level = 1.0 - static_cast<double>(free1) / static_cast<double>(total);
  const double t0 = NowMs();
  if (sigkill) {
    kill(holder->pid(), SIGKILL);  // the holder "crashes"; nobody reverts
  } else {
    holder->Kill();  // what Revert does
  }
  const uint64_t back = free0 > 2 * report.tolerance ? free0 - 2 * report.tolerance : 0;
  double waited = observer.WaitFree(back, 30'000, &error);
  const double freed_ms = waited < 0 ? -1 : NowMs() - t0;
  holder->Kill();
  json out = {
      {"ok", std::abs(level - fraction) <= 0.0025 && freed_ms >= 0},
      {"target_level", fraction},
      {"level_seen_by_observer", level},
      {"error_percent_points", (level - fraction) * 100},
      {"observer_free_before", free0},
      {"observer_free_during", free1},
      {"total", total},
      {"holder_context_bytes", report.context_bytes},
      {"held_bytes", report.held},
      {"time_to_reach_ms", report.elapsed_ms},
      {sigkill ? "time_to_free_after_sigkill_ms" : "time_to_free_after_revert_ms", freed_ms}};
  return out;
}

json BurnStep(const std::string& helper, int device, GemmVictim& victim, double baseline,
              double sm_fraction) {
  GpuError error;
  BurnReport report;
  auto burner = StartComputeBurn(
      helper, {.device = device, .sm_fraction = sm_fraction, .duty_cycle = 1.0}, &report, &error);
  if (!burner) return ErrorJson(error);
  double gflops = 0;
  cudaError_t err = victim.Measure(3000, &gflops);
  burner->Kill();
  if (err != cudaSuccess) return {{"ok", false}, {"error", cudaGetErrorString(err)}};
  return {{"ok", true},
          {"sm_fraction", sm_fraction},
          {"duty_cycle", 1.0},
          {"burn_blocks", report.blocks},
          {"sm_count", report.sm_count},
          {"victim_gflops_alone", baseline},
          {"victim_gflops_beside_burn", gflops},
          {"throughput_drop_percent", (1.0 - gflops / baseline) * 100}};
}

// The directory holding the dynamic CUDA runtime the victim links against
// (CHAOSDRILL_CUDART_SONAME, e.g. libcudart.so.13), or "" with the places tried in *tried.
// The interposer can only sit in front of a *dynamic* libcudart (LD_PRELOAD wins the symbol
// lookup of calls that go through the PLT; calls inside a statically linked runtime never
// do), so the victim cannot be static like this self-test, and it must find the runtime on
// a machine that has only the driver and a toolkit (or a copy next to this binary). Its
// RUNPATH ($ORIGIN and this build's toolkit) may not fit that machine, so the directory
// found here goes first in its LD_LIBRARY_PATH.
std::string FindCudartDir(const std::string& self_dir, std::string* tried) {
  std::vector<std::string> dirs;
  if (const char* d = getenv("CHAOSDRILL_CUDART_DIR")) dirs.push_back(d);
  dirs.push_back(self_dir);
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"}) {
    if (const char* d = getenv(var)) {
      dirs.push_back(std::string(d) + "/lib64");
      dirs.push_back(std::string(d) + "/lib");
    }
  }
  for (const char* d : {"/usr/local/cuda/lib64", "/usr/local/cuda/lib",
                        "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/lib/x86_64-linux-gnu"}) {
    dirs.push_back(d);
  }
  for (const std::string& d : dirs) {
    if (access((d + "/" + CHAOSDRILL_CUDART_SONAME).c_str(), R_OK) == 0) return d;
    *tried += (tried->empty() ? "" : ", ") + d;
  }
  return "";
}

json ErrorsStep(int device) {
  const std::string dir = SelfDir();
  const std::string victim_path = dir + "/chaosdrill-cuda-victim";
  const std::string preload = dir + "/libchaosdrill_cuda_fault.so";
  if (access(victim_path.c_str(), X_OK) != 0 || access(preload.c_str(), R_OK) != 0) {
    return {{"ok", false}, {"error", "needs " + victim_path + " and " + preload}};
  }
  std::string tried;
  const std::string cudart_dir = FindCudartDir(dir, &tried);
  if (cudart_dir.empty()) {
    return {{"ok", false},
            {"error", std::string("chaosdrill-cuda-victim needs the dynamic CUDA runtime ") +
                          CHAOSDRILL_CUDART_SONAME + " (the interposer wraps its calls); none in " +
                          tried +
                          ". Copy it next to gpu_faults_selftest or set "
                          "CHAOSDRILL_CUDART_DIR"}};
  }
  std::string library_path = cudart_dir;
  if (const char* old = getenv("LD_LIBRARY_PATH"); old != nullptr && *old != '\0') {
    library_path += std::string(":") + old;
  }
  char tmpl[] = "/tmp/chaosdrill-selftest-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return {{"ok", false}, {"error", "mkdtemp failed"}};
  const std::string control = std::string(tmpl) + "/cuda.ctl";
  std::string why;
  auto victim = HelperProcess::Spawn(
      {.argv = {victim_path},
       .env = {"LD_PRELOAD=" + preload, "LD_LIBRARY_PATH=" + library_path,
               "CHAOSDRILL_CUDA_FAULT_CONTROL=" + control, "CHAOSDRILL_CUDA_FAULT_RECHECK_MS=0",
               "CUDA_VISIBLE_DEVICES=" + std::to_string(device)}},
      &why);
  if (!victim) return {{"ok", false}, {"error", why}};
  auto ask = [&](long n, long* failures, int* last_error) {
    std::string line;
    if (!victim->WriteLine("malloc " + std::to_string(n) + " 1048576") ||
        !victim->ReadLine(120'000, &line, &why)) {
      return false;
    }
    long calls = 0;
    return std::sscanf(line.c_str(), "calls=%ld failures=%ld last_error=%d", &calls, failures,
                       last_error) == 3;
  };
  constexpr long kCalls = 2000;
  constexpr double kP = 0.1;
  long before = -1, during = -1, after = -1;
  int last_before = 0, last_during = 0, last_after = 0;
  bool ok = ask(100, &before, &last_before);
  CudaFaultControl c;
  c.calls_mask = 1u << static_cast<int>(CudaCall::kMalloc);
  c.probability = kP;
  c.error = 2;
  {
    std::ofstream(control + ".tmp") << FormatCudaFaultControl(c);
    std::rename((control + ".tmp").c_str(), control.c_str());
  }
  ok = ok && ask(kCalls, &during, &last_during);
  unlink(control.c_str());
  ok = ok && ask(kCalls, &after, &last_after);
  victim->WriteLine("quit");
  rmdir(tmpl);
  if (!ok) return {{"ok", false}, {"error", "victim: " + why}};
  const double sd = std::sqrt(kCalls * kP * (1 - kP));
  const double lo = kCalls * kP - 5 * sd, hi = kCalls * kP + 5 * sd;
  return {{"ok", before == 0 && during >= lo && during <= hi && after == 0},
          {"probability", kP},
          {"calls", kCalls},
          {"failures_before_inject", before},
          {"failures", during},
          {"failure_fraction", static_cast<double>(during) / kCalls},
          {"binomial_5sd_bounds", {lo, hi}},
          {"injected_error", last_during},
          {"failures_after_revert", after},
          {"cudart_dir", cudart_dir}};
}

json XidStep(const GpuInfo& info, bool kmsg) {
  std::string pci = info.pci_bus_id;
  for (char& ch : pci) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (size_t dot = pci.rfind('.'); dot != std::string::npos) pci.resize(dot);
  if (pci.size() == 14 && pci.compare(0, 4, "0000") == 0) pci.erase(0, 4);
  const std::string line = XidRecordLine(pci, 79, "GPU has fallen off the bus.");
  std::string path = kmsg ? "/dev/kmsg" : "/tmp/chaosdrill-selftest-kmsg.txt";
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  if (fd >= 0) close(fd);
  if (!kmsg) unlink(path.c_str());
  return {{"ok", ok}, {"record", line}, {"written_to", path}};
}

}  // namespace
}  // namespace chaosdrill::gpu

int main(int argc, char** argv) {
  using namespace chaosdrill::gpu;
  int device = 0;
  bool kmsg = false;
  std::set<std::string> skip;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--device" && i + 1 < argc) {
      device = std::atoi(argv[++i]);
    } else if (a == "--skip" && i + 1 < argc) {
      std::stringstream s(argv[++i]);
      std::string part;
      while (std::getline(s, part, ',')) skip.insert(part);
    } else if (a == "--kmsg") {
      kmsg = true;
    } else {
      std::cerr << "usage: gpu_faults_selftest [--device N] [--skip memory,burn,errors,xid] "
                   "[--kmsg]\n";
      return 64;
    }
  }
  json out = {{"tool", "gpu_faults_selftest"}, {"device_index", device}};
  GpuError error;
  std::string helper = FindGpuHelper(&error);
  GpuInfo info;
  if (helper.empty() || !ProbeGpu(helper, device, &info, &error)) {
    out["ok"] = false;
    out["code"] = error.code;
    out["error"] = error.message;
    std::cout << out.dump(2) << std::endl;
    return 2;
  }
  out["device"] = {{"name", info.name}, {"pci_bus_id", info.pci_bus_id}, {"total", info.total},
                   {"free", info.free}, {"sm_count", info.sm_count},     {"count", info.count}};
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  out["cuda_driver_version"] = driver;
  out["cuda_runtime_version"] = runtime;
  bool ok = true;
  if (!skip.count("memory")) {
    Observer observer;
    if (!observer.Start(helper, device, &error)) {
      out["memory_pressure"] = ErrorJson(error);
      ok = false;
    } else {
      json steps = json::array();
      for (double f : {0.5, 0.9}) {
        Progress("memory pressure " + std::to_string(f));
        steps.push_back(MemoryStep(helper, device, observer, f, /*sigkill=*/false));
      }
      Progress("memory pressure 0.9, holder SIGKILLed");
      steps.push_back(MemoryStep(helper, device, observer, 0.9, /*sigkill=*/true));
      for (const json& s : steps) ok = ok && s.value("ok", false);
      out["memory_pressure"] = steps;
    }
  }
  if (!skip.count("burn")) {
    Progress("compute burn");
    GemmVictim victim;
    double baseline = 0;
    cudaError_t err = cudaSetDevice(device);
    if (err == cudaSuccess) err = victim.Init(2048);
    if (err == cudaSuccess) err = victim.Measure(3000, &baseline);
    if (err != cudaSuccess) {
      out["compute_burn"] = {{"ok", false}, {"error", cudaGetErrorString(err)}};
      ok = false;
    } else {
      json steps = json::array();
      for (double f : {0.5, 1.0}) steps.push_back(BurnStep(helper, device, victim, baseline, f));
      for (const json& s : steps) ok = ok && s.value("ok", false);
      out["compute_burn"] = steps;
    }
  }
  if (!skip.count("errors")) {
    Progress("cuda errors");
    out["cuda_errors"] = ErrorsStep(device);
    ok = ok && out["cuda_errors"].value("ok", false);
  }
  if (!skip.count("xid")) {
    out["xid"] = XidStep(info, kmsg);
    ok = ok && out["xid"].value("ok", false);
  }
  out["ok"] = ok;
  std::cout << out.dump(2) << std::endl;
  return ok ? 0 : 1;
}
