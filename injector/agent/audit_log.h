// The agent's audit log (DESIGN §5, "Audit"): one JSON line per RPC, refused ones
// included, appended to a file opened O_APPEND:
//   {"time":"2026-11-23T18:00:00.123Z","rpc":"Inject","peer":"CN=chaosdrill-runner,O=..",
//    "request":{...},"outcome":"OK"|"PERMISSION_DENIED","message":"..."}
// Thread-safe. A write failure is logged, never fails the RPC (the journal, not the audit
// log, is what keeps faults safe).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace chaosdrill::agent {

class AuditLog {
 public:
  // Opens (creates 0600) `path` for appending; an empty path gives a log that discards.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  void Record(absl::string_view rpc, absl::string_view peer, const nlohmann::json& request,
              const absl::Status& outcome);

 private:
  explicit AuditLog(int fd) : fd_(fd) {}
  absl::Mutex mu_;
  const int fd_;  // -1: discard
};

}  // namespace chaosdrill::agent
