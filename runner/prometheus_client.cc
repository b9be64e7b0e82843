#include "runner/prometheus_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace chaosdrill::runner {
namespace {

constexpr size_t kMaxResponse = 4 << 20;
using SteadyTime = std::chrono::steady_clock::time_point;

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Milliseconds left until `deadline` for poll(), at least 0.
int MsLeft(SteadyTime deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

// Waits for `events` on fd; DeadlineExceeded when the deadline passes first, Cancelled
// when `cancel_fd` (>= 0) is readable.
absl::Status Wait(int fd, short events, SteadyTime deadline, absl::string_view doing,
                  int cancel_fd) {
  while (true) {
    pollfd p[2] = {{.fd = fd, .events = events, .revents = 0},
                   {.fd = cancel_fd, .events = POLLIN, .revents = 0}};
    int n = poll(p, cancel_fd >= 0 ? 2 : 1, MsLeft(deadline));
    if (n > 0 && cancel_fd >= 0 && p[1].revents != 0) {
      return absl::CancelledError(absl::StrCat(doing, ": cancelled (the drill is ending)"));
    }
    if (n > 0) return absl::OkStatus();
    if (n == 0) return absl::DeadlineExceededError(absl::StrCat(doing, ": timed out"));
    if (errno != EINTR) return ErrnoStatus(doing);
  }
}

absl::StatusOr<int> Connect(const HttpUrl& url, SteadyTime deadline, int cancel_fd,
                            std::string* where) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(url.port);
  *where = url.ToString();
  if (int rc = getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("resolving ", url.host, " for ", *where, ": ", gai_strerror(rc)));
  }
  absl::Status last =
      absl::UnavailableError(absl::StrCat("connecting to ", *where, ": no address"));
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last = ErrnoStatus(absl::StrCat("creating a socket for ", *where));
      continue;
    }
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = absl::UnavailableError(absl::StrCat("connecting to ", *where, ": ", strerror(errno)));
      close(fd);
      continue;
    }
    absl::Status w = Wait(fd, POLLOUT, deadline, absl::StrCat("connecting to ", *where), cancel_fd);
    int err = 0;
    socklen_t len = sizeof(err);
    if (w.ok() && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
      freeaddrinfo(found);
      return fd;
    }
    last = w.ok() ? absl::UnavailableError(
                        absl::StrCat("connecting to ", *where, ": ", strerror(err ? err : errno)))
                  : w;
    close(fd);
    if (!w.ok()) break;  // the deadline is spent
  }
  freeaddrinfo(found);
  return last;
}

// Decodes as much of a chunked body as has arrived; *complete once the last chunk is in.
absl::StatusOr<std::string> Dechunk(absl::string_view in, bool* complete) {
  std::string out;
  *complete = false;
  while (true) {
    size_t eol = in.find("\r\n");
    if (eol == absl::string_view::npos) return out;
    absl::string_view size_text = in.substr(0, eol);
    size_text = size_text.substr(0, size_text.find(';'));  // chunk extensions
    uint64_t size = 0;
    if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(size_text), &size) || size > kMaxResponse) {
      return absl::DataLossError("malformed chunked body");
    }
    if (size == 0) {
      *complete = true;
      return out;
    }
    if (in.size() < eol + 2 + size + 2) return out;
    out.append(in.data() + eol + 2, size);
    in.remove_prefix(eol + 2 + size + 2);
  }
}

struct Parsed {
  bool headers_done = false;
  bool complete = false;
  HttpResponse response;
};

// Parses what has arrived so far. `eof`: the server closed the connection.
absl::StatusOr<Parsed> ParseHttp(const std::string& raw, bool eof) {
  Parsed p;
  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    if (eof) return absl::DataLossError("connection closed before the HTTP headers ended");
    return p;
  }
  p.headers_done = true;
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::string_view(raw).substr(0, head_end), "\r\n");
  std::vector<absl::string_view> status = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status.size() < 2 || !absl::StartsWith(status[0], "HTTP/1.") ||
      !absl::SimpleAtoi(status[1], &p.response.status)) {
    return absl::DataLossError(
        absl::StrCat("not an HTTP response: \"", lines[0].substr(0, 60), "\""));
  }
  std::optional<uint64_t> length;
  bool chunked = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    absl::string_view value = absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (name == "content-length") {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(value, &n)) return absl::DataLossError("bad Content-Length");
      length = n;
    } else if (name == "transfer-encoding") {
      chunked = absl::StrContains(absl::AsciiStrToLower(value), "chunked");
    }
  }
  absl::string_view body = absl::string_view(raw).substr(head_end + 4);
  if (chunked) {
    bool done = false;
    auto b = Dechunk(body, &done);
    if (!b.ok()) return b.status();
    p.response.body = std::move(*b);
    p.complete = done;
  } else if (length) {
    if (*length > kMaxResponse) return absl::ResourceExhaustedError("response body over 4 MiB");
    p.complete = body.size() >= *length;
    p.response.body = std::string(body.substr(0, *length));
  } else {
    p.complete = eof;
    p.response.body = std::string(body);
  }
  if (eof && !p.complete) {
    return absl::DataLossError("connection closed in the middle of the response body");
  }
  return p;
}

