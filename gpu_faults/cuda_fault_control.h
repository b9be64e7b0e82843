// The control file of the CUDA call-failure interposer (libchaosdrill_cuda_fault.so): what
// gpu.cuda_errors writes and the interposer re-reads. Its presence switches failures on,
// its absence off. Plain C++ (no absl) because it is also compiled into the LD_PRELOAD
// library, which must not drag abseil into arbitrary target processes.
//
// Format, one `key=value` per line, '#' comments, unknown keys rejected:
//   calls=cudaMalloc,cudaLaunchKernel   # which calls fail (names below)
//   error=2                             # cudaError_t value returned
//   probability=0.1                     # chance per matching call, [0, 1]
//   seed=42                             # optional; 0 or absent: a fresh seed per process
//   owner=<token>                       # optional; who wrote it (revert removes only its own)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chaosdrill::gpu {

// The interposed calls. Per-thread-default-stream variants (_ptds/_ptsz) count as their
// base call.
enum class CudaCall : int { kMalloc = 0, kMemcpy, kMemcpyAsync, kLaunchKernel, kCount };

const char* CudaCallName(CudaCall call);
std::optional<CudaCall> CudaCallFromName(const std::string& name);

// cudaError_t values by name for the errors worth injecting (cudaErrorMemoryAllocation, ...),
// or a decimal number in 1..10000. Values are checked against the CUDA headers at compile
// time in cuda_fault_preload.cc.
std::optional<int> CudaErrorFromName(const std::string& name);
// The name for a known value, else its number as text.
std::string CudaErrorName(int error);
// Every named error, for messages.
std::vector<std::string> KnownCudaErrorNames();

struct CudaFaultControl {
  uint32_t calls_mask = 0;  // bit (1 << CudaCall)
  int error = 2;            // cudaErrorMemoryAllocation
  double probability = 1.0;
  uint64_t seed = 0;
  std::string owner;

  bool Matches(CudaCall call) const { return calls_mask & (1u << static_cast<int>(call)); }
};

// Parses the file's text. On failure returns nullopt and sets `*error` to a message naming
// the line.
std::optional<CudaFaultControl> ParseCudaFaultControl(const std::string& text, std::string* error);
std::string FormatCudaFaultControl(const CudaFaultControl& control);

}  // namespace chaosdrill::gpu
