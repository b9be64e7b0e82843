#include "reference/metrics_http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace chaosdrill::reference {
absl::StatusOr<std::pair<int, std::string>> ListenTcp(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", listen, "' is not host:port"));
  }
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("resolving listen address '", listen, "': ", gai_strerror(rc)));
  }
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return ErrnoStatus(absl::StrCat("creating socket for ", listen));
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
    absl::Status s = ErrnoStatus(absl::StrCat("binding ", listen));
    ::freeaddrinfo(res);
    ::close(fd);
    return s;
  }
  ::freeaddrinfo(res);
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  char text[INET6_ADDRSTRLEN] = {};
  int bound_port = 0;
  std::string bound;
  if (addr.ss_family == AF_INET6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof(text));
    bound_port = ntohs(a6->sin6_port);
    bound = absl::StrCat("[", text, "]:", bound_port);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &a4->sin_addr, text, sizeof(text));
    bound_port = ntohs(a4->sin_port);
    bound = absl::StrCat(text, ":", bound_port);
  }
  return std::make_pair(fd, bound);
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, std::function<std::string()> render) {
  ASSIGN_OR_RETURN(auto bound, ListenTcp(listen));
  auto server = std::unique_ptr<MetricsHttpServer>(
      new MetricsHttpServer(std::move(bound.second), std::move(render)));
  ASSIGN_OR_RETURN(server->loop_,
                   AcceptLoop::Start(bound.first, "metrics-http", [raw = server.get()](int conn) {
                     raw->HandleConnection(conn);
                   }));
  return server;
}

MetricsHttpServer::MetricsHttpServer(std::string address, std::function<std::string()> render)
    : address_(std::move(address)), render_(std::move(render)) {}

MetricsHttpServer::~MetricsHttpServer() = default;

void MetricsHttpServer::HandleConnection(int fd) {
  SetIoTimeouts(fd, 2);
  std::string request;
  char buf[2048];
  while (request.find("\r\n\r\n") == std::string::npos &&
         request.find("\n\n") == std::string::npos && request.size() < 16384) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
  }
  const std::string first_line = request.substr(0, request.find_first_of("\r\n"));
  std::vector<std::string> parts = absl::StrSplit(first_line, ' ');
  std::string status = "200 OK", body, type = "text/plain; version=0.0.4; charset=utf-8";
  if (parts.size() < 2 || (parts[0] != "GET" && parts[0] != "HEAD")) {
    status = "405 Method Not Allowed";
    type = "text/plain";
    body = "only GET /metrics is served\n";
  } else if (parts[1] != "/metrics" && parts[1].rfind("/metrics?", 0) != 0) {
    status = "404 Not Found";
    type = "text/plain";
    body = "not found; try /metrics\n";
  } else {
    body = render_();
  }
  std::string response =
      absl::StrCat("HTTP/1.0 ", status, "\r\nContent-Type: ", type,
                   "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n");
  if (parts.empty() || parts[0] != "HEAD") response += body;
  SendAll(fd, response);
}

}  // namespace chaosdrill::reference
