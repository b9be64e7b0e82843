#include "reference/session_store.h"

#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "reference/redis_connection.h"

namespace chaosdrill::reference {
namespace {

constexpr absl::Duration kRetryPause = absl::Milliseconds(100);
constexpr size_t kMaxIdle = 16;

// An error reply that proves the command did not run, because the server is not (or not
// yet) a writable primary: resolve the primary again and retry.
bool NotPrimaryReply(const RedisValue& v) {
  return v.ErrorIs("READONLY") || v.ErrorIs("LOADING") || v.ErrorIs("MASTERDOWN") ||
         v.ErrorIs("NOREPLICAS");
}

std::string EncodeEntry(uint64_t seq, const std::string& payload) {
  return absl::StrCat(seq, ":", payload);
}

absl::StatusOr<SessionEntry> DecodeEntry(const std::string& raw) {
  size_t colon = raw.find(':');
  SessionEntry e;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(raw).substr(0, colon), &e.seq)) {
    return absl::DataLossError(
        absl::StrCat("session entry '", raw.substr(0, 32), "' is not <seq>:<payload>"));
  }
  e.payload = raw.substr(colon + 1);
  return e;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SessionStore>> SessionStore::Create(SessionStoreOptions options) {
  if (options.sentinels.empty()) {
    return absl::InvalidArgumentError("session store: no sentinel addresses given");
  }
  for (const std::string& s : options.sentinels) {
    if (auto hp = SplitHostPort(s); !hp.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("session store sentinel: ", hp.status().message()));
    }
  }
  if (options.replication != "async" && options.replication != "sync") {
    return absl::InvalidArgumentError(absl::StrCat(
        "session store replication '", options.replication, "' is not one of: async, sync"));
  }
  if (options.master_name.empty()) {
    return absl::InvalidArgumentError("session store: empty master name");
  }
  return std::unique_ptr<SessionStore>(new SessionStore(std::move(options)));
}

SessionStore::SessionStore(SessionStoreOptions options) : options_(std::move(options)) {}
SessionStore::~SessionStore() = default;

absl::StatusOr<std::string> SessionStore::ResolvePrimary() {
  std::string errors;
  for (const std::string& sentinel : options_.sentinels) {
    auto conn =
        RedisConnection::Connect(sentinel, options_.connect_timeout, options_.command_timeout);
    if (!conn.ok()) {
      absl::StrAppend(&errors, "; ", conn.status().message());
      continue;
    }
    auto v = (*conn)->CommandOk({"SENTINEL", "get-master-addr-by-name", options_.master_name});
    if (!v.ok()) {
      absl::StrAppend(&errors, "; ", v.status().message());
      continue;
    }
    if (v->type != RedisValue::Type::kArray || v->elements.size() != 2) {
      absl::StrAppend(&errors, "; sentinel ", sentinel, " does not know master '",
                      options_.master_name, "'");
      continue;
    }
    return absl::StrCat(v->elements[0].str, ":", v->elements[1].str);
  }
  return absl::UnavailableError(
      absl::StrCat("asking the sentinels for the primary of '", options_.master_name, "'", errors));
}

