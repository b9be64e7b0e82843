#include "reference/redis_connection.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace chaosdrill::reference {
namespace {

RedisValue Convert(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.type = RedisValue::Type::kString;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RedisValue::Type::kStatus;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = RedisValue::Type::kError;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::kInteger;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::kArray;
      v.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(Convert(r->element[i]));
      break;
    default:
      v.type = RedisValue::Type::kNil;
  }
  return v;
}

}  // namespace

bool RedisValue::ErrorIs(absl::string_view prefix) const {
  return type == Type::kError && absl::StartsWith(str, prefix);
}

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(absl::string_view address) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("address '", address, "' is not host:port"));
  }
  return std::make_pair(std::string(address.substr(0, colon)), port);
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Connect(
    absl::string_view address, absl::Duration connect_timeout, absl::Duration command_timeout) {
  auto hp = SplitHostPort(address);
  if (!hp.ok()) return hp.status();
  redisContext* ctx =
      redisConnectWithTimeout(hp->first.c_str(), hp->second, absl::ToTimeval(connect_timeout));
  if (ctx == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("connecting to redis at ", address, ": out of memory"));
  }
  if (ctx->err != 0) {
    std::string why = ctx->errstr;
    redisFree(ctx);
    return absl::UnavailableError(absl::StrCat("connecting to redis at ", address, ": ", why));
  }
  if (redisSetTimeout(ctx, absl::ToTimeval(command_timeout)) != REDIS_OK) {
    redisFree(ctx);
    return absl::UnavailableError(
        absl::StrCat("setting the command timeout on the connection to ", address));
  }
  return std::unique_ptr<RedisConnection>(new RedisConnection(std::string(address), ctx));
}

RedisConnection::RedisConnection(std::string address, redisContext* ctx)
    : address_(std::move(address)), ctx_(ctx) {}

RedisConnection::~RedisConnection() { redisFree(ctx_); }

absl::StatusOr<RedisValue> RedisConnection::Command(const std::vector<std::string>& args) {
  if (broken_) {
    return absl::UnavailableError(
        absl::StrCat("connection to redis at ", address_, " is broken by an earlier error"));
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data()));
  if (reply == nullptr) {
    broken_ = true;
    return absl::UnavailableError(
        absl::StrCat(args.empty() ? "" : args[0], " on redis at ", address_, ": ", ctx_->errstr));
  }
  RedisValue v = Convert(reply);
  freeReplyObject(reply);
  return v;
}

absl::StatusOr<RedisValue> RedisConnection::CommandOk(const std::vector<std::string>& args) {
  auto v = Command(args);
  if (!v.ok()) return v.status();
  if (v->is_error()) {
    return absl::FailedPreconditionError(
        absl::StrCat(args.empty() ? "" : args[0], " on redis at ", address_, ": ", v->str));
  }
  return v;
}

std::string InfoField(absl::string_view info, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(info, '\n')) {
    line = absl::StripSuffix(line, "\r");
    if (absl::StartsWith(line, key) && line.size() > key.size() && line[key.size()] == ':') {
      return std::string(line.substr(key.size() + 1));
    }
  }
  return "";
}

}  // namespace chaosdrill::reference
