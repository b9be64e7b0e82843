// proxy.* faults end to end on loopback: a real upstream server on an ephemeral port, the
// real proxy (ProxyManager::Global(), as the agent uses it), real client sockets. Every
// read has a timeout, so a broken proxy fails a test instead of hanging it. Timing bounds
// are generous for a loaded 2-core machine; the measurements are printed (run with -s).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fault_spec.h"
#include "injector/fault_registry.h"
#include "injector/proxy_fault.h"
#include "injector/proxy_manager.h"

namespace chaosdrill::injector {
namespace {

using Clock = std::chrono::steady_clock;

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A free loopback port: bind to 0, read it back, close. (Racy in theory; the proxy binds
// it within milliseconds, and ports are not reused that fast.)
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string Loopback(int port) { return absl::StrCat("127.0.0.1:", port); }

// The upstream: echoes what it reads, or (source mode) sends `source_bytes` of a pattern
// and closes. One thread per connection; the destructor shuts everything down and joins.
class TestServer {
 public:
  explicit TestServer(size_t source_bytes = 0) : source_bytes_(source_bytes) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(listen_fd_, 64) == 0);
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~TestServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    close(listen_fd_);
    std::vector<std::thread> workers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
      workers.swap(workers_);
    }
    for (std::thread& t : workers) t.join();
    for (int fd : fds_) close(fd);
  }
  int port() const { return port_; }
  std::string address() const { return Loopback(port_); }
  static char PatternByte(size_t i) { return static_cast<char>('a' + (i * 7 + i / 251) % 26); }

 private:
  void AcceptLoop() {
    while (true) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      workers_.emplace_back([this, fd] { source_bytes_ > 0 ? Source(fd) : Echo(fd); });
    }
  }
  void Echo(int fd) {
    char buf[65536];
    while (true) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      if (send(fd, buf, n, MSG_NOSIGNAL) != n) break;
    }
    shutdown(fd, SHUT_WR);
  }
  void Source(int fd) {
    std::string data(source_bytes_, 0);
    for (size_t i = 0; i < data.size(); ++i) data[i] = PatternByte(i);
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += n;
    }
    shutdown(fd, SHUT_WR);
  }

  const size_t source_bytes_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> workers_;
};