absl::StatusOr<std::unique_ptr<RedisConnection>> SessionStore::Borrow() {
  std::string primary;
  {
    absl::MutexLock lock(&mu_);
    if (!primary_.empty() && !idle_.empty()) {
      std::unique_ptr<RedisConnection> c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    primary = primary_;
  }
  if (primary.empty()) {
    ASSIGN_OR_RETURN(primary, ResolvePrimary());
  }
  ASSIGN_OR_RETURN(auto conn, RedisConnection::Connect(primary, options_.connect_timeout,
                                                       options_.command_timeout));
  // The sentinels may lag (or a restarted node may still think it is a primary): only a
  // server that says it is a master gets writes.
  ASSIGN_OR_RETURN(RedisValue role, conn->CommandOk({"ROLE"}));
  if (role.type != RedisValue::Type::kArray || role.elements.empty() ||
      role.elements[0].str != "master") {
    absl::MutexLock lock(&mu_);
    primary_.clear();
    return absl::UnavailableError(
        absl::StrCat("redis at ", primary, " is not a primary (failover in progress?)"));
  }
  absl::MutexLock lock(&mu_);
  if (primary_ != primary) {
    if (!primary_.empty()) {
      LogInfo("session-store", absl::StrCat("primary is now ", primary, " (was ", primary_, ")"));
    }
    primary_ = primary;
    idle_.clear();
  }
  return conn;
}

void SessionStore::Return(std::unique_ptr<RedisConnection> conn, bool healthy) {
  absl::MutexLock lock(&mu_);
  if (!healthy || conn->broken()) {
    // The primary may have moved: resolve again, and drop connections to the old one.
    if (conn->address() == primary_) {
      primary_.clear();
      idle_.clear();
    }
    return;
  }
  if (conn->address() == primary_ && idle_.size() < kMaxIdle) idle_.push_back(std::move(conn));
}

template <typename T, typename Attempt>
absl::StatusOr<T> SessionStore::WithFailover(const std::string& what, Attempt attempt) {
  const absl::Time deadline = absl::Now() + options_.failover_budget;
  absl::Status last = absl::UnavailableError("no attempt made");
  while (true) {
    auto conn = Borrow();
    if (conn.ok()) {
      std::optional<absl::StatusOr<T>> answer = attempt(std::move(*conn), last);
      if (answer.has_value()) return *std::move(answer);
    } else {
      last = Annotate(conn.status(), what);
    }
    if (absl::Now() + kRetryPause > deadline) break;
    absl::SleepFor(kRetryPause);
  }
  return absl::UnavailableError(absl::StrCat(last.message(), " (gave up after ",
                                             absl::FormatDuration(options_.failover_budget), ")"));
}

absl::StatusOr<AppendAck> SessionStore::Append(const std::string& session, uint64_t seq,
                                               const std::string& payload) {
  if (session.empty()) return absl::InvalidArgumentError("append: empty session name");
  const std::string key = options_.key_prefix + session;
  const std::string what = absl::StrCat("append seq ", seq, " to session '", session, "'");
  using Answer = std::optional<absl::StatusOr<AppendAck>>;
  return WithFailover<AppendAck>(
      what, [&](std::unique_ptr<RedisConnection> conn, absl::Status& retry) -> Answer {
        auto pushed = conn->Command({"RPUSH", key, EncodeEntry(seq, payload)});
        if (!pushed.ok()) {
          // The write may or may not have happened: report, never retry blindly.
          Return(std::move(conn), false);
          return absl::UnavailableError(absl::StrCat(what, ": ", pushed.status().message()));
        }
        if (NotPrimaryReply(*pushed)) {
          retry =
              absl::UnavailableError(absl::StrCat(what, ": ", conn->address(), ": ", pushed->str));
          Return(std::move(conn), false);
          return std::nullopt;
        }
        if (pushed->is_error() || pushed->type != RedisValue::Type::kInteger) {
          Return(std::move(conn), true);
          return absl::InternalError(
              absl::StrCat(what, ": unexpected reply to RPUSH: ", pushed->str));
        }
        AppendAck ack;
        ack.length = static_cast<uint64_t>(pushed->integer);
        ack.primary = conn->address();
        if (options_.replication == "sync") {
          auto waited = conn->Command(
              {"WAIT", "1", absl::StrCat(absl::ToInt64Milliseconds(options_.wait_timeout))});
          if (!waited.ok() || waited->type != RedisValue::Type::kInteger) {
            std::string why = waited.ok() ? waited->str : std::string(waited.status().message());
            Return(std::move(conn), false);
            return absl::UnavailableError(
                absl::StrCat(what, ": written on ", ack.primary,
                             " but WAIT failed, so not acknowledged: ", why));
          }
          if (waited->integer < 1) {
            Return(std::move(conn), true);
            return absl::UnavailableError(absl::StrCat(
                what, ": written on ", ack.primary, " but no replica confirmed it within ",
                absl::FormatDuration(options_.wait_timeout), ", so not acknowledged"));
          }
          ack.replicas_acked = static_cast<int>(waited->integer);
        }
        Return(std::move(conn), true);
        return ack;
      });
}

absl::StatusOr<SessionRead> SessionStore::Read(const std::string& session) {
  if (session.empty()) return absl::InvalidArgumentError("read: empty session name");
  const std::string key = options_.key_prefix + session;
  const std::string what = absl::StrCat("read session '", session, "'");
  using Answer = std::optional<absl::StatusOr<SessionRead>>;
  return WithFailover<SessionRead>(
      what, [&](std::unique_ptr<RedisConnection> conn, absl::Status& retry) -> Answer {
        auto v = conn->Command({"LRANGE", key, "0", "-1"});
        if (!v.ok()) {
          retry = Annotate(v.status(), what);
          Return(std::move(conn), false);
          return std::nullopt;
        }
        if (NotPrimaryReply(*v)) {
          retry = absl::UnavailableError(absl::StrCat(what, ": ", conn->address(), ": ", v->str));
          Return(std::move(conn), false);
          return std::nullopt;
        }
        if (v->type != RedisValue::Type::kArray) {
          Return(std::move(conn), true);
          return absl::InternalError(absl::StrCat(what, ": unexpected reply to LRANGE: ", v->str));
        }
        SessionRead out;
        out.primary = conn->address();
        out.entries.reserve(v->elements.size());
        for (const RedisValue& raw : v->elements) {
          auto e = DecodeEntry(raw.str);
          if (!e.ok()) {
            Return(std::move(conn), true);
            return Annotate(e.status(), what);
          }
          out.entries.push_back(std::move(*e));
        }
        Return(std::move(conn), true);
        return out;
      });
}

}  // namespace chaosdrill::reference
