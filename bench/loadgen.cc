// loadgen: the highest rate our open-loop load generator (runner::LoadGenerator) sustains
// against the reference gateway, side by side with h2load (nghttp2) sending the same
// ModelInfer request as a length-prefixed gRPC body over HTTP/2 to the same endpoint.
//
// The server is a real replica and gateway (reference::Replica, reference::Gateway), each in
// a child process forked before any thread exists, so neither client shares a process with
// it. For the benchmark the gateway's health-check timeout is 5 s, outlier ejection and
// retries are off, and the replica has 32 server threads: otherwise a saturated box fails
// the health checks or trips ejection, and the run measures the gateway's overload
// behaviour (UNAVAILABLE for seconds), not the clients.
//
// Method (docs/benchmarks.md): the same open-loop rate ramp for both clients. At each
// offered rate R each client runs for --duration seconds, the first second being warm-up;
// R is *sustained* when the gRPC-OK answers per second over the rest are >= 99 % of R and
// at most 1 % of the requests failed. The ramp multiplies R by --step, both clients at each
// rate, until each has failed once, then bisects twice between a client's last sustained
// and first failed rate. A client's maximum is its highest sustained rate; the ratio is
// ours / h2load (goal >= 1.0). h2load counts an HTTP 200 with a gRPC error in its trailers
// as a success, so its gRPC codes come from the gateway's counters
// (chaosdrill_gateway_responses_total) read before and after each run, CANCELLED left out
// (the streams h2load resets when its duration ends). Also reported: each client's CPU
// time per request (getrusage: this process for ours, the reaped h2load child for h2load)
// and h2load's closed-loop saturation (-m 64 streams per connection, no rate limit).
//
//   loadgen [--duration S=4] [--connections N=4] [--start RPS=1000] [--step F=1.25]
//           [--max RPS=200000] [--width W=32] [--depth D=1] [--h2load PATH]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "reference/child_process.h"
#include "reference/gateway.h"
#include "reference/model_codec.h"
#include "reference/model_factory.h"
#include "reference/replica.h"
#include "runner/analysis.h"
#include "runner/load_generator.h"

namespace {

namespace fs = std::filesystem;
using chaosdrill::LatencyHistogram;
using chaosdrill::MonotonicClock;
using chaosdrill::reference::ChildProcess;

constexpr int64_t kNsPerS = 1'000'000'000;

const char* Flag(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

// A server child: forked (before this process has any thread), it runs `serve`, which
// returns the line to report ("" on failure), writes that line to the parent and serves
// until the parent closes the lifeline pipe or dies.
struct ServerChild {
  pid_t pid = -1;
  int lifeline = -1;  // our end; closing it stops the child
  std::string line;
};

template <typename F>
std::optional<ServerChild> ForkServer(F serve) {
  int out[2], life[2];
  if (pipe(out) != 0 || pipe(life) != 0) return std::nullopt;
  pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(out[0]);
    close(life[1]);
    std::string line = serve() + "\n";
    (void)!write(out[1], line.data(), line.size());
    close(out[1]);
    char c;
    while (read(life[0], &c, 1) > 0) {
    }
    _exit(0);
  }
  close(out[1]);
  close(life[0]);
  ServerChild child{.pid = pid, .lifeline = life[1]};
  pollfd p{.fd = out[0], .events = POLLIN};
  char buf[512];
  while (poll(&p, 1, 60'000) == 1) {
    ssize_t n = read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    child.line.append(buf, static_cast<size_t>(n));
    if (child.line.back() == '\n') break;
  }
  close(out[0]);
  while (!child.line.empty() && (child.line.back() == '\n')) child.line.pop_back();
  return child;
}

void StopServer(ServerChild& child) {
  if (child.pid <= 0) return;
  close(child.lifeline);
  int status = 0;
  for (int i = 0; i < 100 && waitpid(child.pid, &status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (waitpid(child.pid, &status, WNOHANG) == 0) {
    kill(child.pid, SIGKILL);
    waitpid(child.pid, &status, 0);
  }
  child.pid = -1;
}

// GET /metrics over plain HTTP/1.0; the body, or empty on failure.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    if (fd >= 0) close(fd);
    return "";
  }
  std::string req = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

// The gateway's ModelInfer responses by gRPC code name.
std::map<std::string, double> GatewayResponses(int metrics_port) {
  std::map<std::string, double> by_code;
  std::string text = HttpGet(metrics_port, "/metrics");
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, "chaosdrill_gateway_responses_total{")) continue;
    if (line.find("method=\"ModelInfer\"") == absl::string_view::npos) continue;
    size_t c = line.find("code=\"");
    size_t end = line.find("\"", c + 6);
    size_t space = line.rfind(' ');
    if (c == absl::string_view::npos || end == absl::string_view::npos) continue;
    double v = 0;
    if (!absl::SimpleAtod(line.substr(space + 1), &v)) continue;
    by_code[std::string(line.substr(c + 6, end - c - 6))] += v;
  }
  return by_code;
}

