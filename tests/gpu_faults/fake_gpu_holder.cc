// A stand-in for chaosdrill-gpu-holder that speaks its protocol (gpu_faults/holder_main.cc)
// over a simulated device, so the GPU faults' process lifecycle is tested for real without
// a GPU: each live holder process owns a file <FAKE_GPU_DIR>/proc.<pid> with the bytes it
// uses; a process that dies stops counting, as the driver frees a dead process's memory.
// Device: 80 GiB total, 1 GiB used by "others", 512 MiB per CUDA context, 132 SMs.
//   FAKE_GPU_NO_DEVICE=1   every mode fails like a machine without a device
//   FAKE_GPU_HOLD_FAIL=oom hold fails out of memory halfway
#include <dirent.h>
#include <poll.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace {

constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kTotal = 80 * kGiB;
constexpr uint64_t kOthers = kGiB;
constexpr uint64_t kContext = 512ull << 20;

std::string Dir() {
  const char* d = std::getenv("FAKE_GPU_DIR");
  return d ? d : "/tmp";
}

bool Alive(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  size_t close = stat.rfind(')');
  return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
}

// Bytes used by live processes other than us.
uint64_t UsedByOthers() {
  uint64_t used = kOthers;
  DIR* dir = opendir(Dir().c_str());
  if (!dir) return used;
  while (dirent* e = readdir(dir)) {
    long pid = 0;
    if (std::sscanf(e->d_name, "proc.%ld", &pid) != 1 || pid == getpid() || !Alive(pid)) continue;
    std::ifstream in(Dir() + "/" + e->d_name);
    uint64_t bytes = 0;
    in >> bytes;
    used += bytes;
  }
  closedir(dir);
  return used;
}

void SetOwnUse(uint64_t bytes) {
  std::string path = Dir() + "/proc." + std::to_string(getpid());
  std::ofstream(path + ".tmp") << bytes << "\n";
  std::rename((path + ".tmp").c_str(), path.c_str());
}

uint64_t FreeSeenByUs(uint64_t own) { return kTotal - UsedByOthers() - own; }

void Emit(const nlohmann::json& j) { std::cout << j.dump() << std::endl; }

void WaitForStdinEof() {
  char buf[256];
  while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 64;
  std::map<std::string, std::string> args;
  for (int i = 2; i + 1 < argc; i += 2) args[argv[i] + 2] = argv[i + 1];
  std::string mode = argv[1];
  if (std::getenv("FAKE_GPU_NO_DEVICE")) {
    Emit({{"event", "error"},
          {"code", "no_device"},
          {"message", "no CUDA device visible (cudaGetDeviceCount: fake: no device)"}});
    return 2;
  }
  if (args["device"] != "0") {
    Emit({{"event", "error"},
          {"code", "bad_device"},
          {"message", "device " + args["device"] + " not present (1 visible)"}});
    return 2;
  }
  if (mode == "probe") {
    Emit({{"event", "probe"},
          {"count", 1},
          {"device", 0},
          {"name", "Fake GPU"},
          {"total", kTotal},
          {"free", FreeSeenByUs(kContext)},
          {"sm_count", 132},
          {"pci_bus_id", "00000000:3B:00.0"}});
    return 0;
  }
  if (mode == "hold") {
    SetOwnUse(kContext);
    Emit({{"event", "context"}, {"free", FreeSeenByUs(kContext)}, {"total", kTotal}});
    std::string line;
    uint64_t target = 0;
    if (!std::getline(std::cin, line) ||
        std::sscanf(line.c_str(), "target_free %lu", &target) != 1) {
      return 0;
    }
    uint64_t free = FreeSeenByUs(kContext);
    uint64_t held = free > target ? (free - target) / (2 << 20) * (2 << 20) : 0;
    if (const char* fail = std::getenv("FAKE_GPU_HOLD_FAIL"); fail && !std::strcmp(fail, "oom")) {
      SetOwnUse(kContext + held / 2);
      Emit({{"event", "error"}, {"code", "oom"}, {"message", "cudaMalloc: out of memory (fake)"}});
      return 3;
    }
    SetOwnUse(kContext + held);
    free = FreeSeenByUs(kContext + held);
    Emit({{"event", "ready"},
          {"free", free},
          {"total", kTotal},
          {"target_free", target},
          {"held", held},
          {"chunks", 1},
          {"within_tolerance", true},
          {"elapsed_ms", 0}});
    WaitForStdinEof();
    return 0;
  }
  if (mode == "burn") {
    double f = std::strtod(args["sm-fraction"].c_str(), nullptr);
    Emit({{"event", "ready"},
          {"blocks", std::max(1L, std::lround(f * 132))},
          {"sm_count", 132},
          {"threads", 1024}});
    WaitForStdinEof();
    return 0;
  }
  return 64;
}
