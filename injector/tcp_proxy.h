// A userspace TCP proxy (listen address -> upstream address) whose traffic is shaped by a
// replaceable set of ProxyRules (latency, bandwidth, reset, blackhole, slicer). One
// epoll event loop on one named thread per proxy, non-blocking sockets, no root needed.
//
// Contract:
//  - Rules can be replaced at any time without touching the listener or healthy
//    connections: every read and write consults the current set. Bytes already queued
//    keep the delay they were given when read; a chunk never overtakes an earlier one.
//  - Each (connection, rule) pair rolls the rule's probability once, the first time the
//    connection sees the rule (at accept: a "new" connection; later: an "existing" one).
//  - StopListening() closes the listener (synchronously: the port is free when it
//    returns) but keeps forwarding the open connections until they close; the loop thread
//    exits once there is neither a listener nor a connection (finished()).
//  - Destroying the proxy closes the listener and every connection (FIN) and joins.
//  - The public methods are thread-safe; they block until the loop thread has applied the
//    change. Not for use from the loop thread itself.
//  - Per loop iteration every connection is pumped: O(connections), meant for drills
//    (hundreds of connections), not as a production load balancer.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "injector/proxy_address.h"
#include "injector/proxy_effect.h"

namespace chaosdrill::injector {

struct ProxyRule {
  uint64_t id = 0;  // unique for the life of the process
  std::shared_ptr<const ProxyEffect> effect;
};

struct TcpProxyStats {
  uint64_t accepted = 0;
  uint64_t open = 0;               // connections being forwarded now
  uint64_t reset_by_fault = 0;     // aborted by a reset rule
  uint64_t closed_by_timeout = 0;  // closed by a blackhole timeout
  uint64_t upstream_failures = 0;  // could not connect upstream (client got a RST)
  uint64_t bytes_upstream = 0;     // client -> upstream, written
  uint64_t bytes_downstream = 0;   // upstream -> client, written
};

// Opens a non-blocking listening socket (SO_REUSEADDR) on `address`.
absl::StatusOr<int> OpenProxyListener(const ProxyAddress& address);

class TcpProxy {
 public:
  // Binds `listen` (errors such as EADDRINUSE are returned here) and starts the loop.
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(const ProxyAddress& listen,
                                                         const ProxyAddress& upstream);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  // Replaces the rule set. Connections that already exist see the new rules as
  // "existing" connections (a reset rule targeting existing connections fires now).
  absl::Status SetRules(std::vector<ProxyRule> rules);
  // Closes the listener; open connections keep being forwarded (drain).
  absl::Status StopListening();
  // Opens the listener again (after StopListening) and forwards new connections to
  // `upstream`. FailedPrecondition if the loop has already finished.
  absl::Status Listen(const ProxyAddress& upstream);

  bool listening() const { return listening_.load(); }
  bool finished() const;
  TcpProxyStats stats() const;
  const ProxyAddress& listen_address() const { return listen_; }

 private:
  struct Chunk;
  struct Pipe;
  struct RuleState;
  struct Connection;
  struct Applied;
  struct Command {
    std::function<absl::Status()> fn;
    std::promise<absl::Status> done;
  };

  TcpProxy(const ProxyAddress& listen, const ProxyAddress& upstream, int listen_fd, int epoll_fd,
           int wake_fd);

  absl::Status Call(std::function<absl::Status()> fn);
  void Run();
  void RunCommands();
  void AcceptAll(int64_t now);
  void HandleEvent(uint64_t tag, uint32_t events);
  void PumpAll(int64_t now);
  void Pump(Connection& c, int64_t now);
  Applied Evaluate(Connection& c, int64_t now);
  void Enqueue(Pipe& pipe, const Applied& a, const char* data, size_t n, int64_t now);
  bool WritePipe(Pipe& pipe, int to, const Applied& a, int64_t now);
  void UpdateInterest(Connection& c, bool up_can_read, bool down_can_read);
  void SetInterest(Connection& c, bool upstream_side, uint32_t desired);
  void NoteDeadline(int64_t deadline);
  void Close(Connection& c, bool abort);

  const ProxyAddress listen_;
  const int epoll_fd_;
  const int wake_fd_;
  std::thread thread_;
  std::atomic<bool> listening_{true};
  std::atomic<bool> stop_{false};

  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<Command>> commands_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  TcpProxyStats stats_ ABSL_GUARDED_BY(mu_);

  // Loop thread only.
  ProxyAddress upstream_;
  int listen_fd_;
  int64_t listen_paused_until_ = 0;  // after EMFILE, stop accepting for a moment
  std::vector<ProxyRule> rules_;
  uint64_t rules_generation_ = 0;
  uint64_t next_connection_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Connection>> connections_;
  int64_t next_deadline_ = 0;  // 0: none
  std::mt19937_64 rng_;
};

}  // namespace chaosdrill::injector
