#include "injector/agent/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/status.h"

namespace chaosdrill::agent {

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  if (path.empty()) return std::unique_ptr<AuditLog>(new AuditLog(-1));
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(absl::StrCat("opening audit log ", path));
  return std::unique_ptr<AuditLog>(new AuditLog(fd));
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditLog::Record(absl::string_view rpc, absl::string_view peer, const nlohmann::json& request,
                      const absl::Status& outcome) {
  if (fd_ < 0) return;
  nlohmann::json line = {
      {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone())},
      {"rpc", std::string(rpc)},
      {"peer", std::string(peer)},
      {"request", request},
      {"outcome", absl::StatusCodeToString(outcome.code())},
  };
  if (!outcome.ok()) line["message"] = std::string(outcome.message());
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  absl::MutexLock lock(&mu_);
  // One write(2) per line on an O_APPEND fd: lines never interleave.
  if (::write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    LogWarn("agent", absl::StrCat("audit log write failed: ", ErrnoStatus("write").message()));
  }
}

}  // namespace chaosdrill::agent
