// `chaosdrill run`: turns one scenario into a drill and the drill into a RunRecord
// (DESIGN §7). The timeline: guard and preflight; start the target (the reference
// service, or an existing endpoint) and the agents; baseline (the steady-state hypothesis
// must hold, or the drill stops before any fault); faults at their times, each reverted
// at its duration; recovery until the observe limit; verify (read back the session
// writes). Abort conditions are checked every 100 ms. Every fault is reverted at its
// duration, on abort, on SIGINT/SIGTERM and on any error, and the record is written
// whatever happened.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "reports/run_record.h"
#include "scenarios/scenario.h"

namespace chaosdrill::runner {

enum class ProgressMode { kAuto, kPlain, kNone };

struct DrillOptions {
  std::string report_dir;         // overrides the scenario's report.dir when set
  std::string chaosdrill_binary;  // runs the local agent and reference children; default: self
  bool dry_run = false;           // validate, start agents, preflight; change nothing
  bool force = false;             // run outside the scenario's guard window
  ProgressMode progress = ProgressMode::kAuto;
  std::string events_file;  // JSONL stream of events; empty = none
  // Set by the caller's SIGINT/SIGTERM handler; the drill reverts everything and stops.
  const std::atomic<bool>* interrupted = nullptr;
  // Extra YAML for the local agent's config (allowlist overrides in tests).
  std::string local_agent_config;
};

// Runs the drill. The record's exit_status says how it ended. Except in a dry run, the
// record is kept on disk at RecordPath() while the drill runs (in_progress, rewritten about
// once a second and at every event) and written there finished at the end; the caller
// writes the other report formats.
reports::RunRecord RunDrill(const scenarios::Scenario& scenario, const DrillOptions& options);

// The report directory the drill writes into: options.report_dir or the scenario's.
std::string ReportDir(const scenarios::Scenario& scenario, const DrillOptions& options);
// Where the drill keeps its JSON record: <ReportDir>/<run_id>.json.
std::string RecordPath(const scenarios::Scenario& scenario, const DrillOptions& options,
                       const std::string& run_id);

}  // namespace chaosdrill::runner
