#include "tests/reference/service_test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "reference/child_process.h"
#include "tests/test_support.h"

namespace chaosdrill::reference::testing {

bool HaveRedis() {
  return !FindExecutable("redis-server").empty() && !FindExecutable("redis-sentinel").empty();
}

bool HaveCliReference() {
  if (access(chaosdrill::testing::ChaosdrillBinary().c_str(), X_OK) != 0) return false;
  return chaosdrill::testing::RunCommand(
             {chaosdrill::testing::ChaosdrillBinary(), "reference", "--help"}, 10'000)
             .exit_code == 0;
}

std::vector<ProcStat> AllProcesses() {
  std::vector<ProcStat> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
    std::string line;
    if (!std::getline(in, line)) continue;
    size_t paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(line.substr(paren + 2), ' ');
    if (f.size() < 4 || f[0] == "Z") continue;  // zombies hold nothing
    ProcStat p;
    p.pid = pid;
    (void)absl::SimpleAtoi(f[1], &p.ppid);
    (void)absl::SimpleAtoi(f[2], &p.pgid);
    (void)absl::SimpleAtoi(f[3], &p.sid);
    out.push_back(p);
  }
  closedir(d);
  return out;
}

std::vector<ProcStat> Leftovers(const std::set<pid_t>& pids, pid_t session) {
  std::vector<ProcStat> left;
  for (const ProcStat& p : AllProcesses()) {
    if (pids.count(p.pid) || pids.count(p.pgid) || (session > 0 && p.sid == session)) {
      left.push_back(p);
    }
  }
  return left;
}

void Remember(const Topology& t, std::set<pid_t>& pids) {
  for (const auto& [role, r] : t.roles) {
    if (r.pid > 0) pids.insert(r.pid);
  }
}

std::string HttpGet(const std::string& address, const std::string& path) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return "";
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port)) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1) return "";
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: x\r\n\r\n");
  (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, n);
  ::close(fd);
  return out;
}

std::optional<double> PromValue(const std::string& body, const std::string& name,
                                const std::map<std::string, std::string>& labels) {
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    if (line[0] == '#' || !absl::StartsWith(line, name)) continue;
    absl::string_view rest = line.substr(name.size());
    std::map<std::string, std::string> have;
    if (!rest.empty() && rest[0] == '{') {
      const size_t close = rest.find('}');
      if (close == absl::string_view::npos) continue;
      // Label values here never hold ',' or '"' (addresses, codes, method names).
      for (absl::string_view kv :
           absl::StrSplit(rest.substr(1, close - 1), ',', absl::SkipEmpty())) {
        const size_t eq = kv.find('=');
        if (eq == absl::string_view::npos || kv.size() < eq + 3) continue;
        have[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 2, kv.size() - eq - 3));
      }
      rest = rest.substr(close + 1);
    }
    if (rest.empty() || rest[0] != ' ' || have != labels) continue;
    double v = 0;
    if (absl::SimpleAtod(rest.substr(1), &v)) return v;
  }
  return std::nullopt;
}

std::optional<double> ScrapeValue(const std::string& metrics_address, const std::string& name,
                                  const std::map<std::string, std::string>& labels) {
  const std::string response = HttpGet(metrics_address, "/metrics");
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.0 200", 0) != 0 || body == std::string::npos) return std::nullopt;
  return PromValue(response.substr(body + 4), name, labels);
}

SessionClient::SessionClient(const std::string& gateway)
    : stub_(v1::SessionService::NewStub(
          grpc::CreateChannel(gateway, grpc::InsecureChannelCredentials()))) {}

absl::StatusOr<v1::AppendResponse> SessionClient::Append(const std::string& session, uint64_t seq,
                                                         const std::string& payload,
                                                         int timeout_ms) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  v1::AppendRequest req;
  req.set_session(session);
  req.set_seq(seq);
  req.set_payload(payload);
  v1::AppendResponse resp;
  grpc::Status s = stub_->Append(&ctx, req, &resp);
  if (!s.ok())
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return resp;
}

absl::StatusOr<v1::ReadResponse> SessionClient::Read(const std::string& session, int timeout_ms) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  v1::ReadRequest req;
  req.set_session(session);
  v1::ReadResponse resp;
  grpc::Status s = stub_->Read(&ctx, req, &resp);
  if (!s.ok())
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return resp;
}

SessionWriters::SessionWriters(const std::string& gateway, int sessions, size_t payload_bytes) {
  for (int i = 0; i < sessions; ++i) {
    threads_.emplace_back([this, i, gateway, payload_bytes] {
      SessionClient client(gateway);
      const std::string session = absl::StrCat("session-", i);
      const std::string payload(payload_bytes, 'p');
      uint64_t seq = 0;
      while (!stop_.load()) {
        ++seq;
        auto ack = client.Append(session, seq, payload);
        absl::MutexLock lock(&mu_);
        if (ack.ok()) {
          log_[session].push_back({seq, ack->primary(), absl::Now()});
          ++acks_;
        } else {
          ++errors_;
        }
      }
    });
  }
}

SessionWriters::~SessionWriters() { Stop(); }

void SessionWriters::Stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

int64_t SessionWriters::acks() {
  absl::MutexLock lock(&mu_);
  return acks_;
}

int64_t SessionWriters::errors() {
  absl::MutexLock lock(&mu_);
  return errors_;
}

bool SessionWriters::WaitAcks(int64_t at_least, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return acks_ >= at_least; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

AckLog SessionWriters::log() {
  absl::MutexLock lock(&mu_);
  return log_;
}

absl::StatusOr<std::map<std::string, std::set<uint64_t>>> LostAcks(SessionClient& client,
                                                                   const AckLog& log) {
  std::map<std::string, std::set<uint64_t>> lost;
  for (const auto& [session, acks] : log) {
    auto read = client.Read(session);
    if (!read.ok()) {
      return absl::InternalError(
          absl::StrCat("reading back session ", session, ": ", read.status().ToString()));
    }
    std::set<uint64_t> have;
    for (const v1::Entry& e : read->entries()) have.insert(e.seq());
    for (const Ack& a : acks) {
      if (!have.count(a.seq)) lost[session].insert(a.seq);
    }
  }
  return lost;
}

}  // namespace chaosdrill::reference::testing
