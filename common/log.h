// Minimal leveled logging to stderr: "2026-11-23T17:53:00.123Z W component: message".
// The level is process-wide (default info; CHAOSDRILL_LOG=debug|info|warn|error).
#pragma once

#include "absl/strings/string_view.h"

namespace chaosdrill {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void Log(LogLevel level, absl::string_view component, absl::string_view message);

inline void LogDebug(absl::string_view c, absl::string_view m) { Log(LogLevel::kDebug, c, m); }
inline void LogInfo(absl::string_view c, absl::string_view m) { Log(LogLevel::kInfo, c, m); }
inline void LogWarn(absl::string_view c, absl::string_view m) { Log(LogLevel::kWarn, c, m); }
inline void LogError(absl::string_view c, absl::string_view m) { Log(LogLevel::kError, c, m); }

}  // namespace chaosdrill
