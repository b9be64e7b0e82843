// Probes: the PromQL answer parser, the tiny HTTP client, how answers are judged, the
// per-probe state machine and schedule (fake clock, fake checks), the alert verdicts, the
// ready/golden checks against a fake OIP server, the record's JSON, and the whole
// prometheus + alert path against a real Prometheus (Debian's `prometheus`) that scrapes
// a metric the test drives.
#include "runner/probes.h"

#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "reference/child_process.h"
#include "reference/metrics_http_server.h"
#include "reports/run_record_json.h"
#include "runner/probe_analysis.h"
#include "runner/prometheus_client.h"
#include "tests/test_support.h"

namespace chaosdrill::runner {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;

// ---- PromQL answers ---------------------------------------------------------------------

TEST_CASE("prometheus answers: an instant vector with one series", "[runner][probes]") {
  auto r = ParsePromQueryResponse(200, R"({"status":"success","data":{"resultType":"vector",
      "result":[{"metric":{"__name__":"up","job":"gw"},"value":[1700000000.5,"0.25"]}]}})");
  REQUIRE(r.ok());
  CHECK(r->type == "vector");
  REQUIRE(r->samples.size() == 1);
  CHECK(r->samples[0].value == 0.25);
  CHECK(r->samples[0].labels.at("job") == "gw");
  CHECK(JudgeThreshold(r, 0.5, std::nullopt).ok);
  ProbeOutcome high = JudgeThreshold(r, 0.1, std::nullopt);
  CHECK_FALSE(high.ok);
  CHECK(high.value == 0.25);
  CHECK(high.message == "value 0.25, not below 0.1");
  CHECK(JudgeThreshold(r, std::nullopt, 0.2).ok);
  CHECK(JudgeThreshold(r, 1, 0.3).message == "value 0.25, not above 0.3");
}

TEST_CASE("prometheus answers: a scalar is one unlabelled number", "[runner][probes]") {
  auto r = ParsePromQueryResponse(
      200, R"({"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}})");
  REQUIRE(r.ok());
  CHECK(r->type == "scalar");
  REQUIRE(r->samples.size() == 1);
  CHECK(r->samples[0].labels.empty());
  CHECK(r->samples[0].value == 42);
  ProbeOutcome o = JudgeThreshold(r, std::nullopt, 41);
  CHECK(o.ok);
  CHECK(o.value == 42);
  CHECK(o.message.empty());
}

TEST_CASE("prometheus answers: empty and multi-series vectors fail the threshold",
          "[runner][probes]") {
  auto empty = ParsePromQueryResponse(
      200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  REQUIRE(empty.ok());
  CHECK(empty->samples.empty());
  ProbeOutcome o = JudgeThreshold(empty, 1, std::nullopt);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.value.has_value());
  CHECK_THAT(o.message, Catch::Contains("returned no series"));
  // An empty ALERTS vector is the healthy case of an alert probe.
  ProbeOutcome quiet = JudgeAlert(empty, "Down");
  CHECK(quiet.ok);
  CHECK(quiet.value == 0);

  auto two = ParsePromQueryResponse(200, R"({"status":"success","data":{"resultType":"vector",
      "result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}})");
  REQUIRE(two.ok());
  CHECK_THAT(JudgeThreshold(two, 5, std::nullopt).message,
             Catch::Contains("returned 2 series; expected one number"));
  ProbeOutcome firing = JudgeAlert(two, "Down");
  CHECK_FALSE(firing.ok);
  CHECK(firing.value == 2);
  CHECK(firing.message == "alert Down firing (2 series)");
}

TEST_CASE("prometheus answers: NaN and infinities", "[runner][probes]") {
  auto nan = ParsePromQueryResponse(
      200, R"({"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}})");
  REQUIRE(nan.ok());
  CHECK(std::isnan(nan->samples[0].value));
  ProbeOutcome o = JudgeThreshold(nan, 1, std::nullopt);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.value.has_value());
  CHECK(o.message == "the value is NaN");
  auto inf = ParsePromQueryResponse(
      200, R"({"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}})");
  REQUIRE(inf.ok());
  ProbeOutcome big = JudgeThreshold(inf, std::nullopt, 0);
  CHECK(big.ok);                       // +Inf is above 0
  CHECK_FALSE(big.value.has_value());  // but not stored as a number (JSON has no Inf)
  CHECK(big.message == "value inf");
}

