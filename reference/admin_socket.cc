#include "reference/admin_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status.h"

namespace chaosdrill::reference {
namespace {

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("admin socket path '", path,
                                                   "' is empty or longer than ",
                                                   sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AdminSocket>> AdminSocket::Start(const std::string& path,
                                                                Handler handler) {
  ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(
          absl::StrCat("admin socket path ", path, " exists and is not a socket"));
    }
    ::unlink(path.c_str());  // stale socket from a previous run
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("creating admin socket");
  const mode_t old_mask = ::umask(0177);
  const int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::umask(old_mask);
  if (rc != 0 || ::listen(fd, 8) != 0) {
    absl::Status s = ErrnoStatus(absl::StrCat("binding admin socket ", path));
    ::close(fd);
    return s;
  }
  auto socket = std::unique_ptr<AdminSocket>(new AdminSocket(path, std::move(handler)));
  auto loop = AcceptLoop::Start(fd, "admin-socket",
                                [raw = socket.get()](int conn) { raw->HandleConnection(conn); });
  if (!loop.ok()) {
    ::unlink(path.c_str());
    return loop.status();
  }
  socket->loop_ = *std::move(loop);
  return socket;
}

AdminSocket::AdminSocket(std::string path, Handler handler)
    : path_(std::move(path)), handler_(std::move(handler)) {}

AdminSocket::~AdminSocket() {
  loop_.reset();  // joins the thread before the handler goes
  ::unlink(path_.c_str());
}

void AdminSocket::HandleConnection(int fd) {
  SetIoTimeouts(fd, 2);
  std::string buffer;
  char chunk[512];
  for (int lines = 0; lines < 64;) {
    const size_t nl = buffer.find('\n');
    if (nl == std::string::npos) {
      if (buffer.size() > 4096) return;
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      buffer.append(chunk, static_cast<size_t>(n));
      continue;
    }
    std::string line(absl::StripAsciiWhitespace(buffer.substr(0, nl)));
    buffer.erase(0, nl + 1);
    ++lines;
    if (line.empty()) continue;
    if (!SendAll(fd, handler_(line) + "\n")) return;
  }
}

absl::StatusOr<std::string> AdminRequest(const std::string& path, const std::string& line) {
  ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("creating admin client socket");
  SetIoTimeouts(fd, 5);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat("connecting to admin socket ", path, ": ", std::strerror(errno)));
    ::close(fd);
    return s;
  }
  std::string answer;
  if (!SendAll(fd, line + "\n")) {
    absl::Status s = ErrnoStatus(absl::StrCat("sending to admin socket ", path));
    ::close(fd);
    return s;
  }
  char chunk[512];
  while (answer.find('\n') == std::string::npos) {
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t nl = answer.find('\n');
  if (nl == std::string::npos) {
    return absl::UnavailableError(absl::StrCat("admin socket ", path, " sent no answer"));
  }
  return answer.substr(0, nl);
}

}  // namespace chaosdrill::reference
