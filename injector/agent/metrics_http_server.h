// A tiny HTTP/1.0 server for the agent's Prometheus metrics: answers GET /metrics with
// AgentMetrics::Render() and 404 otherwise, one connection at a time on one named thread,
// with short socket timeouts so a slow client cannot stall it for long. Read-only: it
// exposes counters, never faults or controls (DESIGN §5: no debug endpoints).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/accept_loop.h"
#include "injector/agent/agent_metrics.h"

namespace chaosdrill::agent {

class MetricsHttpServer {
 public:
  // `listen` is "host:port" (IPv4 or IPv6 literal, port 0 = any free one).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen,
                                                                  const AgentMetrics* metrics);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }
  void Stop();

 private:
  MetricsHttpServer(int port, const AgentMetrics* metrics) : port_(port), metrics_(metrics) {}
  void Serve(int conn);

  const int port_;
  const AgentMetrics* const metrics_;
  std::unique_ptr<AcceptLoop> loop_;
};

}  // namespace chaosdrill::agent
