// The agent's table of applied faults and the leases that keep them (DESIGN §5, "Lease").
// Every fault belongs to a client session. A session renews the leases of all its faults
// (KeepAlive); a fault whose lease is not renewed for its TTL, whose duration is over, or
// which reached the hard maximum duration is reverted by a named reaper thread, which
// wakes at the earliest deadline (so within TTL + a few ms, well inside TTL + 1 s).
// Faults are applied through injector::JournaledFault: journaled and fsynced before they
// are applied, marked reverted after a verified revert.
//
// Thread-safe. Injections and reverts are serialised (one mutex): fault operations are
// short, and serialising them keeps Halt atomic with respect to Inject. A revert that
// fails leaves the fault listed as REVERT_FAILED and is retried every second.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/fault_spec.h"
#include "injector/agent/agent_metrics.h"
#include "injector/fault_registry.h"
#include "injector/journal.h"
#include "injector/journaled_fault.h"

namespace chaosdrill::agent {

enum class FaultState { kActive, kReverted, kExpired, kEnded, kRevertFailed };

struct LeaseOptions {
  absl::Duration default_ttl = absl::Seconds(10);
  absl::Duration max_duration = absl::Hours(1);  // hard maximum
};

struct InjectRequestInfo {
  FaultSpec spec;
  std::string session_id;
  absl::Duration lease_ttl = absl::ZeroDuration();     // zero: default
  absl::Duration max_duration = absl::ZeroDuration();  // zero: hard maximum
  std::string peer;
  std::string note;
};

struct InjectOutcome {
  std::string fault_id;
  int64_t active_monotonic_ns = 0;
  int64_t active_unix_ns = 0;
  std::string description;
};

// A snapshot of one fault for List.
struct FaultView {
  std::string fault_id, session_id, description, peer, note, error;
  FaultSpec spec;
  FaultState state = FaultState::kActive;
  int64_t active_unix_ns = 0, ended_unix_ns = 0;
  absl::Duration lease_ttl;
};

int64_t MonotonicNowNs();

class LeaseManager {
 public:
  // `journal`, `registry` and `metrics` must outlive the manager.
  LeaseManager(injector::RevertJournal* journal, const injector::FaultRegistry* registry,
               AgentMetrics* metrics, LeaseOptions options);
  // Stops the reaper. Does not revert: call RevertAll() first for a clean stop (a crash
  // leaves the journal to the next start).
  ~LeaseManager();
  LeaseManager(const LeaseManager&) = delete;
  LeaseManager& operator=(const LeaseManager&) = delete;

  void StartReaper();

  // FailedPrecondition while halted; InvalidArgument/NotFound from the fault kind.
  absl::StatusOr<InjectOutcome> Inject(const InjectRequestInfo& request);
  // NotFound for an unknown id; OK for one already reverted. Sets *reverted_unix_ns.
  absl::Status Revert(const std::string& fault_id, int64_t* reverted_monotonic_ns = nullptr,
                      int64_t* reverted_unix_ns = nullptr);
  // Renews every lease of `session_id`; returns its active fault ids and the shortest TTL.
  std::vector<std::string> Renew(const std::string& session_id, absl::Duration* min_ttl);
  std::vector<FaultView> List() const;
  // Reverts every active fault; returns how many were reverted.
  int RevertAll(FaultState as);
  int Halt();
  void Resume();
  bool halted() const;
  size_t active_count() const;
  const LeaseOptions& options() const { return options_; }

 private:
  struct Entry {
    std::unique_ptr<injector::JournaledFault> fault;
    FaultView view;
    int64_t lease_deadline_ns = 0;
    int64_t end_deadline_ns = 0;  // duration / max duration
    int64_t retry_at_ns = 0;      // after a failed revert
  };

  // Reverts one entry; on success moves it to the history. Caller holds mu_.
  absl::Status RevertLocked(std::map<std::string, Entry>::iterator it, FaultState as)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReaperLoop();

  injector::RevertJournal* const journal_;
  const injector::FaultRegistry* const registry_;
  AgentMetrics* const metrics_;
  const LeaseOptions options_;

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> active_ ABSL_GUARDED_BY(mu_);
  std::deque<FaultView> history_ ABSL_GUARDED_BY(mu_);  // newest last, bounded
  bool halted_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool table_changed_ ABSL_GUARDED_BY(mu_) = false;  // wakes the reaper
  std::thread reaper_;
};

absl::string_view FaultStateName(FaultState state);

}  // namespace chaosdrill::agent
