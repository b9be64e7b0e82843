#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace chaosdrill {
namespace {

LogLevel InitialLevel() {
  const char* env = std::getenv("CHAOSDRILL_LOG");
  if (env == nullptr) return LogLevel::kInfo;
  absl::string_view v = env;
  if (v == "debug") return LogLevel::kDebug;
  if (v == "warn") return LogLevel::kWarn;
  if (v == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<LogLevel>& Level() {
  static std::atomic<LogLevel> level{InitialLevel()};
  return level;
}

}  // namespace

void SetLogLevel(LogLevel level) { Level().store(level); }
LogLevel GetLogLevel() { return Level().load(); }

void Log(LogLevel level, absl::string_view component, absl::string_view message) {
  if (level < GetLogLevel()) return;
  static constexpr char kLetters[] = {'D', 'I', 'W', 'E'};
  std::string line = absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
      std::string(1, kLetters[static_cast<int>(level)]), " ", component, ": ", message, "\n");
  // One write(2) per line so lines from several threads or processes do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace chaosdrill