TEST_CASE("prometheus answers: error status, wrong result types, garbage", "[runner][probes]") {
  auto err = ParsePromQueryResponse(
      400, R"({"status":"error","errorType":"bad_data","error":"parse error at char 4"})");
  REQUIRE_FALSE(err.ok());
  CHECK(err.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(err.status().message()) ==
        "Prometheus answered HTTP 400, query failed (bad_data): parse error at char 4");
  ProbeOutcome o = JudgeThreshold(err, 1, std::nullopt);
  CHECK_FALSE(o.ok);
  CHECK_THAT(o.message, Catch::Contains("bad_data"));

  auto matrix = ParsePromQueryResponse(
      200, R"({"status":"success","data":{"resultType":"matrix","result":[]}})");
  REQUIRE_FALSE(matrix.ok());
  CHECK_THAT(std::string(matrix.status().message()), Catch::Contains("drop the [range]"));
  auto str = ParsePromQueryResponse(
      200, R"({"status":"success","data":{"resultType":"string","result":[1,"x"]}})");
  REQUIRE_FALSE(str.ok());
  CHECK_THAT(std::string(str.status().message()), Catch::Contains("returned a string"));

  struct Bad {
    const char* body;
    const char* message;
  };
  for (const Bad& b : std::vector<Bad>{
           {"<html>502 Bad Gateway</html>", "not a JSON object: \"<html>502"},
           {"", "not a JSON object"},
           {"[1,2]", "not a JSON object"},
           {R"({"status":"weird"})", "without status \"success\" or \"error\""},
           {R"({"status":"success"})", "no data.resultType"},
           {R"({"status":"success","data":{"resultType":"vector","result":{}}})",
            "data.result of a vector is not a list"},
           {R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}})",
            "vector element without a value"},
           {R"({"status":"success","data":{"resultType":"scalar","result":[1,2]}})",
            "expected a sample [time, \"value\"]"},
           {R"({"status":"success","data":{"resultType":"scalar","result":[1,"lots"]}})",
            "sample value \"lots\" is not a number"},
       }) {
    INFO(b.body);
    auto r = ParsePromQueryResponse(200, b.body);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(std::string(r.status().message()), Catch::Contains(b.message));
  }
  // A success body on a non-200 answer is not trusted either.
  CHECK_FALSE(ParsePromQueryResponse(
                  503, R"({"status":"success","data":{"resultType":"scalar","result":[1,"1"]}})")
                  .ok());
}

TEST_CASE("prometheus urls, url encoding and the ALERTS query", "[runner][probes]") {
  auto u = ParseHttpUrl("http://127.0.0.1:9090");
  REQUIRE(u.ok());
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == 9090);
  CHECK(u->path_prefix.empty());
  auto p = ParseHttpUrl("http://prom.internal/monitoring/prometheus/");
  REQUIRE(p.ok());
  CHECK(p->port == 80);
  CHECK(p->path_prefix == "/monitoring/prometheus");
  auto v6 = ParseHttpUrl("http://[::1]:9091");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->ToString() == "http://[::1]:9091");
  for (const char* bad : {"https://h:9090", "h:9090", "http://", "http://h:0", "http://h:x",
                          "http://h:9090/?q=1", "http://u@h", "http://[::1"}) {
    INFO(bad);
    CHECK_FALSE(ParseHttpUrl(bad).ok());
  }
  CHECK(UrlEncode("sum(rate(x{a=\"b\"}[1m])) > 0") ==
        "sum%28rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29%29%20%3E%200");
  CHECK(AlertQuery("ReplicaDown") == "ALERTS{alertname=\"ReplicaDown\",alertstate=\"firing\"}");
  CHECK(AlertQuery("a\"b\\c") == "ALERTS{alertname=\"a\\\"b\\\\c\",alertstate=\"firing\"}");
}

// ---- the HTTP client against a scripted socket server --------------------------------

