// Shared test helpers: capability checks that skip a test with a printed reason (ctest
// reports "SKIPPED:" lines as skipped), paths to the source and build trees, and running
// the built CLI as a child process with its output captured.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace chaosdrill::testing {

// Prints "SKIPPED: <reason>" to stdout. Use as: if (SkipUnless(IsRoot(), "needs root")) return;
bool SkipUnless(bool condition, absl::string_view reason);

bool IsRoot();
// True when the running kernel can create a qdisc of this kind ("netem", "tbf").
bool KernelHasQdisc(absl::string_view kind);

std::string SourcePath(absl::string_view relative);  // <repo>/relative
std::string BinaryPath(absl::string_view relative);  // <build>/relative
std::string ChaosdrillBinary();                      // <build>/chaosdrill

struct CommandResult {
  int exit_code = -1;  // -1 if killed by a signal
  std::string out;
  std::string err;
};

// Runs argv (no shell) with stdin from /dev/null, captures stdout and stderr, and kills it
// after `timeout_ms`. argv[0] is a path.
CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_ms = 60'000);

// `chaosdrill run ARGS` as a child in its own process group (as a shell job would be), with
// TMPDIR = tmpdir (the local agent's private directory goes there), `extra_env` added to a
// minimal environment, and its output in tmpdir/runner.out and tmpdir/runner.err.
class RunnerProcess {
 public:
  // `binary`: the chaosdrill to run (default ChaosdrillBinary()).
  RunnerProcess(const std::string& tmpdir, const std::vector<std::string>& args,
                const std::string& binary = "", const std::vector<std::string>& extra_env = {});
  ~RunnerProcess();  // SIGKILLs the group if still running
  RunnerProcess(const RunnerProcess&) = delete;
  RunnerProcess& operator=(const RunnerProcess&) = delete;
  // The exit code, 128 + signal when killed, or -1 after `timeout` (then SIGKILLed).
  int Wait(absl::Duration timeout);
  pid_t pid() const { return pid_; }
  std::string out() const;  // what it wrote to stdout so far
  std::string err() const;  // and to stderr

 private:
  pid_t pid_ = -1;
  std::string out_, err_;
};

std::string ReadAll(const std::string& path);  // a file's bytes; "" when unreadable
int64_t MonoNs();                              // CLOCK_MONOTONIC, the clock drills count on

// Validates run record files (schema chaosdrill.run/v1) against
// reports/run_record.schema.json (JSON Schema 2020-12) with Python's jsonschema (Debian
// python3-jsonschema, installed by scripts/install-deps.sh), all in one python3 run. OK when
// every file is valid; InvalidArgument listing each violation as "FILE [json, path]:
// message" (also for unreadable or non-JSON files); FailedPrecondition when python3 or
// jsonschema is missing, so a caller may SkipUnless on that code.
absl::Status ValidateRecordsAgainstSchema(const std::vector<std::string>& paths);
absl::Status ValidateRecordAgainstSchema(const std::string& path);

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `content` to path()/name and returns the full path.
  std::string Write(absl::string_view name, absl::string_view content) const;

 private:
  std::string path_;
};

}  // namespace chaosdrill::testing
