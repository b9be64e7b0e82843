// The RPO side of a drill (DESIGN §7): appends (session, seq, payload) to the target's
// SessionService at a fixed rate, open loop, round-robin over N sessions, and records when
// each append was acknowledged; after the drill, reads every session back. Lost writes
// (acknowledged, then absent) are what analysis reports as RPO.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "chaosdrill/reference/v1/session.grpc.pb.h"
#include "common/clock.h"
#include "reports/run_record.h"
#include "runner/call_pump.h"

namespace chaosdrill::runner {

struct WriteOptions {
  std::string address;  // host:port serving chaosdrill.reference.v1.SessionService
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: plaintext
  std::string tls_server_name;  // TLS: the name checked in the server's certificate
  double rate = 50;             // appends per second, over all sessions
  int sessions = 8;
  size_t payload_size = 64;
  std::string session_prefix = "drill";  // sessions are "<prefix>-<i>"; use the run id
  absl::Duration timeout = absl::Seconds(2);
};

class SessionWriter {
 public:
  SessionWriter(WriteOptions options, Clock& clock, int64_t origin_ns);
  ~SessionWriter();  // Stop()s
  SessionWriter(const SessionWriter&) = delete;
  SessionWriter& operator=(const SessionWriter&) = delete;

  absl::Status Start(int64_t first_ns);
  // Stops appending and waits for every in-flight append to be acknowledged or fail.
  void Stop();

  // Every append so far, in send order; ack_ns empty for failed or in-flight ones.
  std::vector<reports::WriteRecord> Log() const;
  // What the verify phase read back.
  struct ReadBackResult {
    // Per session, the seqs of the entries whose payload is the one written, in stored
    // order (duplicates and reordering kept: analysis judges them).
    std::map<std::string, std::vector<int64_t>> sessions;
    // Per session, the seqs of entries read back with another payload (corrupt, or
    // another writer's): not in `sessions`, so an acknowledged one counts as lost.
    std::map<std::string, std::vector<int64_t>> corrupt;
    int retries = 0;  // reads retried (the store was failing over, or unreachable)
  };
  // Reads each session back. A read that fails with a transient code (UNAVAILABLE while
  // the store fails over, a per-try deadline, ABORTED, RESOURCE_EXHAUSTED) is retried with
  // backoff until `timeout` has passed since the call; Unavailable naming the session and
  // the last error then. Another code fails at once. `cancelled` (optional) is polled
  // between tries and while waiting: true gives Cancelled.
  absl::StatusOr<ReadBackResult> ReadBack(absl::Duration timeout,
                                          const std::function<bool()>& cancelled = {}) const;

  // The payload written for (session, seq): deterministic, so a reader can check it.
  static std::string Payload(const std::string& session, int64_t seq, size_t size);

 private:
  class AppendCall;
  void Loop(int64_t first_ns);
  void Complete(const AppendCall& call);
  int64_t Now() const { return clock_.NowNanos() - origin_ns_; }
  std::string SessionName(int i) const;

  const WriteOptions options_;
  Clock& clock_;
  const int64_t origin_ns_;
  std::unique_ptr<reference::v1::SessionService::Stub> stub_;
  std::unique_ptr<CallPump> pump_;  // "cd-write-recv"
  std::atomic<bool> stopping_{false};
  std::thread sender_;  // "cd-write-send"
  bool started_ = false;
  bool stopped_ = false;

  mutable std::mutex mu_;
  std::vector<reports::WriteRecord> log_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chaosdrill::runner