struct Step {
  double offered = 0;
  double ok_per_s = 0;      // gRPC OK answers per second over the measured part
  double failed = 0;        // share of requests that failed (any non-OK, timeouts, h2load errors)
  double skew_p99_ms = -1;  // ours: actual minus intended send, p99
  double service_p99_ms = -1;
  double cpu_us_per_request = -1;  // the client's CPU time (user + system) per request sent
  bool sustained = false;
  std::string note;
};

struct Bench {
  std::string gateway;
  int metrics_port = 0;
  int connections = 4;
  double duration_s = 4;
  std::string h2load;
  std::string body_file;
  inference::ModelInferRequest request;
  std::string dir;
};

// CPU seconds (user + system) of this process or of its reaped children.
double CpuSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

bool Sustained(const Step& s) { return s.ok_per_s >= 0.99 * s.offered && s.failed <= 0.01; }

Step RunOurs(const Bench& b, double rate) {
  Step s{.offered = rate};
  MonotonicClock& clock = MonotonicClock::Get();
  chaosdrill::runner::LoadOptions o;
  o.address = b.gateway;
  o.rate = rate;
  o.connections = b.connections;
  o.timeout = absl::Seconds(2);
  o.request = b.request;
  const double cpu0 = CpuSeconds(RUSAGE_SELF);
  const int64_t origin = clock.NowNanos();
  chaosdrill::runner::LoadGenerator load(o, clock, origin);
  if (!load.Start(0).ok()) return s;
  const int64_t end = static_cast<int64_t>(b.duration_s * kNsPerS);
  clock.SleepUntil(origin + end);
  load.Stop();  // every sent request has completed (or timed out) after this
  std::vector<chaosdrill::reports::RequestRecord> log = load.Log();
  if (!log.empty()) s.cpu_us_per_request = (CpuSeconds(RUSAGE_SELF) - cpu0) * 1e6 / log.size();
  uint64_t ok = 0, failed = 0;
  std::map<int, uint64_t> codes;
  LatencyHistogram skew, service;
  const uint64_t intended = static_cast<uint64_t>(std::llround((b.duration_s - 1) * rate));
  for (const auto& r : log) {
    if (r.intended_ns < kNsPerS || r.intended_ns >= end) continue;
    skew.Record(r.sent_ns - r.intended_ns);
    if (chaosdrill::runner::IsOk(r)) {
      ++ok;
      service.Record(r.service_ns());
    } else {
      ++failed;
      ++codes[r.code];
    }
  }
  for (const auto& [code, n] : codes)
    absl::StrAppend(&s.note, s.note.empty() ? "" : ", ", "code ", code, ": ", n);
  // Requests of the measured part the sender never got to count as failed.
  failed += intended > ok + failed ? intended - ok - failed : 0;
  s.ok_per_s = ok / (b.duration_s - 1);
  s.failed = intended ? static_cast<double>(failed) / intended : 0;
  s.skew_p99_ms = skew.ValueAtQuantile(0.99) / 1e6;
  s.service_p99_ms = service.ValueAtQuantile(0.99) / 1e6;
  s.sustained = Sustained(s);
  return s;
}

// h2load's summary lines: "finished in 3.00s, 999.67 req/s, ..." and
// "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout".
struct H2Summary {
  double req_per_s = -1;
  double total = 0, succeeded = 0, failed = 0, errored = 0, timeout = 0;
};

