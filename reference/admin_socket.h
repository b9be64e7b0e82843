// AdminSocket: a local control channel on a Unix stream socket with a one-line-per-request
// text protocol. Each line received is passed to the handler and its answer is written
// back followed by "\n". The replica's handler understands (docs/reference-inference.md):
//   degrade <none|wrong-answers|errors|slow>   -> "ok degrade=<mode>" or "error <why>"
//   status                                      -> "ok ready=<0|1> degrade=<mode> ..."
// One named thread serves one connection at a time (2 s I/O timeout, at most 64 lines per
// connection). The socket file is created mode 0600 and removed on destruction; a stale
// socket file at the path is replaced, any other file is an error (AlreadyExists).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/accept_loop.h"

namespace chaosdrill::reference {

class AdminSocket {
 public:
  using Handler = std::function<std::string(const std::string& line)>;

  static absl::StatusOr<std::unique_ptr<AdminSocket>> Start(const std::string& path,
                                                            Handler handler);
  ~AdminSocket();
  AdminSocket(const AdminSocket&) = delete;
  AdminSocket& operator=(const AdminSocket&) = delete;

  const std::string& path() const { return path_; }

 private:
  AdminSocket(std::string path, Handler handler);
  void HandleConnection(int fd);

  const std::string path_;
  const Handler handler_;
  std::unique_ptr<AcceptLoop> loop_;  // last: stopped first
};

// Client side: connects to the admin socket at `path`, sends `line`, returns the answer
// line (without "\n"). Unavailable when nothing listens there.
absl::StatusOr<std::string> AdminRequest(const std::string& path, const std::string& line);

}  // namespace chaosdrill::reference
