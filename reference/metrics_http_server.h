// MetricsHttpServer: a minimal HTTP/1.0 server for Prometheus scrapes. GET /metrics
// answers the text `render()` returns (Content-Type text/plain; version=0.0.4); any other
// path is 404. One named thread serves one connection at a time, each with a 2 s I/O
// timeout, which is plenty for a scrape endpoint and keeps it bounded. Reusable by any
// component that owns a Metrics registry.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/accept_loop.h"

namespace chaosdrill::reference {

class MetricsHttpServer {
 public:
  // Binds `listen` ("host:port", port 0 = pick one) and starts serving.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, std::function<std::string()> render);
  ~MetricsHttpServer();  // stops the thread and closes the socket
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  const std::string& address() const { return address_; }  // bound "host:port"

 private:
  MetricsHttpServer(std::string address, std::function<std::string()> render);
  void HandleConnection(int fd);

  const std::string address_;
  const std::function<std::string()> render_;
  std::unique_ptr<AcceptLoop> loop_;  // last: stopped first
};

// Binds a listening TCP socket on "host:port" (IPv4, IPv6 in brackets, or a name) and
// returns its fd and the bound "host:port". Shared by our small socket servers.
absl::StatusOr<std::pair<int, std::string>> ListenTcp(const std::string& listen);

}  // namespace chaosdrill::reference