// A client socket with read and write timeouts, closed on destruction.
class Client {
 public:
  explicit Client(int port, int timeout_ms = 5000) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    connect_errno_ =
        connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 ? 0 : errno;
  }
  ~Client() { close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  int fd() const { return fd_; }
  bool connected() const { return connect_errno_ == 0; }
  int connect_errno() const { return connect_errno_; }
  void SetReadTimeout(int timeout_ms) {
    timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  bool Send(const std::string& data) {
    return send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // Reads exactly n bytes; "" on EOF, error or timeout (errno tells which).
  std::string ReadExactly(size_t n) {
    std::string out(n, 0);
    size_t got = 0;
    while (got < n) {
      ssize_t r = recv(fd_, out.data() + got, n - got, 0);
      if (r <= 0) return "";
      got += r;
    }
    return out;
  }
  // Sends one byte and waits for its echo; milliseconds, or -1.
  double RoundTripMillis() {
    auto start = Clock::now();
    if (!Send("x") || ReadExactly(1) != "x") return -1;
    return MillisSince(start);
  }

 private:
  int fd_ = -1;
  int connect_errno_ = 0;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

FaultPtr MakeFault(const std::string& kind, std::map<std::string, std::string> params) {
  RegisterBuiltinFaults();
  auto factory = FaultRegistry::Global().Find(kind);
  REQUIRE(factory.ok());
  FaultSpec spec{.kind = kind, .params = std::move(params)};
  auto fault = (*factory)->Create(spec);
  INFO(fault.status().ToString());
  REQUIRE(fault.ok());
  return *std::move(fault);
}

// Reverts on scope exit, so a failed REQUIRE leaves no listener behind.
class Applied {
 public:
  explicit Applied(FaultPtr fault) : fault_(std::move(fault)) {
    absl::Status status = fault_->Inject();
    INFO(status.ToString());
    REQUIRE(status.ok());
  }
  ~Applied() { (void)fault_->Revert(); }
  absl::Status Revert() { return fault_->Revert(); }
  Fault& fault() { return *fault_; }

 private:
  FaultPtr fault_;
};

// Waits (bounded) until a read on the client fails or ends; returns errno, 0 for EOF, or
// -1 if data arrived. Callers must not write first: a write after the RST would consume
// the pending ECONNRESET, and the read would then see a plain EOF.
int WaitForReadFailure(Client& client, int timeout_ms) {
  pollfd p = {.fd = client.fd(), .events = POLLIN};
  if (poll(&p, 1, timeout_ms) <= 0) return ETIMEDOUT;
  char c;
  ssize_t n = recv(client.fd(), &c, 1, 0);
  if (n < 0) return errno;
  return n == 0 ? 0 : -1;
}

ProxyAddress Address(int port) { return *ParseProxyAddress("listen", Loopback(port)); }

TEST_CASE("every proxy kind is registered and takes listen and upstream", "[proxy]") {
  RegisterBuiltinFaults();
  for (const char* kind : {"proxy.latency", "proxy.jitter", "proxy.bandwidth", "proxy.reset",
                           "proxy.blackhole", "proxy.slicer"}) {
    INFO(kind);
    auto factory = FaultRegistry::Global().Find(kind);
    REQUIRE(factory.ok());
    const FaultKindInfo& info = (*factory)->info();
    REQUIRE(info.Find("listen") != nullptr);
    CHECK(info.Find("listen")->required);
    REQUIRE(info.Find("upstream") != nullptr);
    CHECK(info.Find("probability") != nullptr);
    CHECK((*factory)->Preflight().available);
  }
}

// The fastest of `n` round trips. Scheduler noise on a loaded machine only ever adds time
// to a round trip, never removes any, so the fastest sample is the one closest to what the
// path itself costs; the median is printed beside it.
double FastestRoundTrip(Client& client, int n, double* median = nullptr) {
  std::vector<double> samples;
  for (int i = 0; i < n; ++i) {
    double ms = client.RoundTripMillis();
    REQUIRE(ms >= 0);
    samples.push_back(ms);
  }
  if (median != nullptr) *median = Median(samples);
  return *std::min_element(samples.begin(), samples.end());
}

TEST_CASE("proxy.latency adds 100ms to a round trip", "[proxy]") {
  // added = (fastest RTT through the proxy with the fault) - (fastest direct RTT), so the
  // proxy's own forwarding cost counts against the +-5 ms as well. The proxy holds each
  // chunk until its release time, which epoll_wait's millisecond timeout rounds up: the
  // added time is 100..101 ms plus the forwarding hop (tens of microseconds on loopback).
  // Fastest-of-N rather than the median, because other work on a 2-core machine delays
  // individual wake-ups by milliseconds; it would have to delay all N samples by more
  // than 4 ms to push the fastest out of bounds, and it cannot make one shorter than the
  // fault (the lower bound is a real check of the mechanism).
  TestServer server;
  int port = FreePort();
  Client direct(server.port());
  REQUIRE(direct.connected());
  double direct_median = 0;
  double baseline = FastestRoundTrip(direct, 21, &direct_median);

  Applied passthrough(
      MakeFault("proxy.latency",
                {{"listen", Loopback(port)}, {"upstream", server.address()}, {"latency", "0"}}));
  Client via_proxy(port);
  REQUIRE(via_proxy.connected());
  double overhead = FastestRoundTrip(via_proxy, 21) - baseline;

  Applied latency(MakeFault(
      "proxy.latency",
      {{"listen", Loopback(port)}, {"upstream", server.address()}, {"latency", "100ms"}}));
  double median = 0;
  double added = FastestRoundTrip(via_proxy, 21, &median) - baseline;
  std::printf(
      "proxy.latency: direct RTT fastest %.3f ms (median %.3f), proxy overhead %.3f ms, added "
      "%.3f ms (median %.3f; target 100 +- 5 ms)\n",
      baseline, direct_median, overhead, added, median - baseline);
  CHECK(added >= 95);
  CHECK(added <= 105);

  // direction=both adds it on the way up as well.
  REQUIRE(latency.Revert().ok());
  Applied both(MakeFault("proxy.latency", {{"listen", Loopback(port)},
                                           {"upstream", server.address()},
                                           {"latency", "50ms"},
                                           {"direction", "both"}}));
  double added_both = FastestRoundTrip(via_proxy, 11, &median) - baseline;
  std::printf("proxy.latency 50ms both: added %.3f ms (median %.3f; target 100 +- 5 ms)\n",
              added_both, median - baseline);
  CHECK(added_both >= 95);
  CHECK(added_both <= 105);
}

TEST_CASE("proxy.jitter spreads delays around the latency", "[proxy]") {
  TestServer server;
  int port = FreePort();
  Applied jitter(MakeFault("proxy.jitter", {{"listen", Loopback(port)},
                                            {"upstream", server.address()},
                                            {"latency", "40ms"},
                                            {"jitter", "20ms"}}));
  Client client(port);
  REQUIRE(client.connected());
  std::vector<double> samples;
  for (int i = 0; i < 30; ++i) samples.push_back(client.RoundTripMillis());
  std::sort(samples.begin(), samples.end());
  std::printf("proxy.jitter 40ms +-20ms: min %.1f median %.1f max %.1f ms\n", samples.front(),
              samples[15], samples.back());
  CHECK(samples.front() >= 19);                   // never below latency - jitter
  CHECK(samples.back() - samples.front() >= 10);  // 30 uniform draws over 40 ms spread out
  CHECK(samples[15] >= 25);
  CHECK(samples[15] <= 70);
}

TEST_CASE("proxy.bandwidth limits a bulk transfer to the rate within 10%", "[proxy]") {
  constexpr size_t kBytes = 2'000'000;
  TestServer server(kBytes);
  int port = FreePort();
  Applied bandwidth(MakeFault("proxy.bandwidth", {{"listen", Loopback(port)},
                                                  {"upstream", server.address()},
                                                  {"rate", "8Mbit"},
                                                  {"direction", "downstream"}}));
  Client client(port, 20'000);
  REQUIRE(client.connected());
  std::string buf(65536, 0);
  size_t total = 0, first = 0;
  Clock::time_point start, end;
  bool intact = true;
  while (true) {
    ssize_t n = recv(client.fd(), buf.data(), buf.size(), 0);
    if (n <= 0) break;
    if (total == 0) {
      start = Clock::now();
      first = n;
    }
    for (ssize_t i = 0; i < n && intact; ++i) intact = buf[i] == TestServer::PatternByte(total + i);
    total += n;
    end = Clock::now();
  }
  REQUIRE(total == kBytes);
  CHECK(intact);
  double seconds = std::chrono::duration<double>(end - start).count();
  double rate = static_cast<double>(total - first) / seconds;
  std::printf("proxy.bandwidth 8Mbit (1000000 B/s): measured %.0f B/s over %.2f s (%+.1f%%)\n",
              rate, seconds, (rate / 1e6 - 1) * 100);
  CHECK(rate >= 0.9e6);
  CHECK(rate <= 1.1e6);
}

TEST_CASE("a pass-through proxy carries a bulk echo in both directions at once", "[proxy]") {
  // Both directions fill the proxy's queues: a stall in re-arming reads after a full
  // queue drains shows up here as a read timeout.
  constexpr size_t kBytes = 16 << 20;
  TestServer server;
  int port = FreePort();
  Applied pass(
      MakeFault("proxy.latency",
                {{"listen", Loopback(port)}, {"upstream", server.address()}, {"latency", "0"}}));
  Client client(port, 20'000);
  REQUIRE(client.connected());
  auto start = Clock::now();
  std::thread writer([&] {
    std::string block(65536, 0);
    for (size_t sent = 0; sent < kBytes; sent += block.size()) {
      for (size_t i = 0; i < block.size(); ++i) block[i] = TestServer::PatternByte(sent + i);
      if (!client.Send(block)) return;
    }
  });
  std::string buf(65536, 0);
  size_t total = 0;
  bool intact = true;
  while (total < kBytes) {
    ssize_t n = recv(client.fd(), buf.data(), buf.size(), 0);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n && intact; ++i) intact = buf[i] == TestServer::PatternByte(total + i);
    total += n;
  }
  writer.join();
  double seconds = MillisSince(start) / 1000;
  std::printf("pass-through proxy: echoed %zu bytes in %.2f s (%.0f MB/s each way)\n", total,
              seconds, total / seconds / 1e6);
  CHECK(total == kBytes);
  CHECK(intact);
}

TEST_CASE("proxy.reset resets new connections with RST", "[proxy]") {
  TestServer server;
  int port = FreePort();
  Applied reset(
      MakeFault("proxy.reset",
                {{"listen", Loopback(port)}, {"upstream", server.address()}, {"target", "new"}}));
  Client client(port);
  REQUIRE(client.connected());  // the kernel completes the handshake; the proxy then resets
  CHECK(WaitForReadFailure(client, 5000) == ECONNRESET);
  auto stats = ProxyManager::Global().Stats(Address(port));
  REQUIRE(stats.has_value());
  CHECK(stats->reset_by_fault >= 1);
}

TEST_CASE("proxy.reset target=existing resets open connections and spares new ones", "[proxy]") {
  TestServer server;
  int port = FreePort();
  Applied base(
      MakeFault("proxy.latency",
                {{"listen", Loopback(port)}, {"upstream", server.address()}, {"latency", "0"}}));
  Client old_client(port);
  REQUIRE(old_client.RoundTripMillis() >= 0);
  Applied reset(MakeFault(
      "proxy.reset",
      {{"listen", Loopback(port)}, {"upstream", server.address()}, {"target", "existing"}}));
  CHECK(WaitForReadFailure(old_client, 5000) == ECONNRESET);
  Client new_client(port);
  CHECK(new_client.RoundTripMillis() >= 0);
}

TEST_CASE("proxy.reset after N bytes lets N bytes through first", "[proxy]") {
  TestServer server;
  int port = FreePort();
  Applied reset(
      MakeFault("proxy.reset",
                {{"listen", Loopback(port)}, {"upstream", server.address()}, {"after", "1000"}}));
  Client client(port);
  std::string chunk(200, 'z');
  int round_trips = 0;
  while (round_trips < 20 && client.Send(chunk) && client.ReadExactly(chunk.size()) == chunk) {
    ++round_trips;
  }
  // 200 B up + 200 B down per round trip: the 3rd round trip crosses 1000 B.
  CHECK(round_trips >= 2);
  CHECK(round_trips <= 3);
}

TEST_CASE("proxy.reset with probability 0 affects no connection", "[proxy]") {
  TestServer server;
  int port = FreePort();
  Applied reset(MakeFault(
      "proxy.reset",
      {{"listen", Loopback(port)}, {"upstream", server.address()}, {"probability", "0"}}));
  for (int i = 0; i < 5; ++i) {
    Client client(port);
    CHECK(client.RoundTripMillis() >= 0);
  }
}

TEST_CASE("proxy.blackhole holds a connection silently and lets it flow after revert", "[proxy]") {
  TestServer server;
  int port = FreePort();
  Applied blackhole(
      MakeFault("proxy.blackhole", {{"listen", Loopback(port)}, {"upstream", server.address()}}));
  Client client(port);
  REQUIRE(client.connected());
  REQUIRE(client.Send("ping"));
  client.SetReadTimeout(500);
  char c;
  errno = 0;
  ssize_t n = recv(client.fd(), &c, 1, 0);
  CHECK(n == -1);
  CHECK((errno == EAGAIN || errno == EWOULDBLOCK));  // no bytes, no close: a hung peer
  // Reverting the last fault closes the listener; the held connection drains.
  REQUIRE(blackhole.Revert().ok());
  client.SetReadTimeout(5000);
  CHECK(client.ReadExactly(4) == "ping");
  Client refused(port);
  CHECK(refused.connect_errno() == ECONNREFUSED);
}

TEST_CASE("proxy.blackhole with a timeout closes the held connection", "[proxy]") {
  TestServer server;
  int port = FreePort();
  Applied blackhole(MakeFault(
      "proxy.blackhole",
      {{"listen", Loopback(port)}, {"upstream", server.address()}, {"timeout", "200ms"}}));
  Client client(port);
  REQUIRE(client.Send("ping"));
  auto start = Clock::now();
  CHECK(WaitForReadFailure(client, 5000) == 0);  // EOF, no bytes
  double ms = MillisSince(start);
  std::printf("proxy.blackhole timeout 200ms: closed after %.1f ms\n", ms);
  CHECK(ms >= 150);
}

TEST_CASE("proxy.slicer delivers intact data in many small reads", "[proxy]") {
  constexpr size_t kBytes = 4096;
  TestServer server(kBytes);
  int port = FreePort();
  Applied slicer(MakeFault("proxy.slicer", {{"listen", Loopback(port)},
                                            {"upstream", server.address()},
                                            {"size", "64"},
                                            {"variation", "16"},
                                            {"delay", "2ms"}}));
  Client client(port);
  std::string data;
  int reads = 0;
  size_t largest = 0;
  char buf[65536];
  while (true) {
    ssize_t n = recv(client.fd(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    ++reads;
    largest = std::max(largest, static_cast<size_t>(n));
    data.append(buf, n);
  }
  REQUIRE(data.size() == kBytes);
  bool intact = true;
  for (size_t i = 0; i < kBytes && intact; ++i) intact = data[i] == TestServer::PatternByte(i);
  CHECK(intact);
  std::printf("proxy.slicer 64B +-16B every 2ms: %zu bytes in %d reads (largest %zu)\n",
              data.size(), reads, largest);
  CHECK(reads >= 16);  // ~64 slices; a descheduled reader may merge some
}

TEST_CASE("a healthy connection survives adding and removing faults", "[proxy]") {
  TestServer server;
  int port = FreePort();
  auto base =
      MakeFault("proxy.latency",
                {{"listen", Loopback(port)}, {"upstream", server.address()}, {"latency", "0"}});
  REQUIRE(base->Inject().ok());
  Client healthy(port);
  REQUIRE(healthy.RoundTripMillis() >= 0);
  std::string payload(10'000, 'q');
  auto exchange = [&] {
    return healthy.Send(payload) && healthy.ReadExactly(payload.size()) == payload;
  };

  for (const auto& [kind, params] :
       std::vector<std::pair<std::string, std::map<std::string, std::string>>>{
           {"proxy.latency", {{"latency", "20ms"}}},
           {"proxy.bandwidth", {{"rate", "1MB/s"}}},
           {"proxy.slicer", {{"size", "1KiB"}, {"delay", "1ms"}}},
           {"proxy.reset", {{"target", "new"}}},
       }) {
    INFO(kind);
    auto params_with_address = params;
    params_with_address["listen"] = Loopback(port);
    params_with_address["upstream"] = server.address();
    auto fault = MakeFault(kind, params_with_address);
    REQUIRE(fault->Inject().ok());
    CHECK(exchange());
    REQUIRE(fault->Revert().ok());
    CHECK(exchange());
  }
  CHECK(ProxyManager::Global().Listening(Address(port)));

  // The last fault goes: the listener closes, the open connection keeps flowing.
  REQUIRE(base->Revert().ok());
  CHECK_FALSE(ProxyManager::Global().Listening(Address(port)));
  {
    Client refused(port);
    CHECK(refused.connect_errno() == ECONNREFUSED);
  }
  CHECK(exchange());

  // A new fault on the same address listens again; new and old connections both work.
  auto again =
      MakeFault("proxy.latency",
                {{"listen", Loopback(port)}, {"upstream", server.address()}, {"latency", "1ms"}});
  REQUIRE(again->Inject().ok());
  Client fresh(port);
  CHECK(fresh.RoundTripMillis() >= 0);
  CHECK(exchange());
  REQUIRE(again->Revert().ok());
  auto stats = ProxyManager::Global().Stats(Address(port));
  REQUIRE(stats.has_value());
  CHECK(stats->reset_by_fault == 0);
}

TEST_CASE("a fault naming another upstream on a busy listen address is refused", "[proxy]") {
  TestServer server, other;
  int port = FreePort();
  Applied first(
      MakeFault("proxy.latency",
                {{"listen", Loopback(port)}, {"upstream", server.address()}, {"latency", "1ms"}}));
  auto second =
      MakeFault("proxy.latency",
                {{"listen", Loopback(port)}, {"upstream", other.address()}, {"latency", "1ms"}});
  absl::Status status = second->Inject();
  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(status.message()), Catch::Contains(server.address()));
}

TEST_CASE("a listen address in use is reported, and nothing is left", "[proxy]") {
  TestServer server, occupant;
  auto fault = MakeFault(
      "proxy.latency",
      {{"listen", occupant.address()}, {"upstream", server.address()}, {"latency", "1ms"}});
  absl::Status status = fault->Inject();
  CHECK_FALSE(status.ok());
  CHECK_THAT(std::string(status.message()), Catch::Contains(occupant.address()));
  CHECK(ProxyManager::Global().RuleCount(Address(occupant.port())) == 0);
  CHECK(fault->Revert().ok());
}

TEST_CASE("an unreachable upstream resets the client", "[proxy]") {
  int port = FreePort();
  int dead_port = FreePort();
  Applied fault(
      MakeFault("proxy.latency",
                {{"listen", Loopback(port)}, {"upstream", Loopback(dead_port)}, {"latency", "0"}}));
  Client client(port);
  CHECK(WaitForReadFailure(client, 5000) == ECONNRESET);
}

TEST_CASE("bad proxy parameters are rejected naming the field", "[proxy]") {
  RegisterBuiltinFaults();
  struct Case {
    std::string kind;
    std::map<std::string, std::string> params;
    std::string field;
  };
  const std::string up = "127.0.0.1:9";
  const std::vector<Case> cases = {
      {"proxy.latency", {{"upstream", up}, {"latency", "1ms"}}, "listen"},
      {"proxy.latency", {{"listen", "127.0.0.1:1"}, {"latency", "1ms"}}, "upstream"},
      {"proxy.latency", {{"listen", "nonsense"}, {"upstream", up}, {"latency", "1ms"}}, "listen"},
      {"proxy.latency",
       {{"listen", "127.0.0.1:0"}, {"upstream", up}, {"latency", "1ms"}},
       "listen"},
      {"proxy.latency", {{"listen", "::1:80"}, {"upstream", up}, {"latency", "1ms"}}, "listen"},
      {"proxy.latency",
       {{"listen", "127.0.0.1:1"}, {"upstream", "127.0.0.1:99999"}, {"latency", "1ms"}},
       "upstream"},
      {"proxy.latency", {{"listen", up}, {"upstream", up}, {"latency", "1ms"}}, "upstream"},
      {"proxy.latency", {{"listen", "127.0.0.1:1"}, {"upstream", up}}, "latency"},
      {"proxy.latency",
       {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"latency", "fast"}},
       "latency"},
      {"proxy.latency",
       {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"latency", "1ms"}, {"direction", "sideways"}},
       "direction"},
      {"proxy.latency",
       {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"latency", "1ms"}, {"probability", "1.5"}},
       "probability"},
      {"proxy.latency",
       {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"latency", "1ms"}, {"color", "red"}},
       "color"},
      {"proxy.jitter", {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"jitter", "0"}}, "jitter"},
      {"proxy.bandwidth", {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"rate", "lots"}}, "rate"},
      {"proxy.bandwidth", {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"rate", "0"}}, "rate"},
      {"proxy.bandwidth",
       {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"rate", "-8Mbit"}},
       "rate"},
      {"proxy.reset", {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"target", "old"}}, "target"},
      {"proxy.reset", {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"after", "many"}}, "after"},
      {"proxy.blackhole",
       {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"timeout", "soon"}},
       "timeout"},
      {"proxy.slicer", {{"listen", "127.0.0.1:1"}, {"upstream", up}, {"size", "0"}}, "size"},
  };
  for (const Case& c : cases) {
    auto factory = FaultRegistry::Global().Find(c.kind);
    REQUIRE(factory.ok());
    auto fault = (*factory)->Create(FaultSpec{.kind = c.kind, .params = c.params});
    INFO(c.kind << " expecting field " << c.field << ": " << fault.status().ToString());
    REQUIRE_FALSE(fault.ok());
    CHECK(fault.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(fault.status().message()), Catch::Contains(c.field + ":"));
  }
}

