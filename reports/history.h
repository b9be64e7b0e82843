// The game-day trend: RTO, RPO and availability per scenario across every run record in a
// directory, oldest first. Unreadable or corrupt files are listed with the reason and
// skipped, never fatal, so one bad file does not hide a year of drills.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "reports/run_record.h"

namespace chaosdrill::reports {

struct HistoryEntry {
  std::string file;
  std::string run_id;
  std::string scenario;
  int64_t started_unix_ns = 0;
  ExitStatus exit_status = ExitStatus::kPassed;
  bool in_progress = false;  // the runner died mid-drill: the verdict is not final
  uint64_t requests = 0;
  double availability = 1;
  uint64_t faults = 0;
  std::optional<int64_t> worst_rto_ns;  // empty: some fault never recovered
  std::optional<uint64_t> rpo_writes;   // empty: RPO not measured
  int64_t rpo_ns = 0;
};

struct History {
  std::vector<HistoryEntry> entries;  // by scenario, then start time, then file
  std::vector<std::string> skipped;   // "path: reason", in path order
};

HistoryEntry SummariseRun(const RunRecord& record, const std::string& file);

// Reads every `*.json` file under `dir`, recursively (directory symlinks are not
// followed, so a link loop cannot hang it). A file that cannot be read or is not a valid
// run record (dangling symlink, truncated, wrong schema version, binary garbage) is listed
// in `skipped` as "path: reason" and the rest still load; an unreadable subdirectory is
// listed the same way. Fails only when `dir` itself cannot be listed.
absl::StatusOr<History> LoadHistory(const std::string& dir);

std::string RenderHistoryMarkdown(const History& history);
std::string RenderHistoryHtml(const History& history);

}  // namespace chaosdrill::reports
