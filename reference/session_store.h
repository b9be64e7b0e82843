// SessionStore: the reference service's session entries in Redis, found through the
// sentinels. Each session is one Redis list; an entry is "<seq>:<payload>". Appends are
// acknowledged by the primary ("async") or only once `WAIT 1 <timeout>` confirms a
// replica has them ("sync"); a failed confirmation is an error, never an acknowledgement.
//
// Failover: on a connection error, READONLY or LOADING the store drops its connection,
// asks the sentinels (`SENTINEL get-master-addr-by-name`) for the current primary,
// checks with ROLE that it really is one, and reconnects. A command is retried on the
// new primary only when it provably did not run (the connection could not be made, or
// the server refused it); an I/O error mid-command returns Unavailable, since the write
// may or may not have happened. Every socket operation has a timeout.
//
// Thread safety: all methods may be called concurrently. Each call borrows a connection
// from a small pool (created on demand); a connection is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace chaosdrill::reference {

struct SessionStoreOptions {
  // Sentinel addresses, "host:port". Required.
  std::vector<std::string> sentinels;
  // The name the sentinels monitor the primary under.
  std::string master_name = "chaosdrill";
  // "async": ack after the primary's write. "sync": ack only after WAIT 1 <wait_timeout>
  // reports >= 1 replica.
  std::string replication = "async";
  absl::Duration wait_timeout = absl::Milliseconds(500);
  // Per connect and per command socket timeouts (to sentinels and to Redis).
  absl::Duration connect_timeout = absl::Milliseconds(500);
  absl::Duration command_timeout = absl::Seconds(2);
  // How long one call keeps re-resolving the primary (failover in progress) before it
  // gives up with Unavailable.
  absl::Duration failover_budget = absl::Seconds(3);
  // Key of a session's list: key_prefix + session.
  std::string key_prefix = "chaosdrill:session:";
};

struct AppendAck {
  uint64_t length = 0;     // entries in the session after the append
  int replicas_acked = 0;  // WAIT's answer under sync; 0 under async
  std::string primary;     // host:port that took the write
};

struct SessionEntry {
  uint64_t seq = 0;
  std::string payload;
  friend bool operator==(const SessionEntry&, const SessionEntry&) = default;
};

struct SessionRead {
  std::vector<SessionEntry> entries;
  std::string primary;
};

class RedisConnection;

class SessionStore {
 public:
  // Validates the options (InvalidArgument); does not connect yet.
  static absl::StatusOr<std::unique_ptr<SessionStore>> Create(SessionStoreOptions options);
  ~SessionStore();
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  // Unavailable when no primary could be reached (or, under sync, no replica confirmed
  // within wait_timeout); InvalidArgument for an empty session name.
  absl::StatusOr<AppendAck> Append(const std::string& session, uint64_t seq,
                                   const std::string& payload);
  absl::StatusOr<SessionRead> Read(const std::string& session);

  // The primary's address as the sentinels report it now ("host:port").
  absl::StatusOr<std::string> ResolvePrimary();

  const SessionStoreOptions& options() const { return options_; }

 private:
  explicit SessionStore(SessionStoreOptions options);

  // Borrows a connection to the current primary (connecting and resolving as needed).
  absl::StatusOr<std::unique_ptr<RedisConnection>> Borrow();
  // Returns a healthy connection to the pool; a broken one is dropped and forces a new
  // resolution for the next Borrow.
  void Return(std::unique_ptr<RedisConnection> conn, bool healthy);
  // Runs `attempt` on a borrowed connection until it gives an answer, through primary
  // changes, for at most failover_budget. `attempt(conn, retry)` owns `conn` (it Returns
  // it) and yields the final value or error, or nullopt with `retry` set to why the
  // command provably did not run here (the primary moved): then it is tried again.
  template <typename T, typename Attempt>
  absl::StatusOr<T> WithFailover(const std::string& what, Attempt attempt);

  const SessionStoreOptions options_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<RedisConnection>> idle_ ABSL_GUARDED_BY(mu_);
  std::string primary_ ABSL_GUARDED_BY(mu_);  // last resolved; empty: resolve again
};

}  // namespace chaosdrill::reference
