// The revert journal (DESIGN §5): an append-only JSONL file with one line per event in a
// fault's life, written and fsynced BEFORE the fault is applied, so that a fresh process
// can undo, from the records alone, every fault whose holder crashed.
//
// Lines (one JSON object each):
//   {"op":"apply",    "id":ID, "kind":KIND, "record":REVERT_RECORD, "pid":P, "time":T}
//   {"op":"update",   "id":ID, "record":REVERT_RECORD, "time":T}   (more detail, e.g. pids)
//   {"op":"reverted", "id":ID, "time":T}                            (after a verified revert)
// A fault is open from its "apply" line until its "reverted" line; its latest record is the
// one replay uses. A torn last line (crash mid-write) is ignored, and the next append
// starts on a fresh line. When no fault is open any more the file is truncated (compacted).
//
// Thread-safe within a process (a mutex) and across processes (flock on the file), so the
// agent's threads, `chaosdrill inject` and `chaosdrill revert` can share one journal.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace chaosdrill::injector {

class FaultRegistry;

// One fault still open in a journal.
struct JournalEntry {
  std::string id;
  std::string kind;
  nlohmann::json record;  // latest revert record
  nlohmann::json holder;  // {"pid":P,"start":T}: the process that applied it
};

// What replaying did to one open fault.
struct ReplayOutcome {
  std::string id;
  std::string kind;
  absl::Status status;   // OK: reverted and marked (or skipped)
  bool skipped = false;  // its holder is still running and will revert it itself
  int holder_pid = 0;
};

class RevertJournal {
 public:
  // Opens (creating it and its directory, 0700, if needed) the journal at `path`.
  static absl::StatusOr<std::unique_ptr<RevertJournal>> Open(const std::string& path);

  // /var/lib/chaosdrill/journal as root; $XDG_STATE_HOME/chaosdrill/journal otherwise
  // (~/.local/state/chaosdrill/journal when XDG_STATE_HOME is unset).
  static std::string DefaultPath();

  ~RevertJournal();
  RevertJournal(const RevertJournal&) = delete;
  RevertJournal& operator=(const RevertJournal&) = delete;

  const std::string& path() const { return path_; }

  // A fresh, unique fault id ("<kind>-<pid>-<time>-<n>").
  std::string NewId(absl::string_view kind);

  // Journals a fault about to be applied; returns once the line is on disk.
  absl::Status AppendApply(absl::string_view id, absl::string_view kind,
                           const nlohmann::json& record);
  // Journals a more detailed revert record for an open fault.
  absl::Status AppendUpdate(absl::string_view id, const nlohmann::json& record);
  // Journals that a fault is verifiably gone; compacts the file if nothing is open.
  absl::Status MarkReverted(absl::string_view id);

  // Faults applied and not marked reverted, in the order they were applied.
  absl::StatusOr<std::vector<JournalEntry>> OpenEntries();

  // Reverts every open fault (newest first) with its kind's RevertFromRecord, marking each
  // one reverted on success. Faults whose holder process (another process) is still alive
  // are skipped, reported with `skipped`, unless `include_live_holders` (that holder will
  // revert them itself). Idempotent. Returns one outcome per open fault; a failure is
  // reported in its outcome and the fault stays open for the next replay.
  absl::StatusOr<std::vector<ReplayOutcome>> Replay(const FaultRegistry& registry,
                                                    bool include_live_holders = false);

 private:
  RevertJournal(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  // Appends one line under the file lock and fsyncs it. Caller holds mu_.
  absl::Status AppendLocked(const nlohmann::json& line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Parses the whole file. Caller holds mu_ and the file lock.
  absl::StatusOr<std::vector<JournalEntry>> ReadOpenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  absl::Mutex mu_;
  const int fd_;  // O_RDWR | O_APPEND | O_CLOEXEC
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

// Opens the journal at `path` (DefaultPath() when empty) and replays it.
absl::StatusOr<std::vector<ReplayOutcome>> ReplayJournal(const FaultRegistry& registry,
                                                         const std::string& path = "");

}  // namespace chaosdrill::injector
