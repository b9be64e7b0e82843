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
  uint64_t requests = 0;
  double availability = 1;
  uint64_t faults = 0;
  std::optional<int64_t> worst_rto_ns;  // empty: some fault never recovered
  std::optional<uint64_t> rpo_writes;   // empty: RPO not measured
  int64_t rpo_ns = 0;
};

struct History {
  std::vector<HistoryEntry> entries;  // by scenario, then start time
  std::vector<std::string> skipped;   // "path: reason"
};

HistoryEntry SummariseRun(const RunRecord& record, const std::string& file);

// Reads every `*.json` file directly in `dir` (not recursive; files that are not run
// records are skipped with a reason). Fails only when `dir` cannot be listed.
absl::StatusOr<History> LoadHistory(const std::string& dir);

std::string RenderHistoryMarkdown(const History& history);
std::string RenderHistoryHtml(const History& history);

}  // namespace chaosdrill::reports
