// The agent's same-node transport: a Unix socket (mode 0600, in a directory owned by the
// agent's uid and not writable by anyone else; 0666 in a 0711 directory when extra uids
// are allowed, since they could not connect otherwise) whose connections are accepted here, not
// by gRPC, so that each peer's credentials can be checked with SO_PEERCRED before gRPC
// sees a byte. Accepted connections are handed to the gRPC server
// (grpc::AddInsecureChannelFromFd); the peer's uid/pid is remembered by fd so RPC handlers
// can name it ("uid:1000 pid:4242") in the audit log (gRPC names such peers "fd:N").
// One named accept thread; Stop() wakes and joins it.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace grpc {
class Server;
}

namespace chaosdrill::agent {

struct PeerCred {
  uid_t uid = 0;
  pid_t pid = 0;
};

class UnixListener {
 public:
  // Called for every refused connection (for the audit log): peer description, reason.
  using RefusalHook = std::function<void(const std::string& peer, const std::string& why)>;

  // Binds and listens on `path`. Uids allowed: the agent's effective uid, root, and
  // `extra_uids`. FailedPrecondition when the directory is unsafe.
  static absl::StatusOr<std::unique_ptr<UnixListener>> Listen(const std::string& path,
                                                              std::set<uid_t> extra_uids,
                                                              RefusalHook on_refusal);
  ~UnixListener();  // Stop(), unlink the socket
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  // Starts the accept thread, handing accepted connections to `server` (started).
  void Start(grpc::Server* server);
  void Stop();

  // "uid:U pid:P" for a gRPC peer string "fd:N" of one of our connections, else "".
  std::string PeerName(const std::string& grpc_peer) const;

 private:
  UnixListener(std::string path, int fd, int wake_fd, std::set<uid_t> uids, RefusalHook hook)
      : path_(std::move(path)),
        fd_(fd),
        wake_fd_(wake_fd),
        allowed_uids_(std::move(uids)),
        on_refusal_(std::move(hook)) {}
  void AcceptLoop(grpc::Server* server);

  const std::string path_;
  const int fd_;
  const int wake_fd_;  // eventfd
  const std::set<uid_t> allowed_uids_;
  const RefusalHook on_refusal_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::map<int, PeerCred> peers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chaosdrill::agent