// Accepts one connection at a time and answers each request with the next canned reply
// (raw bytes), then closes; an empty reply means "read the request, answer nothing".
class ScriptedHttp {
 public:
  explicit ScriptedHttp(std::vector<std::string> replies) : replies_(std::move(replies)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    REQUIRE(listen(fd_, 8) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedHttp() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  HttpUrl url() const { return {.host = "127.0.0.1", .port = port_}; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    for (const std::string& reply : replies_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
      }
      if (reply.empty()) {
        // Hold the connection until the client gives up (it closes; recv returns 0).
        while (recv(c, buf, sizeof(buf), 0) > 0) {
        }
      } else {
        // Two writes, so the client sees the answer arrive in pieces.
        size_t half = reply.size() / 2;
        (void)!send(c, reply.data(), half, MSG_NOSIGNAL);
        (void)!send(c, reply.data() + half, reply.size() - half, MSG_NOSIGNAL);
      }
      close(c);
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::vector<std::string> replies_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

TEST_CASE("http client: content-length, chunked and read-to-close bodies", "[runner][probes]") {
  ScriptedHttp server({
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n",
      "HTTP/1.0 404 Not Found\r\n\r\nno such path",
  });
  auto a = HttpGet(server.url(), "/api/v1/query?query=up", absl::Seconds(5));
  REQUIRE(a.ok());
  CHECK(a->status == 200);
  CHECK(a->body == "hello");
  auto b = HttpGet(server.url(), "/x", absl::Seconds(5));
  REQUIRE(b.ok());
  CHECK(b->body == "abcdefg");
  auto c = HttpGet(server.url(), "/y", absl::Seconds(5));
  REQUIRE(c.ok());
  CHECK(c->status == 404);
  CHECK(c->body == "no such path");
  std::vector<std::string> reqs = server.requests();
  REQUIRE(reqs.size() == 3);
  CHECK_THAT(reqs[0], Catch::StartsWith("GET /api/v1/query?query=up HTTP/1.1\r\n"));
  CHECK_THAT(reqs[0], Catch::Contains("\r\nHost: 127.0.0.1:"));
  CHECK_THAT(reqs[0], Catch::Contains("\r\nConnection: close\r\n"));
}

TEST_CASE("http client: a silent server times out, a closed port is unavailable",
          "[runner][probes]") {
  ScriptedHttp server({"", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"});
  auto start = std::chrono::steady_clock::now();
  auto silent = HttpGet(server.url(), "/", absl::Milliseconds(200));
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE_FALSE(silent.ok());
  CHECK(silent.status().code() == absl::StatusCode::kDeadlineExceeded);
  std::printf("silent server: gave up after %.3f s (timeout 0.2 s)\n", waited);
  CHECK(waited >= 0.19);
  auto cut = HttpGet(server.url(), "/", absl::Seconds(5));
  REQUIRE_FALSE(cut.ok());
  CHECK_THAT(std::string(cut.status().message()), Catch::Contains("in the middle of the response"));

  // A port nobody listens on (bound, never listened: connect is refused).
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  socklen_t len = sizeof(a);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  auto refused = HttpGet({.host = "127.0.0.1", .port = ntohs(a.sin_port)}, "/", absl::Seconds(2));
  close(fd);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("connecting to"));
}

TEST_CASE("http prometheus client: Cancel ends a query in flight at once", "[runner][probes]") {
  ScriptedHttp server({""});
  auto client = HttpPrometheusClient::Create(server.url().ToString());
  REQUIRE(client.ok());
  std::thread canceller([&] {
    // Let the query reach the server first (bounded poll on what the server saw).
    for (int i = 0; i < 500 && server.requests().empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    (*client)->Cancel();
  });
  auto start = std::chrono::steady_clock::now();
  auto r = (*client)->Query("up", absl::Seconds(30));
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  canceller.join();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kCancelled);
  std::printf("cancelled query returned after %.3f s (timeout 30 s)\n", waited);
  CHECK(waited < 20);  // far from the 30 s timeout even on a loaded machine
  REQUIRE(server.requests().size() == 1);
  CHECK_THAT(server.requests()[0], Catch::Contains("GET /api/v1/query?query=up&timeout=27000ms"));
  // Later queries fail at once.
  CHECK((*client)->Query("up", absl::Seconds(30)).status().code() == absl::StatusCode::kCancelled);
}

// ---- the state machine and the schedule -------------------------------------------------

reports::ProbeSeries Series(std::string name, int64_t every_ns) {
  reports::ProbeSeries s;
  s.name = std::move(name);
  s.kind = "ready";
  s.every_ns = every_ns;
  return s;
}

TEST_CASE("probe tracker: events on every state change, the first only when failing",
          "[runner][probes]") {
  ProbeTracker t(Series("ready", kS));
  CHECK_FALSE(t.Record(0, {.ok = true}).has_value());
  CHECK_FALSE(t.Record(1 * kS, {.ok = true}).has_value());
  auto down = t.Record(2 * kS, {.ok = false, .message = "ServerReady: UNAVAILABLE"});
  REQUIRE(down.has_value());
  CHECK(down->t_ns == 2 * kS);
  CHECK(down->type == "probe");
  CHECK(down->message == "probe ready failing: ServerReady: UNAVAILABLE");
  CHECK_FALSE(t.Record(3 * kS, {.ok = false, .message = "other reason"}).has_value());
  auto up = t.Record(5500 * kMs, {.ok = true});
  REQUIRE(up.has_value());
  CHECK(up->message == "probe ready ok again after 3.5s failing");
  CHECK_FALSE(t.Record(6 * kS, {.ok = true}).has_value());
  REQUIRE(t.series().samples.size() == 6);
  CHECK(t.series().samples[3].message == "other reason");
  CHECK_FALSE(t.series().samples[3].ok);

  ProbeTracker bad(Series("b", kS));
  auto first = bad.Record(0, {.ok = false, .message = "x"});
  REQUIRE(first.has_value());
  CHECK(first->message == "probe b failing: x");
}

// A check that answers from a script and can take (fake) time.
class ScriptedCheck final : public ProbeCheck {
 public:
  ScriptedCheck(ManualClock& clock, std::deque<ProbeOutcome> script, int64_t takes_ns = 0)
      : clock_(clock), script_(std::move(script)), takes_ns_(takes_ns) {}
  ProbeOutcome Run(absl::Duration timeout) override {
    timeouts.push_back(timeout);
    clock_.Set(clock_.NowNanos() + takes_ns_);
    if (script_.empty()) return {.ok = true};
    ProbeOutcome o = script_.front();
    script_.pop_front();
    return o;
  }
  std::vector<absl::Duration> timeouts;

 private:
  ManualClock& clock_;
  std::deque<ProbeOutcome> script_;
  const int64_t takes_ns_;
};

TEST_CASE("probe runner: each probe on its own interval, events in order", "[runner][probes]") {
  ManualClock clock(1000 * kS);
  const int64_t origin = clock.NowNanos();
  std::vector<ProbeRunner::Probe> probes;
  auto fast_check = std::make_unique<ScriptedCheck>(
      clock, std::deque<ProbeOutcome>{{.ok = true},
                                      {.ok = false, .message = "down"},
                                      {.ok = false, .message = "down"},
                                      {.ok = true}});
  ScriptedCheck* fast = fast_check.get();
  probes.push_back({.series = Series("fast", 500 * kMs),
                    .timeout = absl::Milliseconds(250),
                    .check = std::move(fast_check)});
  probes.push_back({.series = Series("slow", 2 * kS),
                    .timeout = absl::Seconds(1),
                    .check = std::make_unique<ScriptedCheck>(clock, std::deque<ProbeOutcome>{})});
  ProbeRunner runner(std::move(probes), clock, origin);
  std::vector<int64_t> wakes;
  for (int step = 0; step < 20; ++step) {
    int64_t next = runner.SampleDue();
    if (next > 4 * kS) break;
    wakes.push_back(next);
    clock.Set(origin + next);
  }
  std::vector<reports::ProbeSeries> results = runner.Results();
  REQUIRE(results.size() == 2);
  std::vector<int64_t> fast_times, slow_times;
  for (const auto& s : results[0].samples) fast_times.push_back(s.t_ns);
  for (const auto& s : results[1].samples) slow_times.push_back(s.t_ns);
  CHECK(fast_times == std::vector<int64_t>{0, 500 * kMs, 1000 * kMs, 1500 * kMs, 2000 * kMs,
                                           2500 * kMs, 3000 * kMs, 3500 * kMs, 4000 * kMs});
  CHECK(slow_times == std::vector<int64_t>{0, 2 * kS, 4 * kS});
  CHECK(fast->timeouts.front() == absl::Milliseconds(250));
  std::vector<reports::Event> events = runner.TakeEvents();
  REQUIRE(events.size() == 2);
  CHECK(events[0].t_ns == 500 * kMs);
  CHECK(events[0].message == "probe fast failing: down");
  CHECK(events[1].t_ns == 1500 * kMs);
  CHECK(events[1].message == "probe fast ok again after 1s failing");
  CHECK(runner.TakeEvents().empty());  // taken once
}

TEST_CASE("probe runner: a sample that overruns skips the slots it covered", "[runner][probes]") {
  ManualClock clock(0);
  std::vector<ProbeRunner::Probe> probes;
  // Every sample takes 2.5 intervals of fake time.
  probes.push_back(
      {.series = Series("sluggish", 100 * kMs),
       .timeout = absl::Milliseconds(100),
       .check = std::make_unique<ScriptedCheck>(clock, std::deque<ProbeOutcome>{}, 250 * kMs)});
  ProbeRunner runner(std::move(probes), clock, 0);
  for (int i = 0; i < 4; ++i) clock.Set(runner.SampleDue());
  std::vector<int64_t> times;
  const std::vector<reports::ProbeSeries> results = runner.Results();
  for (const auto& s : results[0].samples) times.push_back(s.t_ns);
  // Sample at 0 ends at 250 ms: the 100 and 200 ms slots are skipped, next at 300 ms.
  CHECK(times == std::vector<int64_t>{0, 300 * kMs, 600 * kMs, 900 * kMs});
}

TEST_CASE("probe runner threads: real clock, Stop cancels a sample in flight", "[runner][probes]") {
  // A check that blocks until cancelled, standing in for a hung server.
  class Hanging final : public ProbeCheck {
   public:
    ProbeOutcome Run(absl::Duration timeout) override {
      ++runs;
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return cancelled; });
      return {.ok = false, .message = cancelled ? "cancelled" : "timed out"};
    }
    void Cancel() override {
      std::lock_guard<std::mutex> lock(mu);
      cancelled = true;
      cv.notify_all();
    }
    std::atomic<int> runs{0};
    std::mutex mu;
    std::condition_variable cv;
    bool cancelled = false;
  };
  auto hanging = std::make_unique<Hanging>();
  Hanging* h = hanging.get();
  Clock& clock = MonotonicClock::Get();
  std::vector<ProbeRunner::Probe> probes;
  probes.push_back({.series = Series("hung", 60 * kS),
                    .timeout = absl::Seconds(60),
                    .check = std::move(hanging)});
  ProbeRunner runner(std::move(probes), clock, clock.NowNanos());
  runner.Start();
  for (int i = 0; i < 500 && h->runs.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // bounded poll
  }
  REQUIRE(h->runs.load() == 1);
  auto start = std::chrono::steady_clock::now();
  runner.Stop();
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("Stop with a hung sample took %.3f s (timeout 60 s)\n", took);
  CHECK(took < 30);
  auto results = runner.Results();
  REQUIRE(results[0].samples.size() == 1);
  CHECK(results[0].samples[0].message == "cancelled");
  runner.Stop();  // idempotent
}

// ---- alert verdicts ----------------------------------------------------------------------

reports::ProbeSeries AlertSeries(std::vector<std::pair<int64_t, int>> firing, int64_t within_ns,
                                 std::vector<std::string> faults = {}) {
  reports::ProbeSeries s;
  s.name = "down-alert";
  s.kind = "alert";
  s.alert = "ReplicaDown";
  s.every_ns = kS;
  s.within_ns = within_ns;
  s.faults = std::move(faults);
  for (auto [t, n] : firing) {
    s.samples.push_back({.t_ns = t, .ok = n == 0, .value = static_cast<double>(n)});
  }
  return s;
}

reports::FaultEvent InjectedFault(std::string name, int64_t injected_ns) {
  return {.name = std::move(name), .kind = "process.kill", .injected_ns = injected_ns};
}

TEST_CASE("alert verdicts: fired within, fired late, never fired, already firing",
          "[runner][probes]") {
  SECTION("fired within: time from injection to the first firing sample") {
    // Injected at 10.3 s; samples every second; firing from the 22 s sample.
    std::vector<std::pair<int64_t, int>> samples;
    for (int t = 0; t <= 40; ++t) samples.push_back({t * kS, t >= 22 && t < 30 ? 1 : 0});
    reports::AnalysisResult a;
    AddProbeVerdicts({AlertSeries(samples, 30 * kS)}, {InjectedFault("kill-one", 10'300 * kMs)}, a);
    REQUIRE(a.alerts.size() == 1);
    CHECK(a.alerts[0].fired);
    CHECK(a.alerts[0].detect_ns == 11'700 * kMs);
    CHECK(a.alerts[0].pass);
    REQUIRE(a.slos.size() == 1);
    CHECK(a.slos[0].name == "alert[ReplicaDown after kill-one]");
    CHECK(a.slos[0].target == "fired within 30s");
    CHECK(a.slos[0].measured == "fired after 11.7s");
    CHECK(a.slos[0].pass);
    CHECK(a.slos_met);
  }
  SECTION("fired, but later than within") {
    std::vector<std::pair<int64_t, int>> samples;
    for (int t = 0; t <= 60; ++t) samples.push_back({t * kS, t >= 50 ? 1 : 0});
    reports::AnalysisResult a;
    AddProbeVerdicts({AlertSeries(samples, 30 * kS)}, {InjectedFault("kill-one", 10 * kS)}, a);
    REQUIRE(a.slos.size() == 1);
    CHECK_FALSE(a.slos[0].pass);
    CHECK(a.slos[0].measured == "fired after 40.0s");
    CHECK(a.slos[0].reason == "alert ReplicaDown fired 40.0s after kill-one, later than 30s");
    CHECK_FALSE(a.slos_met);
  }
  SECTION("never fired, watched longer than within") {
    std::vector<std::pair<int64_t, int>> samples;
    for (int t = 0; t <= 60; ++t) samples.push_back({t * kS, 0});
    reports::AnalysisResult a;
    AddProbeVerdicts({AlertSeries(samples, 30 * kS)}, {InjectedFault("kill-one", 10 * kS)}, a);
    CHECK_FALSE(a.alerts[0].fired);
    CHECK(a.slos[0].measured == "not fired");
    CHECK(a.slos[0].reason ==
          "alert ReplicaDown did not fire within 30s of kill-one (watched for 50.0s)");
  }
  SECTION("not fired when the drill ended before within") {
    std::vector<std::pair<int64_t, int>> samples;
    for (int t = 0; t <= 20; ++t) samples.push_back({t * kS, 0});
    reports::AnalysisResult a;
    AddProbeVerdicts({AlertSeries(samples, 30 * kS)}, {InjectedFault("kill-one", 10 * kS)}, a);
    CHECK_FALSE(a.slos[0].pass);
    CHECK_THAT(a.slos[0].reason, Catch::Contains("had not fired when the drill ended 10.0s after"));
  }
  SECTION("already firing before the injection is not attributed") {
    std::vector<std::pair<int64_t, int>> samples;
    for (int t = 0; t <= 40; ++t) samples.push_back({t * kS, t >= 5 ? 1 : 0});
    reports::AnalysisResult a;
    AddProbeVerdicts({AlertSeries(samples, 30 * kS)}, {InjectedFault("kill-one", 10'500 * kMs)}, a);
    CHECK(a.alerts[0].already_firing);
    CHECK_FALSE(a.alerts[0].pass);
    CHECK(a.slos[0].measured == "already firing");
    CHECK_THAT(a.slos[0].reason, Catch::Contains("cannot be attributed"));
  }
  SECTION("one verdict per judged fault; failed injections and other faults skipped") {
    std::vector<std::pair<int64_t, int>> samples;
    for (int t = 0; t <= 60; ++t) {
      samples.push_back({t * kS, (t >= 12 && t < 20) || (t >= 43 && t < 50) ? 1 : 0});
    }
    reports::FaultEvent failed = InjectedFault("never", 30 * kS);
    failed.inject_failed = true;
    std::vector<reports::FaultEvent> faults = {InjectedFault("first", 10 * kS), failed,
                                               InjectedFault("second", 40 * kS),
                                               InjectedFault("other", 41 * kS)};
    reports::AnalysisResult a;
    AddProbeVerdicts({AlertSeries(samples, 5 * kS, {"first", "second", "never"})}, faults, a);
    REQUIRE(a.alerts.size() == 2);
    CHECK(a.alerts[0].fault == "first");
    CHECK(a.alerts[0].detect_ns == 2 * kS);
    CHECK(a.alerts[1].fault == "second");
    CHECK(a.alerts[1].detect_ns == 3 * kS);
    CHECK(a.slos_met);
    // Without a filter every injected fault is judged: "other" (41 s) is credited with the
    // firing that "second" caused (2 s) — what `faults` is for.
    reports::AnalysisResult all;
    AddProbeVerdicts({AlertSeries(samples, 5 * kS)}, faults, all);
    CHECK(all.alerts.size() == 3);
  }
  SECTION("non-alert probes give no verdicts") {
    reports::ProbeSeries s = Series("ready", kS);
    s.samples.push_back({.t_ns = 0, .ok = false});
    reports::AnalysisResult a;
    AddProbeVerdicts({s}, {InjectedFault("kill-one", 0)}, a);
    CHECK(a.slos.empty());
    CHECK(a.alerts.empty());
  }
}

// ---- ready and golden against a fake OIP server ---------------------------------------

class FakeOip final : public inference::GRPCInferenceService::Service {
 public:
  std::atomic<bool> server_ready{true}, model_ready{true}, wrong{false}, fail{false};
  std::atomic<int> model_ready_calls{0};
  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* r) override {
    r->set_ready(server_ready.load());
    return grpc::Status::OK;
  }
  grpc::Status ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest* q,
                          inference::ModelReadyResponse* r) override {
    ++model_ready_calls;
    if (q->name() != "tiny-mlp") return grpc::Status(grpc::StatusCode::NOT_FOUND, "no model");
    r->set_ready(model_ready.load());
    return grpc::Status::OK;
  }
  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest*,
                          inference::ModelInferResponse* r) override {
    if (fail.load()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "replica down");
    r->add_outputs()->mutable_contents()->add_fp32_contents(wrong.load() ? -1 : 42);
    return grpc::Status::OK;
  }
};

struct OipServer {
  FakeOip service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  OipServer() {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service);
    server = b.BuildAndStart();
  }
  ~OipServer() { server->Shutdown(std::chrono::system_clock::now()); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
};

TEST_CASE("ready and golden checks against an OIP server", "[runner][probes]") {
  OipServer s;
  auto channel = grpc::CreateChannel(s.address(), grpc::InsecureChannelCredentials());
  auto ready = MakeReadyCheck(channel, "tiny-mlp");
  CHECK(ready->Run(absl::Seconds(5)).ok);
  s.service.model_ready = false;
  ProbeOutcome m = ready->Run(absl::Seconds(5));
  CHECK_FALSE(m.ok);
  CHECK(m.message == "ModelReady: model tiny-mlp not ready");
  s.service.server_ready = false;
  int calls = s.service.model_ready_calls.load();
  CHECK(ready->Run(absl::Seconds(5)).message == "ServerReady: server not ready");
  CHECK(s.service.model_ready_calls.load() == calls);  // no ModelReady when the server is not
  auto unknown = MakeReadyCheck(channel, "other");
  s.service.server_ready = true;
  CHECK_THAT(unknown->Run(absl::Seconds(5)).message,
             Catch::StartsWith("ModelReady other: NOT_FOUND: no model"));

  auto golden = MakeGoldenCheck(
      channel, inference::ModelInferRequest(), [](const inference::ModelInferResponse& r) {
        return r.outputs_size() == 1 && r.outputs(0).contents().fp32_contents(0) == 42;
      });
  CHECK(golden->Run(absl::Seconds(5)).ok);
  s.service.wrong = true;
  CHECK(golden->Run(absl::Seconds(5)).message ==
        "ModelInfer: the answer differs from the golden output");
  s.service.fail = true;
  CHECK(golden->Run(absl::Seconds(5)).message == "ModelInfer: UNAVAILABLE: replica down");
  golden->Cancel();
  CHECK_THAT(golden->Run(absl::Seconds(5)).message, Catch::Contains("CANCELLED"));

  // Nobody listening: a quick, explained failure.
  s.server->Shutdown(std::chrono::system_clock::now());
  ProbeOutcome gone =
      MakeReadyCheck(grpc::CreateChannel(s.address(), grpc::InsecureChannelCredentials()),
                     "tiny-mlp")
          ->Run(absl::Seconds(2));
  CHECK_FALSE(gone.ok);
  CHECK_THAT(gone.message, Catch::StartsWith("ServerReady: "));
}

TEST_CASE("probe runner from a scenario: kinds, names, refusals", "[runner][probes]") {
  scenarios::Scenario sc;
  sc.probes.push_back({.name = "r", .check = scenarios::ReadyProbe{}});
  sc.probes.push_back({.name = "q",
                       .every = absl::Milliseconds(500),
                       .timeout = absl::Seconds(1),
                       .check = scenarios::PrometheusProbe{
                           .url = "http://127.0.0.1:9", .query = "up", .below = 2, .above = 0}});
  sc.probes.push_back({.name = "a",
                       .check = scenarios::AlertProbe{.url = "http://127.0.0.1:9/",
                                                      .alert = "Down",
                                                      .within = absl::Seconds(30),
                                                      .faults = {"kill"}}});
  ManualClock clock(0);
  ProbeTarget target{.address = "127.0.0.1:9", .model = "tiny-mlp"};
  auto runner = ProbeRunner::Create(sc, target, clock, 0);
  REQUIRE(runner.ok());
  auto results = (*runner)->Results();
  REQUIRE(results.size() == 3);
  CHECK(results[0].kind == "ready");
  CHECK(results[0].check == "ServerReady + ModelReady tiny-mlp");
  CHECK(results[1].kind == "prometheus");
  CHECK(results[1].check == "up > 0 < 2");
  CHECK(results[1].every_ns == 500 * kMs);
  CHECK(results[2].kind == "alert");
  CHECK(results[2].alert == "Down");
  CHECK(results[2].within_ns == 30 * kS);
  CHECK(results[2].faults == std::vector<std::string>{"kill"});

  sc.probes.push_back({.name = "g", .check = scenarios::GoldenProbe{}});
  auto refused = ProbeRunner::Create(sc, target, clock, 0);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(std::string(refused.status().message()),
             Catch::Contains("probe g: a golden probe needs a golden answer"));
  sc.probes.back().check = scenarios::PrometheusProbe{.url = "https://x", .query = "up"};
  auto https = ProbeRunner::Create(sc, target, clock, 0);
  REQUIRE_FALSE(https.ok());
  CHECK_THAT(std::string(https.status().message()), Catch::Contains("probe g: Prometheus URL"));
}

// ---- the record ----------------------------------------------------------------------------

reports::RunRecord RecordWithProbes() {
  reports::RunRecord r;
  r.run_id = "probes-20261123T190500Z-0000";
  r.scenario_name = "probes";
  r.faults = {InjectedFault("kill-one", 10 * kS)};
  reports::ProbeSeries q;
  q.name = "errors";
  q.kind = "prometheus";
  q.check = "sum(rate(errors[1m])) < 0.05";
  q.every_ns = kS;
  q.samples = {{.t_ns = 0, .ok = true, .value = 0.0},
               {.t_ns = kS, .ok = false, .message = "the query returned no series"},
               {.t_ns = 2 * kS, .ok = false, .value = 0.5, .message = "value 0.5, not below 0.05"}};
  r.probes = {q, AlertSeries({{9 * kS, 0}, {11 * kS, 0}, {12 * kS, 1}}, 30 * kS, {"kill-one"})};
  AddProbeVerdicts(r.probes, r.faults, r.analysis);
  return r;
}

TEST_CASE("probe series and alert results survive the record's JSON", "[runner][probes]") {
  reports::RunRecord r = RecordWithProbes();
  REQUIRE(r.analysis.alerts.size() == 1);
  nlohmann::json j = reports::ToJson(r);
  CHECK(j["probes"][0]["samples"][1]["value"].is_null());
  CHECK(j["analysis"]["alerts"][0]["detect_ns"] == 2 * kS);
  auto back = reports::FromJson(j);
  REQUIRE(back.ok());
  CHECK(back->probes == r.probes);
  CHECK(back->analysis.alerts == r.analysis.alerts);
  CHECK(back->analysis.slos == r.analysis.slos);
  // A record without probes has neither key, and older readers' records still load.
  nlohmann::json plain = reports::ToJson(reports::RunRecord{});
  CHECK_FALSE(plain.contains("probes"));
  CHECK_FALSE(plain["analysis"].contains("alerts"));
  // Corrupt probe data is refused with its path.
  j["probes"][1]["samples"][0]["ok"] = "yes";
  auto bad = reports::FromJson(j);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()),
             Catch::Contains("probes[1].samples[0].ok: expected true or false"));
  j = reports::ToJson(r);
  j["probes"][0]["kind"] = "telepathy";
  CHECK_THAT(std::string(reports::FromJson(j).status().message()),
             Catch::Contains("probes[0].kind: expected one of ready, golden"));
}

TEST_CASE("a record with probes validates against the JSON schema", "[runner][probes][schema]") {
  const bool have =
      testing::RunCommand({"/usr/bin/python3", "-c", "import jsonschema"}, 30'000).exit_code == 0;
  if (testing::SkipUnless(have, "needs python3-jsonschema (scripts/install-deps.sh)")) return;
  testing::TempDir dir;
  std::string path = dir.path() + "/r.json";
  REQUIRE(reports::WriteRunRecord(RecordWithProbes(), path).ok());
  testing::CommandResult res = testing::RunCommand(
      {"/usr/bin/python3", "-c",
       "import json,sys,jsonschema\n"
       "v=jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))\n"
       "errs=[(list(e.absolute_path), e.message[:160]) for e in v.iter_errors(json.load(open("
       "sys.argv[2])))]\n"
       "print(errs)\n"
       "sys.exit(1 if errs else 0)\n",
       testing::SourcePath("reports/run_record.schema.json"), path},
      60'000);
  INFO(res.out << res.err);
  CHECK(res.exit_code == 0);
}

// ---- a real Prometheus --------------------------------------------------------------------

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return -1;
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Polls `done` every 50 ms until it holds or `seconds` pass.
template <typename F>
bool WaitFor(F done, double seconds) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

TEST_CASE("prometheus and alert probes against a real Prometheus", "[runner][probes][slow]") {
  const std::string binary = reference::FindExecutable("prometheus");
  if (testing::SkipUnless(!binary.empty(),
                          "needs Debian's prometheus (scripts/install-deps.sh installs it)")) {
    return;
  }
  // The scrape target: one gauge the test drives.
  std::atomic<int> errors{0};
  auto metrics = reference::MetricsHttpServer::Start("127.0.0.1:0", [&] {
    return absl::StrCat("# TYPE chaosdrill_test_errors gauge\nchaosdrill_test_errors ",
                        errors.load(), "\n");
  });
  REQUIRE(metrics.ok());
  testing::TempDir dir;
  dir.Write("rules.yml",
            "groups:\n"
            "  - name: chaosdrill-test\n"
            "    interval: 1s\n"
            "    rules:\n"
            "      - alert: TestErrors\n"
            "        expr: chaosdrill_test_errors > 0\n"
            "        for: 0s\n");
  const std::string config = dir.Write(
      "prometheus.yml", absl::StrCat("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                                     "rule_files: [",
                                     dir.path(),
                                     "/rules.yml]\n"
                                     "scrape_configs:\n"
                                     "  - job_name: test\n"
                                     "    static_configs: [{targets: ['",
                                     (*metrics)->address(), "']}]\n"));
  // A free port can be taken between our check and Prometheus's bind: retry a few times.
  std::unique_ptr<reference::ChildProcess> prom;
  std::string url;
  for (int attempt = 0; attempt < 3 && !prom; ++attempt) {
    const int port = FreeLoopbackPort();
    REQUIRE(port > 0);
    auto child = reference::ChildProcess::Spawn(
        {binary, "--config.file=" + config, "--storage.tsdb.path=" + dir.path() + "/data",
         absl::StrCat("--web.listen-address=127.0.0.1:", port), "--log.level=warn"},
        dir.path() + "/prometheus.log");
    REQUIRE(child.ok());
    url = absl::StrCat("http://127.0.0.1:", port);
    HttpUrl base = *ParseHttpUrl(url);
    const bool up = WaitFor(
        [&] {
          if ((*child)->Poll()) return true;
          auto r = HttpGet(base, "/-/ready", absl::Milliseconds(500));
          return r.ok() && r->status == 200;
        },
        30);
    if (up && !(*child)->Poll()) prom = std::move(*child);
  }
  REQUIRE(prom != nullptr);
  auto client = HttpPrometheusClient::Create(url);
  REQUIRE(client.ok());
  // Wait for the first scrape (the series exists with value 0).
  REQUIRE(WaitFor(
      [&] {
        auto r = (*client)->Query("chaosdrill_test_errors", absl::Seconds(1));
        return r.ok() && r->samples.size() == 1;
      },
      20));

  // The probes, on the real clock, every 250 ms.
  Clock& clock = MonotonicClock::Get();
  const int64_t origin = clock.NowNanos();
  scenarios::Scenario sc;
  sc.probes.push_back({.name = "errors",
                       .every = absl::Milliseconds(250),
                       .timeout = absl::Milliseconds(250),
                       .check = scenarios::PrometheusProbe{
                           .url = url, .query = "sum(chaosdrill_test_errors)", .below = 1}});
  sc.probes.push_back({.name = "errors-alert",
                       .every = absl::Milliseconds(250),
                       .timeout = absl::Milliseconds(250),
                       .check = scenarios::AlertProbe{
                           .url = url, .alert = "TestErrors", .within = absl::Seconds(15)}});
  auto runner = ProbeRunner::Create(sc, {.address = "127.0.0.1:1"}, clock, origin);
  REQUIRE(runner.ok());
  (*runner)->Start();
  auto last = [&](size_t i) -> std::optional<reports::ProbeSample> {
    auto r = (*runner)->Results();
    if (r[i].samples.empty()) return std::nullopt;
    return r[i].samples.back();
  };
  // Healthy first: value 0 below 1, alert not firing.
  REQUIRE(WaitFor([&] { return last(0) && last(1); }, 10));
  CHECK(last(0)->ok);
  CHECK(last(0)->value == 0);
  CHECK(last(1)->ok);
  CHECK(last(1)->value == 0);

  // "Inject": the metric goes bad; the alert must fire.
  const int64_t injected = clock.NowNanos() - origin;
  errors = 3;
  const bool fired = WaitFor([&] { return last(1) && !last(1)->ok; }, 20);
  // Let the instant probe see the new value too (it scrapes on the same 1 s cycle).
  const bool seen = WaitFor([&] { return last(0) && last(0)->value == 3; }, 10);
  (*runner)->Stop();
  prom->Stop(absl::Seconds(5));
  CHECK_FALSE(prom->running());
  REQUIRE(fired);
  REQUIRE(seen);

  std::vector<reports::ProbeSeries> results = (*runner)->Results();
  CHECK_FALSE(results[0].samples.back().ok);
  CHECK(results[0].samples.back().message == "value 3, not below 1");
  CHECK(results[1].samples.back().message == "alert TestErrors firing (1 series)");
  std::vector<reports::Event> events = (*runner)->TakeEvents();
  int failing = 0;
  for (const reports::Event& e : events) {
    std::printf("event %.3fs: %s\n", e.t_ns / 1e9, e.message.c_str());
    failing += absl::StrContains(e.message, "failing") ? 1 : 0;
  }
  CHECK(failing == 2);  // one per probe, nothing flapped

  reports::AnalysisResult a;
  AddProbeVerdicts(results, {InjectedFault("bad-metric", injected)}, a);
  REQUIRE(a.alerts.size() == 1);
  const reports::AlertDetection& d = a.alerts[0];
  std::printf(
      "alert TestErrors: time to detect %.3f s (%s; scrape 1 s, evaluation 1 s, "
      "probe every 0.25 s)\n",
      d.detect_ns / 1e9, a.slos[0].measured.c_str());
  // The samples around the detection, for the worked example in docs/measurements.md.
  std::printf("metric changed at %.3f s\n", injected / 1e9);
  for (size_t p = 0; p < results.size(); ++p) {
    const reports::ProbeSample* before = nullptr;
    const reports::ProbeSample* first_bad = nullptr;
    for (const reports::ProbeSample& x : results[p].samples) {
      if (x.t_ns < injected || x.ok) {
        if (first_bad == nullptr) before = &x;
        continue;
      }
      if (first_bad == nullptr) first_bad = &x;
    }
    std::printf("probe %s: last ok sample %.3f s, first failing sample %.3f s (%s)\n",
                results[p].name.c_str(), before ? before->t_ns / 1e9 : -1.0,
                first_bad ? first_bad->t_ns / 1e9 : -1.0,
                first_bad ? first_bad->message.c_str() : "");
  }
  CHECK(d.fired);
  CHECK_FALSE(d.already_firing);
  // The alert cannot be seen before the next scrape after the change has been evaluated;
  // it must be seen within a scrape + an evaluation + a probe interval, plus generous
  // slack for a loaded 2-core machine (15 s is the probe's `within`).
  CHECK(d.detect_ns > 0);
  CHECK(d.detect_ns <= 15 * kS);
  CHECK(d.pass);
  CHECK(a.slos[0].name == "alert[TestErrors after bad-metric]");
  CHECK_THAT(a.slos[0].measured, Catch::StartsWith("fired after "));
}

}  // namespace
}  // namespace chaosdrill::runner
