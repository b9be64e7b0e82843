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
// starts on a fresh line.
//
// Durability (DESIGN §5: the revert record is on disk before the fault is applied):
//   - "apply" and a changed "update" are fdatasync'ed before the call returns;
//   - an "update" whose record equals the open entry's latest one is not written at all;
//   - a "reverted" line is written at once but not fsynced by itself: the next fdatasync
//     of the file (the next apply's, or the journal's destructor) makes it durable. Losing
//     it in a machine crash costs one redundant, idempotent revert at replay, and it cannot
//     collide with a newer fault: any later "apply" is fsynced, and fdatasync flushes every
//     earlier line of the file with it.
// Open entries are kept in an in-memory index, brought up to date incrementally from the
// bytes other processes appended since (so no call re-reads the whole file). Compaction:
// when no fault is open the file is truncated (no fsync needed: either state replays to
// nothing); when it has grown past 1 MiB and four times what its open entries need, it is
// rewritten with just those entries (temp file, fsync, rename); other processes notice the
// new inode on their next call and reopen.
//
// Thread-safe within a process (a mutex) and across processes (flock on the file), so the
// agent's threads, `chaosdrill inject` and `chaosdrill revert` can share one journal.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
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
  // Journals a more detailed revert record for an open fault (nothing is written when the
  // record is the entry's latest one already).
  absl::Status AppendUpdate(absl::string_view id, const nlohmann::json& record);
  // Journals that a fault is verifiably gone (durable with the next fsync, see above);
  // compacts the file if nothing is open, or occasionally when it has grown large.
  absl::Status MarkReverted(absl::string_view id);
  // Makes every line written so far durable (fdatasync) if any is not yet.
  absl::Status Sync();

  // Counters for tests and benchmarks.
  struct Stats {
    uint64_t fsyncs = 0;           // fdatasync calls
    uint64_t updates_skipped = 0;  // "update" lines not written: record unchanged
    uint64_t full_reads = 0;       // times the whole file was parsed
    uint64_t compactions = 0;      // rewrites with open entries only (not truncations)
  };
  Stats stats() const;

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
  struct OpenFault {
    uint64_t seq = 0;  // apply order
    int64_t time = 0;  // of the apply line (kept by compaction)
    JournalEntry entry;
  };
  // Releases the file lock taken by LockAndSync when it goes out of scope.
  class Unlocker {
   public:
    explicit Unlocker(RevertJournal* j) : j_(j) {}
    ~Unlocker();
    Unlocker(const Unlocker&) = delete;
    Unlocker& operator=(const Unlocker&) = delete;

   private:
    RevertJournal* j_;
  };

  RevertJournal(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  // Takes the file lock on the journal the path names now (reopening it if another
  // process replaced or removed the file) and brings the index up to date. Caller holds mu_.
  // On OK the lock is held until UnlockFile() (use an Unlocker).
  absl::Status LockAndSync() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnlockFile() ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Parses bytes [from, size) of the file into the index. Caller holds mu_ and the lock.
  absl::Status ParseFrom(off_t from, off_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyLine(const nlohmann::json& j) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResetIndex() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends one line under the file lock (caller holds both), fdatasyncs it if `durable`,
  // and records it in the index.
  absl::Status AppendLocked(const nlohmann::json& line, bool durable)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SyncLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Truncates (nothing open) or rewrites (large) the file. Caller holds mu_ and the lock.
  absl::Status MaybeCompactLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<JournalEntry> OpenLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  mutable absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_);  // O_RDWR | O_APPEND | O_CLOEXEC
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  // The index: open entries as of byte end_ of the file, whose last bytes were tail_ (to
  // tell an append by another process from a truncate-and-rewrite).
  std::map<std::string, OpenFault> open_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  off_t end_ ABSL_GUARDED_BY(mu_) = 0;
  off_t size_ ABSL_GUARDED_BY(mu_) = 0;  // as of LockAndSync (bytes past end_: a torn line)
  std::string tail_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;     // lines written since the last fdatasync
  nlohmann::json holder_ ABSL_GUARDED_BY(mu_);  // this process, for apply lines
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

// Opens the journal at `path` (DefaultPath() when empty) and replays it.
absl::StatusOr<std::vector<ReplayOutcome>> ReplayJournal(const FaultRegistry& registry,
                                                         const std::string& path = "");

}  // namespace chaosdrill::injector
