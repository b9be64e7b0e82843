#include "gpu_faults/cuda_errors_fault.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status.h"
#include "injector/fault_registry.h"
#include "injector/gpu_kinds.h"

namespace chaosdrill::injector {
namespace {

std::string NewOwnerToken() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return absl::StrCat("chaosdrill-", absl::Hex(v, absl::kZeroPad16));
}

std::string SelfDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string self(buf, static_cast<size_t>(n));
  return self.substr(0, self.rfind('/'));
}

// The file's text, NotFound when absent.
absl::StatusOr<std::string> ReadControl(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    return ErrnoStatus(absl::StrCat("reading ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes `text` next to `path` and renames it over `path`, so readers see the old file or
// the new one, never a partial one.
absl::Status WriteAtomically(const std::string& path, const std::string& text) {
  std::string tmp = absl::StrCat(path, ".chaosdrill-tmp-", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(absl::StrCat("creating ", tmp));
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status st = ErrnoStatus(absl::StrCat("writing ", tmp));
      close(fd);
      unlink(tmp.c_str());
      return st;
    }
    off += static_cast<size_t>(n);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = ErrnoStatus(absl::StrCat("renaming ", tmp, " to ", path));
    unlink(tmp.c_str());
    return st;
  }
  return absl::OkStatus();
}

std::string CallNames(const gpu::CudaFaultControl& control) {
  std::vector<std::string> names;
  for (int i = 0; i < static_cast<int>(gpu::CudaCall::kCount); ++i) {
    if (control.Matches(static_cast<gpu::CudaCall>(i))) {
      names.push_back(gpu::CudaCallName(static_cast<gpu::CudaCall>(i)));
    }
  }
  return absl::StrJoin(names, ",");
}

}  // namespace

std::string CudaFaultLibraryPath() {
  if (const char* env = std::getenv("CHAOSDRILL_CUDA_FAULT_LIB"); env != nullptr && *env) {
    return access(env, R_OK) == 0 ? env : "";
  }
  std::string next_to_us = absl::StrCat(SelfDir(), "/", kCudaFaultLibraryName);
  if (access(next_to_us.c_str(), R_OK) == 0) return next_to_us;
#ifdef CHAOSDRILL_CUDA_FAULT_LIB_BUILD_PATH
  if (access(CHAOSDRILL_CUDA_FAULT_LIB_BUILD_PATH, R_OK) == 0) {
    return CHAOSDRILL_CUDA_FAULT_LIB_BUILD_PATH;
  }
#endif
  return "";
}

CudaErrorsFault::CudaErrorsFault(CudaErrorsSettings settings) : settings_(std::move(settings)) {
  settings_.control.owner = NewOwnerToken();
}

absl::Status CudaErrorsFault::Inject() {
  const std::string& path = settings_.control_path;
  std::string text = gpu::FormatCudaFaultControl(settings_.control);
  RETURN_IF_ERROR(Annotate(WriteAtomically(path, text), "gpu.cuda_errors"));
  // Verify: what a target would read back is exactly what we meant.
  absl::StatusOr<std::string> back = ReadControl(path);
  std::string parse_error;
  if (!back.ok() || !gpu::ParseCudaFaultControl(*back, &parse_error) || *back != text) {
    unlink(path.c_str());
    return absl::InternalError(absl::StrCat("gpu.cuda_errors: ", path,
                                            " did not read back as written ",
                                            back.ok() ? parse_error : back.status().message()));
  }
  LogInfo("gpu.cuda_errors", Describe());
  return absl::OkStatus();
}

absl::Status CudaErrorsFault::Revert() {
  return RemoveCudaFaultControl(settings_.control_path, settings_.control.owner);
}

nlohmann::json CudaErrorsFault::RevertRecord() const {
  return {{"kind", GpuCudaErrorsInfo().kind},
          {"control", settings_.control_path},
          {"owner", settings_.control.owner}};
}

std::string CudaErrorsFault::Describe() const {
  return absl::StrCat("cuda errors: ", CallNames(settings_.control), " fail with ",
                      gpu::CudaErrorName(settings_.control.error),
                      " at p=", settings_.control.probability, " in processes reading ",
                      settings_.control_path);
}

absl::Status RemoveCudaFaultControl(const std::string& path, const std::string& owner) {
  absl::StatusOr<std::string> text = ReadControl(path);
  if (absl::IsNotFound(text.status())) return absl::OkStatus();
  RETURN_IF_ERROR(text.status());
  std::string error;
  std::optional<gpu::CudaFaultControl> control = gpu::ParseCudaFaultControl(*text, &error);
  if (!control || control->owner != owner) {
    LogWarn("gpu.cuda_errors", absl::StrCat("not removing ", path, ": written by someone else"));
    return absl::OkStatus();
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(absl::StrCat("gpu.cuda_errors: removing ", path));
  }
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    return absl::InternalError(absl::StrCat("gpu.cuda_errors: ", path, " still there"));
  }
  return absl::OkStatus();
}

class CudaErrorsFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override { return GpuCudaErrorsInfo(); }
  // Needs no device here (the failures happen in the target process), only the library the
  // target must be started with.
  PreflightResult Preflight() const override {
    if (CudaFaultLibraryPath().empty()) {
      return {.available = false,
              .reason = absl::StrCat(kCudaFaultLibraryName, " not found"),
              .fix = "install it next to the chaosdrill binary or set CHAOSDRILL_CUDA_FAULT_LIB"};
    }
    return {.available = true};
  }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    ASSIGN_OR_RETURN(CudaErrorsSettings settings, ParseCudaErrorsSettings(spec));
    return std::make_unique<CudaErrorsFault>(std::move(settings));
  }
  absl::Status RevertFromRecord(const nlohmann::json& record) const override {
    try {
      return RemoveCudaFaultControl(record.at("control").get<std::string>(),
                                    record.at("owner").get<std::string>());
    } catch (const nlohmann::json::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("gpu.cuda_errors revert record: ", e.what()));
    }
  }
};

CHAOSDRILL_REGISTER_FAULT(CudaErrorsFactory)

}  // namespace chaosdrill::injector
