#include "gpu_faults/cuda_fault_control.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace chaosdrill::gpu {
namespace {

constexpr const char* kCallNames[] = {"cudaMalloc", "cudaMemcpy", "cudaMemcpyAsync",
                                      "cudaLaunchKernel"};
static_assert(sizeof(kCallNames) / sizeof(kCallNames[0]) == static_cast<int>(CudaCall::kCount));

struct NamedError {
  const char* name;
  int value;
};
// Values from driver_types.h (CUDA 12/13); cuda_fault_preload.cc static_asserts them.
constexpr NamedError kErrors[] = {
    {"cudaErrorInvalidValue", 1},           {"cudaErrorMemoryAllocation", 2},
    {"cudaErrorInitializationError", 3},    {"cudaErrorInsufficientDriver", 35},
    {"cudaErrorDevicesUnavailable", 46},    {"cudaErrorNoDevice", 100},
    {"cudaErrorECCUncorrectable", 214},     {"cudaErrorIllegalAddress", 700},
    {"cudaErrorLaunchOutOfResources", 701}, {"cudaErrorLaunchTimeout", 702},
    {"cudaErrorLaunchFailure", 719},        {"cudaErrorUnknown", 999},
};

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

bool ParseUint64(const std::string& s, uint64_t* out) {
  if (s.empty() || s[0] == '-' || s[0] == '+') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

}  // namespace

const char* CudaCallName(CudaCall call) { return kCallNames[static_cast<int>(call)]; }

std::optional<CudaCall> CudaCallFromName(const std::string& name) {
  for (int i = 0; i < static_cast<int>(CudaCall::kCount); ++i) {
    if (name == kCallNames[i]) return static_cast<CudaCall>(i);
  }
  return std::nullopt;
}

std::optional<int> CudaErrorFromName(const std::string& name) {
  for (const NamedError& e : kErrors) {
    if (name == e.name) return e.value;
  }
  uint64_t v = 0;
  if (ParseUint64(name, &v) && v >= 1 && v <= 10000) return static_cast<int>(v);
  return std::nullopt;
}

std::string CudaErrorName(int error) {
  for (const NamedError& e : kErrors) {
    if (error == e.value) return e.name;
  }
  return std::to_string(error);
}

std::vector<std::string> KnownCudaErrorNames() {
  std::vector<std::string> out;
  for (const NamedError& e : kErrors) out.push_back(e.name);
  return out;
}

std::optional<CudaFaultControl> ParseCudaFaultControl(const std::string& text, std::string* error) {
  CudaFaultControl control;
  bool have_calls = false;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  auto fail = [&](const std::string& msg) {
    *error = "line " + std::to_string(line_no) + ": " + msg;
    return std::nullopt;
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    line = Trim(line);
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) return fail("expected key=value, found \"" + line + "\"");
    std::string key = Trim(line.substr(0, eq));
    std::string value = Trim(line.substr(eq + 1));
    if (key == "calls") {
      control.calls_mask = 0;
      std::istringstream names(value);
      std::string name;
      while (std::getline(names, name, ',')) {
        name = Trim(name);
        std::optional<CudaCall> call = CudaCallFromName(name);
        if (!call) return fail("unknown call \"" + name + "\"");
        control.calls_mask |= 1u << static_cast<int>(*call);
      }
      if (control.calls_mask == 0) return fail("calls is empty");
      have_calls = true;
    } else if (key == "error") {
      std::optional<int> code = CudaErrorFromName(value);
      if (!code) return fail("unknown error \"" + value + "\"");
      control.error = *code;
    } else if (key == "probability") {
      errno = 0;
      char* end = nullptr;
      double p = std::strtod(value.c_str(), &end);
      if (value.empty() || errno != 0 || *end != '\0' || !std::isfinite(p) || p < 0 || p > 1) {
        return fail("probability must be a number in [0, 1], found \"" + value + "\"");
      }
      control.probability = p;
    } else if (key == "seed") {
      if (!ParseUint64(value, &control.seed)) {
        return fail("seed must be a non-negative integer, found \"" + value + "\"");
      }
    } else if (key == "owner") {
      control.owner = value;
    } else {
      return fail("unknown key \"" + key + "\"");
    }
  }
  if (!have_calls) {
    *error = "no calls= line";
    return std::nullopt;
  }
  return control;
}

std::string FormatCudaFaultControl(const CudaFaultControl& control) {
  std::ostringstream out;
  out << "# chaosdrill gpu.cuda_errors control file: remove it to stop the failures\n";
  out << "calls=";
  bool first = true;
  for (int i = 0; i < static_cast<int>(CudaCall::kCount); ++i) {
    if (!control.Matches(static_cast<CudaCall>(i))) continue;
    out << (first ? "" : ",") << kCallNames[i];
    first = false;
  }
  out << "\nerror=" << control.error << "  # " << CudaErrorName(control.error) << "\n";
  char p[64];
  std::snprintf(p, sizeof(p), "%.17g", control.probability);
  out << "probability=" << p << "\n";
  out << "seed=" << control.seed << "\n";
  if (!control.owner.empty()) out << "owner=" << control.owner << "\n";
  return out.str();
}

}  // namespace chaosdrill::gpu
