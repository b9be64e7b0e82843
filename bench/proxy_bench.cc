// proxy_bench: what the proxy.* engine costs when it shapes nothing, and how closely it
// hits what it is asked for. On loopback, against an in-process echo/sink server:
//   - round-trip time, direct vs through a pass-through proxy (proxy.latency 0)
//   - bulk throughput, direct vs through the proxy
//   - added latency for proxy.latency 100ms, and the rate for proxy.bandwidth 8Mbit
// Usage: proxy_bench [--bytes N] [--round-trips N]. Prints one line per measurement.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "injector/fault_registry.h"

namespace {

using Clock = std::chrono::steady_clock;
using chaosdrill::injector::FaultPtr;
using chaosdrill::injector::FaultRegistry;

int Listen(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 16) != 0) {
    std::perror("bind");
    std::exit(1);
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::perror("connect");
    std::exit(1);
  }
  return fd;
}

// Echo server: a thread per connection, the first byte of a connection picks the mode:
// 'e' echo, 's' sink-then-report (reads until EOF, then writes one byte).
void Serve(int listen_fd) {
  while (true) {
    int fd = accept(listen_fd, nullptr, nullptr);
    if (fd < 0) return;
    std::thread([fd] {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::vector<char> buf(1 << 16);
      while (true) {
        ssize_t n = recv(fd, buf.data(), buf.size(), 0);
        if (n <= 0) break;
        if (send(fd, buf.data(), n, MSG_NOSIGNAL) != n) break;
      }
      close(fd);
    }).detach();  // bench process only; exits with main
  }
}

double MedianRoundTripMicros(int port, int n) {
  int fd = Connect(port);
  std::vector<double> samples;
  char c = 'x';
  for (int i = 0; i < n; ++i) {
    auto start = Clock::now();
    if (send(fd, &c, 1, 0) != 1 || recv(fd, &c, 1, MSG_WAITALL) != 1) std::exit(1);
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  close(fd);
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

// Bytes/s echoed back: a writer thread sends `bytes`, this thread reads them back.
double EchoThroughput(int port, size_t bytes) {
  int fd = Connect(port);
  auto start = Clock::now();
  std::thread writer([fd, bytes] {
    std::vector<char> buf(1 << 16, 'b');
    size_t sent = 0;
    while (sent < bytes) {
      ssize_t n = send(fd, buf.data(), std::min(buf.size(), bytes - sent), MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += n;
    }
  });
  std::vector<char> buf(1 << 16);
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    got += n;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  writer.join();
  close(fd);
  return static_cast<double>(got) / seconds;
}

FaultPtr Inject(const std::string& kind, std::map<std::string, std::string> params) {
  auto factory = FaultRegistry::Global().Find(kind);
  auto fault = (*factory)->Create({.kind = kind, .params = std::move(params)});
  if (!fault.ok() || !(*fault)->Inject().ok()) {
    std::fprintf(stderr, "cannot inject %s\n", kind.c_str());
    std::exit(1);
  }
  return *std::move(fault);
}

}  // namespace

int main(int argc, char** argv) {
  size_t bytes = 256 << 20;
  int round_trips = 1001;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--bytes") == 0) bytes = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--round-trips") == 0) round_trips = std::atoi(argv[i + 1]);
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  chaosdrill::injector::RegisterBuiltinFaults();
  int server_port = 0;
  int server_fd = Listen(&server_port);
  std::thread server(Serve, server_fd);
  server.detach();
  int proxy_port = 0;
  close(Listen(&proxy_port));  // a free port for the proxy
  std::string listen = absl::StrCat("127.0.0.1:", proxy_port);
  std::string upstream = absl::StrCat("127.0.0.1:", server_port);

  FaultPtr pass =
      Inject("proxy.latency", {{"listen", listen}, {"upstream", upstream}, {"latency", "0"}});
  double rtt_direct = MedianRoundTripMicros(server_port, round_trips);
  double rtt_proxy = MedianRoundTripMicros(proxy_port, round_trips);
  std::printf("rtt_median_us direct=%.1f proxy=%.1f overhead=%.1f (n=%d)\n", rtt_direct, rtt_proxy,
              rtt_proxy - rtt_direct, round_trips);
  double tput_direct = EchoThroughput(server_port, bytes);
  double tput_proxy = EchoThroughput(proxy_port, bytes);
  std::printf("echo_throughput_MBps direct=%.0f proxy=%.0f ratio=%.2f (bytes=%zu)\n",
              tput_direct / 1e6, tput_proxy / 1e6, tput_proxy / tput_direct, bytes);

  FaultPtr latency =
      Inject("proxy.latency", {{"listen", listen}, {"upstream", upstream}, {"latency", "100ms"}});
  double rtt_latency = MedianRoundTripMicros(proxy_port, 21);
  std::printf("latency_100ms added_ms=%.2f (n=21)\n", (rtt_latency - rtt_direct) / 1000);
  (void)latency->Revert();

  FaultPtr bandwidth = Inject(
      "proxy.bandwidth",
      {{"listen", listen}, {"upstream", upstream}, {"rate", "8Mbit"}, {"direction", "downstream"}});
  double shaped = EchoThroughput(proxy_port, 2'000'000);
  std::printf("bandwidth_8Mbit measured_Bps=%.0f error=%+.1f%%\n", shaped,
              (shaped / 1e6 - 1) * 100);
  (void)bandwidth->Revert();
  (void)pass->Revert();
  return 0;
}