H2Summary ParseH2load(const std::string& text) {
  H2Summary h;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, "finished in ")) {
      size_t comma = line.find(", ");
      size_t req = line.find(" req/s");
      if (comma != absl::string_view::npos && req != absl::string_view::npos) {
        (void)absl::SimpleAtod(line.substr(comma + 2, req - comma - 2), &h.req_per_s);
      }
    } else if (absl::ConsumePrefix(&line, "requests: ")) {
      for (absl::string_view part : absl::StrSplit(line, ", ")) {
        std::vector<absl::string_view> kv = absl::StrSplit(part, ' ');
        if (kv.size() != 2) continue;
        double v = 0;
        if (!absl::SimpleAtod(kv[0], &v)) continue;
        if (kv[1] == "total") h.total = v;
        if (kv[1] == "succeeded") h.succeeded = v;
        if (kv[1] == "failed") h.failed = v;
        if (kv[1] == "errored") h.errored = v;
        if (kv[1] == "timeout") h.timeout = v;
      }
    }
  }
  return h;
}

// rate <= 0: closed loop (no --rps, 64 streams per connection).
Step RunH2load(const Bench& b, double rate) {
  Step s{.offered = rate};
  const int main_s = static_cast<int>(std::lround(b.duration_s - 1));
  std::vector<std::string> argv = {
      b.h2load,
      "-c",
      absl::StrCat(b.connections),
      "-t",
      "1",
      "-m",
      rate > 0 ? "256" : "64",
      "-D",
      absl::StrCat(main_s),
      "--warm-up-time",
      "1",
      "-d",
      b.body_file,
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      absl::StrCat("http://", b.gateway, "/inference.GRPCInferenceService/ModelInfer")};
  if (rate > 0) {
    argv.insert(argv.begin() + 1,
                {"--rps", absl::StrCat(std::max(1L, std::lround(rate / b.connections)))});
    s.offered = std::max(1L, std::lround(rate / b.connections)) * b.connections;
  }
  const std::string log = absl::StrCat(b.dir, "/h2load.log");
  std::error_code ec;
  fs::remove(log, ec);
  auto before = GatewayResponses(b.metrics_port);
  const double cpu0 = CpuSeconds(RUSAGE_CHILDREN);  // the servers are not reaped until the end
  auto child = ChildProcess::Spawn(argv, log);
  if (!child.ok()) {
    s.note = std::string(child.status().message());
    return s;
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(b.duration_s + 30);
  while (!(*child)->Poll() && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  (*child)->Stop(absl::Seconds(1));
  const double cpu = CpuSeconds(RUSAGE_CHILDREN) - cpu0;
  auto after = GatewayResponses(b.metrics_port);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  H2Summary h = ParseH2load(text.str());
  double grpc_ok = after["OK"] - before["OK"], grpc_all = 0;
  for (const auto& [code, n] : after) {
    // CANCELLED: streams h2load itself reset when its duration ended, not server failures.
    if (code != "CANCELLED") grpc_all += n - before[code];
    if (code != "OK" && n > before[code])
      absl::StrAppend(&s.note, s.note.empty() ? "" : ", ", code, ": ", n - before[code]);
  }
  // h2load's succeeded = HTTP 2xx; the gateway says how many of all its answers were OK
  // (warm-up included, hence a ratio).
  const double grpc_ok_share = grpc_all > 0 ? grpc_ok / grpc_all : 0;
  s.ok_per_s = h.succeeded / main_s * grpc_ok_share;
  const double failed = h.failed + h.errored + h.timeout + h.succeeded * (1 - grpc_ok_share);
  s.failed = h.total > 0 ? failed / h.total : 1;
  if (rate <= 0) s.offered = h.req_per_s;
  if (grpc_all > 0) s.cpu_us_per_request = cpu * 1e6 / grpc_all;  // warm-up included, as ours
  if (h.req_per_s < 0) s.note = "h2load printed no summary (see " + log + ")";
  s.sustained = rate > 0 && Sustained(s);
  return s;
}

void Print(const char* who, const Step& s) {
  std::printf("%-7s offered %8.0f  ok/s %8.0f  failed %6.2f%%  cpu/req %6.1f us  %s", who,
              s.offered, s.ok_per_s, 100 * s.failed, s.cpu_us_per_request,
              s.sustained ? "sustained" : "NOT sustained");
  if (s.skew_p99_ms >= 0) {
    std::printf("  send skew p99 %.2f ms  service p99 %.2f ms", s.skew_p99_ms, s.service_p99_ms);
  }
  if (!s.note.empty()) std::printf("  (%s)", s.note.c_str());
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Bench b;
  b.duration_s = std::atof(Flag(argc, argv, "--duration", "4"));
  b.connections = std::atoi(Flag(argc, argv, "--connections", "4"));
  const double start = std::atof(Flag(argc, argv, "--start", "1000"));
  const double step = std::atof(Flag(argc, argv, "--step", "1.25"));
  const double max_rate = std::atof(Flag(argc, argv, "--max", "200000"));
  const int width = std::atoi(Flag(argc, argv, "--width", "32"));
  const int depth = std::atoi(Flag(argc, argv, "--depth", "1"));
  b.h2load = Flag(argc, argv, "--h2load", "");
  if (b.h2load.empty()) b.h2load = chaosdrill::reference::FindExecutable("h2load");
  if (b.duration_s < 2 || b.connections < 1 || !(start > 0) || !(step > 1)) {
    std::fprintf(stderr, "loadgen: need --duration >= 2, --connections >= 1, --step > 1\n");
    return 2;
  }
  if (b.h2load.empty()) {
    std::fprintf(stderr,
                 "loadgen: h2load not found; install it with scripts/install-deps.sh --bench\n");
    return 2;
  }
  char tmpl[] = "/tmp/cd-loadgen-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("loadgen: mkdtemp");
    return 1;
  }
  b.dir = tmpl;

  // The request: the tiny-mlp golden input, as the drill sends it to the reference target.
  auto model = chaosdrill::reference::CreateModel(
      {.name = "tiny-mlp", .device = "cpu", .width = width, .depth = depth});
  if (!model.ok()) {
    std::fprintf(stderr, "loadgen: %s\n", std::string(model.status().message()).c_str());
    return 2;
  }
  b.request = chaosdrill::reference::MakeInferRequest("tiny-mlp", (*model)->info().input,
                                                      (*model)->golden_input(), /*raw=*/false);
  {
    std::string msg = b.request.SerializeAsString();
    std::string frame(5, '\0');  // gRPC message framing: flag 0, 4-byte big-endian length
    uint32_t n = htonl(static_cast<uint32_t>(msg.size()));
    std::memcpy(&frame[1], &n, 4);
    b.body_file = b.dir + "/request.grpc";
    std::ofstream(b.body_file, std::ios::binary) << frame << msg;
  }

  // The servers first, while this process has no thread yet.
  auto replica = ForkServer([&]() -> std::string {
    chaosdrill::reference::ReplicaOptions ro;
    ro.width = width;
    ro.depth = depth;
    ro.threads = 32;  // the replica sheds load (RESOURCE_EXHAUSTED) beyond threads + 2 calls
    static auto r = chaosdrill::reference::Replica::Start(ro);
    if (!r.ok() || !(*r)->WaitReady(60000)) return "";
    return (*r)->address();
  });
  if (!replica || replica->line.empty()) {
    std::fprintf(stderr, "loadgen: the replica did not start\n");
    return 1;
  }
  const std::string replica_address = replica->line;
  auto gateway = ForkServer([&]() -> std::string {
    chaosdrill::reference::GatewayOptions go;
    go.replicas = {replica_address};
    go.model_width = width;
    go.model_depth = depth;
    go.metrics_listen = "127.0.0.1:0";
    go.health_interval_ms = 500;
    go.health_timeout_ms = 5000;
    go.consecutive_failures = 1 << 30;  // no outlier ejection: one replica, measured as is
    go.max_tries = 1;                   // no retries: one request is one replica call
    static auto g = chaosdrill::reference::Gateway::Start(go);
    if (!g.ok() || !(*g)->WaitForRoutable(1, 60000)) return "";
    return absl::StrCat((*g)->address(), " ", (*g)->metrics_address());
  });
  std::vector<std::string> addresses;
  if (gateway) addresses = absl::StrSplit(gateway->line, ' ');
  if (addresses.size() != 2) {
    std::fprintf(stderr, "loadgen: the gateway did not start\n");
    StopServer(*replica);
    return 1;
  }
  b.gateway = addresses[0];
  b.metrics_port = std::atoi(addresses[1].substr(addresses[1].rfind(':') + 1).c_str());
  // One answered request through each client before measuring.
  {
    auto stub = inference::GRPCInferenceService::NewStub(
        grpc::CreateChannel(b.gateway, grpc::InsecureChannelCredentials()));
    bool ok = false;
    for (int i = 0; i < 100 && !ok; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      inference::ModelInferResponse resp;
      ok = stub->ModelInfer(&ctx, b.request, &resp).ok();
      if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!ok) {
      std::fprintf(stderr, "loadgen: the gateway does not answer ModelInfer\n");
      return 1;
    }
  }
  std::printf(
      "loadgen: gateway %s (tiny-mlp %dx%d, one replica), %d connections, %.0f s per step "
      "(1 s warm-up), h2load %s\n",
      b.gateway.c_str(), width, depth, b.connections, b.duration_s, b.h2load.c_str());

  // The ramp, both clients at each rate (interleaved so that noise from neighbours hits
  // both alike), then two bisection steps per client.
  double ours_max = 0, h2_max = 0, ours_fail = 0, h2_fail = 0;
  double ours_cpu = -1, h2_cpu = -1;  // CPU per request at the first (lowest) rate
  for (double rate = start; rate <= max_rate && (ours_fail == 0 || h2_fail == 0); rate *= step) {
    if (ours_fail == 0) {
      Step s = RunOurs(b, rate);
      Print("ours", s);
      if (ours_cpu < 0) ours_cpu = s.cpu_us_per_request;
      if (s.sustained) ours_max = std::max(ours_max, rate);
      if (!s.sustained) ours_fail = rate;
    }
    if (h2_fail == 0) {
      Step s = RunH2load(b, rate);
      Print("h2load", s);
      if (h2_cpu < 0) h2_cpu = s.cpu_us_per_request;
      if (s.sustained) h2_max = std::max(h2_max, s.offered);
      if (!s.sustained) h2_fail = rate;
    }
  }
  for (int i = 0; i < 2; ++i) {
    if (ours_fail > 0 && ours_fail > ours_max) {
      double mid = ours_max > 0 ? (ours_max + ours_fail) / 2 : ours_fail / 2;
      Step s = RunOurs(b, mid);
      Print("ours", s);
      (s.sustained ? ours_max : ours_fail) = mid;
    }
    if (h2_fail > 0 && h2_fail > h2_max) {
      double mid = h2_max > 0 ? (h2_max + h2_fail) / 2 : h2_fail / 2;
      Step s = RunH2load(b, mid);
      Print("h2load", s);
      if (s.sustained) {
        h2_max = s.offered;
      } else {
        h2_fail = mid;
      }
    }
  }
  // Last, as it overloads the server on purpose.
  Step closed = RunH2load(b, 0);
  std::printf("h2load closed loop (-m 64): %.0f req/s, %.0f gRPC OK/s, failed %.2f%%%s\n",
              closed.offered, closed.ok_per_s, 100 * closed.failed,
              closed.note.empty() ? "" : (" (" + closed.note + ")").c_str());
  std::printf(
      "RESULT max sustained open-loop rate: ours %.0f rps, h2load %.0f rps, ratio %.2f "
      "(goal >= 1.0); h2load closed-loop %.0f gRPC OK/s\n",
      ours_max, h2_max, h2_max > 0 ? ours_max / h2_max : 0.0, closed.ok_per_s);
  std::printf("RESULT client CPU per request at %.0f rps: ours %.1f us, h2load %.1f us (%.2fx)\n",
              start, ours_cpu, h2_cpu, h2_cpu > 0 ? ours_cpu / h2_cpu : 0.0);
  StopServer(*gateway);
  StopServer(*replica);
  std::error_code ec;
  fs::remove_all(b.dir, ec);
  return 0;
}
