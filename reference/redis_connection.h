// RedisConnection: one blocking hiredis connection with bounded connect and command
// timeouts, whose replies are copied into plain values. The session store, the
// supervisor's readiness checks and the sentinel queries all talk to Redis through it.
//
// Not thread-safe: one thread uses a connection at a time (the session store keeps a
// pool). After an I/O error or timeout the connection is broken for good (broken() is
// true) and the caller makes a new one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct redisContext;

namespace chaosdrill::reference {

// A reply, copied out of hiredis. Error replies are values (kError, text in `str`) so a
// caller can tell READONLY from a dead connection.
struct RedisValue {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisValue> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  // True for an error reply starting with `prefix` ("READONLY", "LOADING", ...).
  bool ErrorIs(absl::string_view prefix) const;
};

// "host:port" -> (host, port); InvalidArgument otherwise.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(absl::string_view address);

class RedisConnection {
 public:
  // Unavailable (with the address and hiredis' reason) if it cannot connect in time.
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(absl::string_view address,
                                                                  absl::Duration connect_timeout,
                                                                  absl::Duration command_timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends one command (binary-safe arguments) and waits for the reply. Unavailable on
  // I/O error or timeout (the connection is then broken). An error reply is returned as
  // a value of type kError.
  absl::StatusOr<RedisValue> Command(const std::vector<std::string>& args);
  // Like Command, but an error reply becomes a FailedPrecondition status.
  absl::StatusOr<RedisValue> CommandOk(const std::vector<std::string>& args);

  bool broken() const { return broken_; }
  const std::string& address() const { return address_; }

 private:
  RedisConnection(std::string address, redisContext* ctx);
  std::string address_;
  redisContext* ctx_;
  bool broken_ = false;
};

// Parses INFO output ("key:value" lines) and returns the value of `key`, or "" if absent.
std::string InfoField(absl::string_view info, absl::string_view key);

}  // namespace chaosdrill::reference