std::string Clip(absl::string_view s, size_t n = 200) {
  return s.size() <= n ? std::string(s) : absl::StrCat(s.substr(0, n), "...");
}

}  // namespace

std::string HttpUrl::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return absl::StrCat("http://", v6 ? "[" : "", host, v6 ? "]" : "", ":", port, path_prefix);
}

absl::StatusOr<HttpUrl> ParseHttpUrl(absl::string_view url) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("Prometheus URL \"", url, "\": ", why,
                                                   " (expected http://host[:port][/path])"));
  };
  if (!absl::StartsWith(url, "http://")) return bad("only http:// is supported");
  absl::string_view rest = url.substr(7);
  if (rest.find_first_of("?#@ ") != absl::string_view::npos) {
    return bad("no query, fragment, user info or spaces allowed");
  }
  size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  HttpUrl out;
  if (slash != absl::string_view::npos) {
    out.path_prefix = std::string(rest.substr(slash));
    while (!out.path_prefix.empty() && out.path_prefix.back() == '/') out.path_prefix.pop_back();
  }
  absl::string_view port;
  if (absl::StartsWith(authority, "[")) {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) return bad("unclosed [");
    out.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after ]");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else {
    size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
  }
  if (out.host.empty()) return bad("no host");
  if (!port.empty() && (!absl::SimpleAtoi(port, &out.port) || out.port < 1 || out.port > 65535)) {
    return bad("port must be 1..65535");
  }
  return out;
}

std::string UrlEncode(absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

absl::StatusOr<HttpResponse> HttpGet(const HttpUrl& base, absl::string_view target,
                                     absl::Duration timeout, int cancel_fd) {
  const SteadyTime deadline =
      std::chrono::steady_clock::now() +
      std::chrono::nanoseconds(absl::ToInt64Nanoseconds(std::max(timeout, absl::ZeroDuration())));
  std::string where;
  ASSIGN_OR_RETURN(int raw_fd, Connect(base, deadline, cancel_fd, &where));
  UniqueFd fd(raw_fd);
  const bool v6 = base.host.find(':') != std::string::npos;
  const std::string request = absl::StrCat(
      "GET ", base.path_prefix, target, " HTTP/1.1\r\nHost: ", v6 ? "[" : "", base.host,
      v6 ? "]" : "", ":", base.port,
      "\r\nUser-Agent: chaosdrill-probe\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
  const std::string doing = absl::StrCat("GET ", where, target.substr(0, target.find('?')));
  size_t sent = 0;
  while (sent < request.size()) {
    RETURN_IF_ERROR(Wait(fd.get(), POLLOUT, deadline, doing, cancel_fd));
    ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(absl::StrCat(doing, ": sending: ", strerror(errno)));
    }
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[16384];
  while (true) {
    RETURN_IF_ERROR(Wait(fd.get(), POLLIN, deadline, doing, cancel_fd));
    ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(absl::StrCat(doing, ": receiving: ", strerror(errno)));
    }
    if (n > 0) raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > kMaxResponse + 65536) {
      return absl::ResourceExhaustedError(absl::StrCat(doing, ": response over 4 MiB"));
    }
    auto parsed = ParseHttp(raw, /*eof=*/n == 0);
    if (!parsed.ok()) return Annotate(parsed.status(), doing);
    if (parsed->complete) return std::move(parsed->response);
  }
}

