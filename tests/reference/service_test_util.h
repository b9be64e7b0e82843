// Helpers for the tests that run the whole reference service (store_test,
// supervisor_test, and the gateway tests' HTTP scrape): what is in /proc, a minimal
// HTTP GET and a Prometheus sample lookup, a SessionService client for the gateway, and
// continuous session writers with a client-side acknowledgement log. Every wait here is
// bounded.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chaosdrill/reference/v1/session.grpc.pb.h"
#include "reference/topology.h"

namespace chaosdrill::reference::testing {

bool HaveRedis();
// The built chaosdrill binary exists and knows `reference`.
bool HaveCliReference();

struct ProcStat {
  pid_t pid = 0, ppid = 0, pgid = 0, sid = 0;
};
// Every live (non-zombie) process in /proc with its parent, group and session.
std::vector<ProcStat> AllProcesses();
// Processes that belong to what a supervisor started: any pid in `pids`, any member of
// their process groups, or (session > 0) of that session.
std::vector<ProcStat> Leftovers(const std::set<pid_t>& pids, pid_t session = 0);
// Adds every running role's pid to `pids`.
void Remember(const Topology& t, std::set<pid_t>& pids);

// GET http://address/path (HTTP/1.0, 5 s timeouts); the whole response, "" on failure.
std::string HttpGet(const std::string& address, const std::string& path);
// The value of the sample `name{labels}` (labels in any order, all of them) in a
// Prometheus text body; nullopt when absent.
std::optional<double> PromValue(const std::string& body, const std::string& name,
                                const std::map<std::string, std::string>& labels = {});
// Scrapes http://metrics_address/metrics and looks up one sample (nullopt if either fails).
std::optional<double> ScrapeValue(const std::string& metrics_address, const std::string& name,
                                  const std::map<std::string, std::string>& labels = {});

// The gateway's SessionService.
class SessionClient {
 public:
  explicit SessionClient(const std::string& gateway);
  absl::StatusOr<v1::AppendResponse> Append(const std::string& session, uint64_t seq,
                                            const std::string& payload, int timeout_ms = 10'000);
  absl::StatusOr<v1::ReadResponse> Read(const std::string& session, int timeout_ms = 20'000);

 private:
  std::unique_ptr<v1::SessionService::Stub> stub_;
};

// One acknowledged append as the client saw it.
struct Ack {
  uint64_t seq = 0;
  std::string primary;  // the Redis primary that took it (AppendResponse.primary)
  absl::Time at;        // when the acknowledgement arrived
};
using AckLog = std::map<std::string, std::vector<Ack>>;  // session -> acks in order

// `sessions` threads, each appending seq 1, 2, 3... to its own session ("session-i")
// through the gateway until stopped; every acknowledgement goes to the log, every error
// is counted. Joined on Stop or destruction.
class SessionWriters {
 public:
  SessionWriters(const std::string& gateway, int sessions, size_t payload_bytes);
  ~SessionWriters();
  SessionWriters(const SessionWriters&) = delete;
  SessionWriters& operator=(const SessionWriters&) = delete;
  void Stop();
  int64_t acks();
  int64_t errors();
  bool WaitAcks(int64_t at_least, absl::Duration timeout);
  AckLog log();

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  AckLog log_ ABSL_GUARDED_BY(mu_);
  int64_t acks_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t errors_ ABSL_GUARDED_BY(mu_) = 0;
};

// Reads every session of `log` back through the gateway and returns, per session, the
// acknowledged seqs the read-back lacks (sessions with none lost are left out). A failed
// read is an InternalError naming the session.
absl::StatusOr<std::map<std::string, std::set<uint64_t>>> LostAcks(SessionClient& client,
                                                                   const AckLog& log);

}  // namespace chaosdrill::reference::testing