TEST_CASE("byte rates read as bytes or bits per second", "[proxy]") {
  CHECK(*ParseByteRate("8Mbit") == Approx(1e6));
  CHECK(*ParseByteRate("8Mbit/s") == Approx(1e6));
  CHECK(*ParseByteRate("500kbit") == Approx(62500));
  CHECK(*ParseByteRate("1000000") == Approx(1e6));
  CHECK(*ParseByteRate("1MB/s") == Approx(1e6));
  CHECK(*ParseByteRate("512KiB/s") == Approx(524288));
  CHECK(*ParseByteRate("1Gbit") == Approx(1.25e8));
  CHECK_FALSE(ParseByteRate("fast").ok());
  CHECK_FALSE(ParseByteRate("0").ok());
  CHECK_FALSE(ParseByteRate("Mbit").ok());
}

std::optional<uint64_t> StartTicks(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string stat = buffer.str();
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(paren + 2), ' ');
  return std::stoull(fields[19]);
}

TEST_CASE("a proxy revert record reverts in-process, and after the owner died", "[proxy]") {
  TestServer server;
  int port = FreePort();
  auto fault =
      MakeFault("proxy.latency",
                {{"listen", Loopback(port)}, {"upstream", server.address()}, {"latency", "1ms"}});
  REQUIRE(fault->Inject().ok());
  nlohmann::json record = fault->RevertRecord();
  CHECK(record.at("owner_pid").get<int64_t>() == getpid());
  CHECK(record.at("listen_address") == Loopback(port));
  REQUIRE(record.contains("rule_id"));
  // In the owner process: removes the rule, and with it the listener.
  REQUIRE(RevertProxyFaultFromRecord(record).ok());
  CHECK_FALSE(ProxyManager::Global().Listening(Address(port)));
  CHECK(RevertProxyFaultFromRecord(record).ok());  // idempotent
  CHECK(fault->Revert().ok());

  // Owner gone: nothing to undo.
  pid_t child = fork();
  if (child == 0) _exit(0);
  REQUIRE(child > 0);
  waitpid(child, nullptr, 0);
  nlohmann::json dead = record;
  dead["owner_pid"] = child;
  CHECK(RevertProxyFaultFromRecord(dead).ok());

  // Owner alive elsewhere: only it can revert.
  auto ticks = StartTicks(getppid());
  REQUIRE(ticks.has_value());
  nlohmann::json alive = record;
  alive["owner_pid"] = getppid();
  alive["owner_start_ticks"] = *ticks;
  absl::Status status = RevertProxyFaultFromRecord(alive);
  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);

  nlohmann::json broken = {{"kind", "proxy.latency"}};
  CHECK(RevertProxyFaultFromRecord(broken).code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace chaosdrill::injector
