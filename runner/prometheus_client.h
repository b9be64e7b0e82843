// A small client for Prometheus's HTTP API, just enough for the drill's probes: an instant
// PromQL query (GET /api/v1/query?query=...) over plain HTTP/1.1 on a fresh TCP
// connection per query, every step bounded by the caller's timeout, and a strict parser of
// the JSON answer. No TLS and no new dependency: sockets, poll and nlohmann-json, which
// the reports already use (docs/architecture.md, "Prometheus probes").
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace chaosdrill::runner {

// "http://host[:port][/prefix]" split up. Host is as written, without IPv6 brackets.
struct HttpUrl {
  std::string host;
  int port = 80;
  std::string path_prefix;  // "" or "/prefix", never ending in '/'

  std::string ToString() const;
};

// InvalidArgument (naming the URL) for anything but a plain http:// base URL.
absl::StatusOr<HttpUrl> ParseHttpUrl(absl::string_view url);

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string UrlEncode(absl::string_view s);

struct HttpResponse {
  int status = 0;
  std::string body;  // de-chunked
};

// One GET of `target` ("/path?query") on a new connection ("Connection: close"). The whole
// exchange — resolve, connect, send, receive — is bounded by `timeout`; bodies over 4 MiB
// are refused. Content-Length, chunked and read-to-close bodies are understood.
// DeadlineExceeded on timeout, Unavailable when the server cannot be reached, Cancelled
// as soon as `cancel_fd` (when >= 0) becomes readable.
absl::StatusOr<HttpResponse> HttpGet(const HttpUrl& base, absl::string_view target,
                                     absl::Duration timeout, int cancel_fd = -1);

// One element of an instant query's result. A scalar result is one sample without labels.
struct PromSample {
  std::map<std::string, std::string> labels;
  double value = 0;  // may be NaN or +-Inf, as Prometheus writes them
};

struct PromQueryResult {
  std::string type;  // "vector" or "scalar"
  std::vector<PromSample> samples;
};

// Parses the answer of /api/v1/query. Success needs status "success" and an instant
// vector or scalar; anything else is an error saying what came back: status "error" ->
// InvalidArgument with Prometheus's errorType and error; a matrix or string result, a
// non-JSON body or a malformed one -> InvalidArgument / DataLoss. `http_status` only adds
// context (Prometheus answers 400/422/503 with an error body).
absl::StatusOr<PromQueryResult> ParsePromQueryResponse(int http_status, absl::string_view body);

// The seam the probes use, so their logic is tested against a fake.
class PrometheusClient {
 public:
  virtual ~PrometheusClient() = default;
  virtual absl::StatusOr<PromQueryResult> Query(const std::string& promql,
                                                absl::Duration timeout) = 0;
  virtual std::string Describe() const = 0;  // "http://127.0.0.1:9090"
  // From any thread: ends a Query in progress, and every later one, with Cancelled.
  virtual void Cancel() {}
};

class HttpPrometheusClient final : public PrometheusClient {
 public:
  static absl::StatusOr<std::unique_ptr<HttpPrometheusClient>> Create(absl::string_view url);
  ~HttpPrometheusClient() override;
  HttpPrometheusClient(const HttpPrometheusClient&) = delete;
  HttpPrometheusClient& operator=(const HttpPrometheusClient&) = delete;

  absl::StatusOr<PromQueryResult> Query(const std::string& promql, absl::Duration timeout) override;
  std::string Describe() const override { return base_.ToString(); }
  void Cancel() override;

 private:
  HttpPrometheusClient(HttpUrl base, int cancel_read, int cancel_write)
      : base_(std::move(base)), cancel_read_(cancel_read), cancel_write_(cancel_write) {}
  const HttpUrl base_;
  const int cancel_read_;  // readable once Cancel() ran
  const int cancel_write_;
};

}  // namespace chaosdrill::runner
