#include "reference/admin_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
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

void SetTimeouts(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
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
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(fd);
    ::unlink(path.c_str());
    return ErrnoStatus("creating the admin socket's wake pipe");
  }
  return std::unique_ptr<AdminSocket>(
      new AdminSocket(fd, wake[0], wake[1], path, std::move(handler)));
}

AdminSocket::AdminSocket(int listen_fd, int wake_read, int wake_write, std::string path,
                         Handler handler)
    : listen_fd_(listen_fd),
      wake_read_(wake_read),
      wake_write_(wake_write),
      path_(std::move(path)),
      handler_(std::move(handler)) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "admin-socket");
    Serve();
  });
}

AdminSocket::~AdminSocket() {
  const char b = 'x';
  (void)!::write(wake_write_, &b, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_read_);
  ::close(wake_write_);
  ::unlink(path_.c_str());
}

void AdminSocket::Serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents & POLLIN) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      HandleConnection(fd);
      ::close(fd);
    }
  }
}

void AdminSocket::HandleConnection(int fd) {
  SetTimeouts(fd, 2);
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
    if (!WriteAll(fd, handler_(line) + "\n")) return;
  }
}

absl::StatusOr<std::string> AdminRequest(const std::string& path, const std::string& line) {
  ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("creating admin client socket");
  SetTimeouts(fd, 5);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat("connecting to admin socket ", path, ": ", std::strerror(errno)));
    ::close(fd);
    return s;
  }
  std::string answer;
  if (!WriteAll(fd, line + "\n")) {
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