absl::StatusOr<PromQueryResult> ParsePromQueryResponse(int http_status, absl::string_view body) {
  using nlohmann::json;
  const std::string context = absl::StrCat("Prometheus answered HTTP ", http_status);
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(
        absl::StrCat(context, " with a body that is not a JSON object: \"", Clip(body, 80), "\""));
  }
  auto str = [&](const char* key) -> std::string {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string status = str("status");
  if (status == "error") {
    return absl::InvalidArgumentError(absl::StrCat(
        context, ", query failed (", str("errorType").empty() ? "unknown" : str("errorType"),
        "): ", Clip(str("error"))));
  }
  if (status != "success") {
    return absl::DataLossError(
        absl::StrCat(context, " without status \"success\" or \"error\": ", Clip(j.dump(), 80)));
  }
  if (http_status != 200) {
    return absl::DataLossError(absl::StrCat(context, " with status \"success\""));
  }
  auto data = j.find("data");
  if (data == j.end() || !data->is_object() || !data->contains("resultType") ||
      !(*data)["resultType"].is_string() || !data->contains("result")) {
    return absl::DataLossError(absl::StrCat(context, ": no data.resultType / data.result"));
  }
  // [<unix seconds>, "<value>"]
  auto point = [&](const json& v, double* out) -> absl::Status {
    if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_string()) {
      return absl::DataLossError(
          absl::StrCat(context, ": expected a sample [time, \"value\"], got ", Clip(v.dump(), 80)));
    }
    const std::string text = v[1].get<std::string>();
    if (!absl::SimpleAtod(text, out)) {
      return absl::DataLossError(
          absl::StrCat(context, ": sample value \"", Clip(text, 40), "\" is not a number"));
    }
    return absl::OkStatus();
  };
  PromQueryResult result;
  result.type = (*data)["resultType"].get<std::string>();
  const json& r = (*data)["result"];
  if (result.type == "scalar") {
    PromSample s;
    RETURN_IF_ERROR(point(r, &s.value));
    result.samples.push_back(std::move(s));
    return result;
  }
  if (result.type != "vector") {
    return absl::InvalidArgumentError(absl::StrCat(
        context, ": the query returned a ", result.type,
        result.type == "matrix" ? " (a range vector: drop the [range] or wrap it in a function)"
                                : "",
        "; expected an instant vector or a scalar"));
  }
  if (!r.is_array()) {
    return absl::DataLossError(absl::StrCat(context, ": data.result of a vector is not a list"));
  }
  for (const json& e : r) {
    if (!e.is_object() || !e.contains("value")) {
      return absl::DataLossError(
          absl::StrCat(context, ": vector element without a value: ", Clip(e.dump(), 80)));
    }
    PromSample s;
    RETURN_IF_ERROR(point(e["value"], &s.value));
    if (auto m = e.find("metric"); m != e.end() && m->is_object()) {
      for (const auto& [k, v] : m->items()) {
        if (v.is_string()) s.labels[k] = v.get<std::string>();
      }
    }
    result.samples.push_back(std::move(s));
  }
  return result;
}

absl::StatusOr<std::unique_ptr<HttpPrometheusClient>> HttpPrometheusClient::Create(
    absl::string_view url) {
  ASSIGN_OR_RETURN(HttpUrl base, ParseHttpUrl(url));
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return ErrnoStatus(absl::StrCat("creating the cancel pipe of the Prometheus client for ", url));
  }
  return std::unique_ptr<HttpPrometheusClient>(
      new HttpPrometheusClient(std::move(base), fds[0], fds[1]));
}

HttpPrometheusClient::~HttpPrometheusClient() {
  close(cancel_read_);
  close(cancel_write_);
}

void HttpPrometheusClient::Cancel() {
  char byte = 1;
  // The pipe stays readable from now on; a full pipe (already cancelled) is fine.
  (void)!write(cancel_write_, &byte, 1);
}

absl::StatusOr<PromQueryResult> HttpPrometheusClient::Query(const std::string& promql,
                                                            absl::Duration timeout) {
  // Prometheus's own evaluation timeout a little under ours, so a slow query comes back as
  // Prometheus's error rather than as our timeout.
  const int64_t server_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout) * 9 / 10);
  ASSIGN_OR_RETURN(HttpResponse r, HttpGet(base_,
                                           absl::StrCat("/api/v1/query?query=", UrlEncode(promql),
                                                        "&timeout=", server_ms, "ms"),
                                           timeout, cancel_read_));
  return ParsePromQueryResponse(r.status, r.body);
}

}  // namespace chaosdrill::runner
