#include "gpu_faults/cuda_fault_interposer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace chaosdrill::gpu {
namespace {

constexpr int kCudaErrorUnknown = 999;

// Reads a small file whole; false on any error.
bool ReadSmallFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > (1 << 16)) break;  // a control file is a few lines
  }
  close(fd);
  return true;
}

uint64_t FreshSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(getpid());
}

}  // namespace

int64_t CudaFaultInterposer::MonotonicNowNs() {
  // The coarse clock (a few ms resolution) is always served from the vDSO, and is plenty
  // for a recheck interval of ~100 ms; this runs on every interposed call.
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

CudaFaultInterposer::CudaFaultInterposer(CudaRuntimeTable real, InterposerOptions options,
                                         NowFn now)
    : real_(real), options_(std::move(options)), now_(now) {}

void CudaFaultInterposer::RefreshLocked(int64_t now) {
  if (now < next_check_ns_) return;
  next_check_ns_ = now + options_.recheck_ns;
  if (options_.control_path.empty()) return;
  struct stat st;
  if (stat(options_.control_path.c_str(), &st) != 0) {
    file_id_.reset();
    control_.reset();
    stats_.last_control_error.clear();
    return;
  }
  FileId id{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
            static_cast<uint64_t>(st.st_size),
            static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  if (file_id_ && *file_id_ == id) return;
  file_id_ = id;
  control_.reset();
  ++stats_.control_reads;
  std::string text;
  if (!ReadSmallFile(options_.control_path, &text)) {
    // Removed between stat and open: off; look again next time.
    file_id_.reset();
    return;
  }
  std::string error;
  control_ = ParseCudaFaultControl(text, &error);
  if (!control_) {
    // A bad file fails nothing; say so once per version of the file.
    stats_.last_control_error = error;
    std::fprintf(stderr, "chaosdrill cuda fault interposer: ignoring %s: %s\n",
                 options_.control_path.c_str(), error.c_str());
    return;
  }
  stats_.last_control_error.clear();
  rng_.seed(control_->seed != 0 ? control_->seed : FreshSeed());
}

std::optional<int> CudaFaultInterposer::Decide(CudaCall call) {
  std::lock_guard<std::mutex> lock(mu_);
  int index = static_cast<int>(call);
  ++stats_.calls[index];
  RefreshLocked(now_());
  if (!control_ || !control_->Matches(call)) return std::nullopt;
  double p = control_->probability;
  if (p <= 0) return std::nullopt;
  if (p < 1) {
    // 53 random bits -> [0, 1), the same on every platform for a given seed.
    double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    if (u >= p) return std::nullopt;
  }
  ++stats_.injected[index];
  return control_->error;
}

int CudaFaultInterposer::Malloc(void** ptr, size_t size) {
  if (std::optional<int> err = Decide(CudaCall::kMalloc)) {
    if (ptr != nullptr) *ptr = nullptr;
    return *err;
  }
  return real_.malloc ? real_.malloc(ptr, size) : kCudaErrorUnknown;
}

int CudaFaultInterposer::Memcpy(void* dst, const void* src, size_t count, int kind) {
  if (std::optional<int> err = Decide(CudaCall::kMemcpy)) return *err;
  return real_.memcpy ? real_.memcpy(dst, src, count, kind) : kCudaErrorUnknown;
}

int CudaFaultInterposer::MemcpyAsync(void* dst, const void* src, size_t count, int kind,
                                     void* stream) {
  if (std::optional<int> err = Decide(CudaCall::kMemcpyAsync)) return *err;
  return real_.memcpy_async ? real_.memcpy_async(dst, src, count, kind, stream) : kCudaErrorUnknown;
}

int CudaFaultInterposer::LaunchKernel(const void* func, Dim3 grid, Dim3 block, void** args,
                                      size_t shared_mem, void* stream) {
  if (std::optional<int> err = Decide(CudaCall::kLaunchKernel)) return *err;
  return real_.launch_kernel ? real_.launch_kernel(func, grid, block, args, shared_mem, stream)
                             : kCudaErrorUnknown;
}

InterposerStats CudaFaultInterposer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace chaosdrill::gpu
