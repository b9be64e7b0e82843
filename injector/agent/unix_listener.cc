#include "injector/agent/unix_listener.h"

#include <fcntl.h>
#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace chaosdrill::agent {
namespace {

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Listen(const std::string& path,
                                                                   std::set<uid_t> extra_uids,
                                                                   RefusalHook on_refusal) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("unix socket path \"", path,
                                                   "\" is empty or longer than ",
                                                   sizeof(addr.sun_path) - 1, " bytes"));
  }
  // Uids other than ours and root can reach the socket only through its file permissions:
  // with unix_allowed_uids the socket is 0666 in a directory others may traverse (0711),
  // and SO_PEERCRED below is the check. Without them it stays 0600 in a 0700 directory.
  bool others = false;
  for (uid_t u : extra_uids) others = others || (u != ::geteuid() && u != 0);
  const mode_t socket_mode = others ? 0666 : 0600;
  std::string dir = Dirname(path);
  if (::mkdir(dir.c_str(), others ? 0711 : 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("creating socket directory ", dir));
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus(absl::StrCat("stat ", dir));
  if (st.st_uid != ::geteuid() || (st.st_mode & 0022) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "socket directory ", dir, " must be owned by uid ", ::geteuid(),
        " and writable by nobody else (mode 0700): another user could replace the socket"));
  }
  if (others && (st.st_mode & 0001) == 0) {
    LogWarn("agent", absl::StrCat("unix_allowed_uids is set but ", dir, " (mode 0",
                                  (st.st_mode >> 6) & 7, (st.st_mode >> 3) & 7, st.st_mode & 7,
                                  ") is not searchable by others: those uids cannot reach the "
                                  "socket; make it 0711 (systemd: RuntimeDirectoryMode=0711)"));
  }
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(absl::StrCat(path, " exists and is not a socket"));
    }
    ::unlink(path.c_str());  // stale socket of a previous agent
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("creating unix socket");
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  mode_t old = ::umask(0177);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::umask(old);
  if (rc != 0 || ::chmod(path.c_str(), socket_mode) != 0 || ::listen(fd, 64) != 0) {
    absl::Status s = ErrnoStatus(absl::StrCat("listening on unix:", path));
    ::close(fd);
    return s;
  }
  int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    ::close(fd);
    return ErrnoStatus("eventfd");
  }
  extra_uids.insert(::geteuid());
  extra_uids.insert(0);
  return std::unique_ptr<UnixListener>(
      new UnixListener(path, fd, wake, std::move(extra_uids), std::move(on_refusal)));
}

UnixListener::~UnixListener() {
  Stop();
  ::close(fd_);
  ::close(wake_fd_);
  ::unlink(path_.c_str());
}

void UnixListener::Start(grpc::Server* server) {
  thread_ = std::thread([this, server] {
    pthread_setname_np(pthread_self(), "agent-uds");
    AcceptLoop(server);
  });
}

void UnixListener::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  thread_.join();
}

void UnixListener::AcceptLoop(grpc::Server* server) {
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      LogError("agent", ErrnoStatus("poll on unix socket").ToString());
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        LogWarn("agent", ErrnoStatus("accept on unix socket").ToString());
      }
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      on_refusal_("unix peer (no credentials)", ErrnoStatus("SO_PEERCRED").ToString());
      ::close(conn);
      continue;
    }
    std::string who = absl::StrCat("uid:", cred.uid, " pid:", cred.pid);
    if (allowed_uids_.count(cred.uid) == 0) {
      on_refusal_(who, absl::StrCat("safety.peer_uid: uid ", cred.uid,
                                    " is not the agent's uid, root, or in unix_allowed_uids"));
      ::close(conn);
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      peers_[conn] = PeerCred{.uid = cred.uid, .pid = cred.pid};
    }
    grpc::AddInsecureChannelFromFd(server, conn);  // takes ownership of conn
  }
}

std::string UnixListener::PeerName(const std::string& grpc_peer) const {
  if (grpc_peer.rfind("fd:", 0) != 0) return "";
  int fd = -1;
  if (!absl::SimpleAtoi(absl::string_view(grpc_peer).substr(3), &fd)) return "";
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(fd);
  if (it == peers_.end()) return "";
  return absl::StrCat("uid:", it->second.uid, " pid:", it->second.pid);
}

}  // namespace chaosdrill::agent
