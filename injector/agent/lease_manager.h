// The agent's table of applied faults and the leases that keep them (DESIGN §5, "Lease").
// Every fault belongs to a client session and to the principal (certificate subject or
// unix uid) that injected it. Only that principal may renew (KeepAlive) or revert a fault;
// Halt (local socket only, checked by the server) reverts everything. A fault whose lease
// is not renewed for its TTL (capped to max_lease_ttl), whose duration is over, or which
// reached the hard maximum duration is reverted by a named reaper thread, which wakes at
// the earliest deadline (so within TTL + a few ms, well inside TTL + 1 s).
// Faults are applied through injector::JournaledFault: journaled and fsynced before they
// are applied, marked reverted after a verified revert.
//
// Locking. `mu_` guards only the table and is never held across a fault operation or a
// journal fsync, so renewals, List and the reaper's deadline bookkeeping never wait on
// one. Fault operations (Create+Apply, Revert) are serialised per kind family (the part of
// the kind before the first '.': "network", "process", ...), because faults of one family
// share kernel objects (one nftables table, the root qdisc of an interface); different
// families run concurrently. The reaper only try-locks a family, so a long injection
// (a GPU hold ramping for 30 s) delays reverts of its own family only. Halt is atomic with
// respect to Inject: it sets `halted_`, waits for injections in flight, then reverts all.
// A revert that fails leaves the fault listed as REVERT_FAILED and is retried every second.
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
  absl::Duration max_ttl = absl::Seconds(60);    // requested TTLs are capped to this
  absl::Duration max_duration = absl::Hours(1);  // hard maximum
};

struct InjectRequestInfo {
  FaultSpec spec;
  std::string session_id;
  absl::Duration lease_ttl = absl::ZeroDuration();     // zero: default
  absl::Duration max_duration = absl::ZeroDuration();  // zero: hard maximum
  std::string peer;       // for List and logs ("uid:0 pid:42", a certificate subject)
  std::string principal;  // who owns the fault ("uid:0", the subject); empty: peer
  std::string note;
};

struct InjectOutcome {
  std::string fault_id;
  int64_t active_monotonic_ns = 0;
  int64_t active_unix_ns = 0;
  std::string description;
  absl::Duration lease_ttl;  // granted (after the cap)
};

// A snapshot of one fault for List.
struct FaultView {
  std::string fault_id, session_id, description, peer, principal, note, error;
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
  // Reverts a fault of `principal`'s. NotFound for an unknown id; PermissionDenied
  // ("leases.owner: ...") for another principal's fault; OK for one already reverted.
  absl::Status Revert(const std::string& fault_id, const std::string& principal,
                      int64_t* reverted_monotonic_ns = nullptr,
                      int64_t* reverted_unix_ns = nullptr);
  // Renews every lease of `session_id` owned by `principal`; returns those fault ids and
  // sets *min_ttl to the shortest of their TTLs (the default TTL when there are none).
  std::vector<std::string> Renew(const std::string& session_id, const std::string& principal,
                                 absl::Duration* min_ttl);
  // A snapshot: a fault whose revert is running shows as active until the revert is
  // verified and journaled.
  std::vector<FaultView> List() const;
  // Reverts every active fault (newest first); returns how many were reverted.
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
    bool busy = false;            // a revert runs (outside mu_)
  };

  // The lock serialising fault operations of `kind`'s family (created on first use).
  absl::Mutex* FamilyLock(const std::string& kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reverts fault `id` as `as`. Called with mu_ held; releases it around the fault
  // operation. With `try_only`, returns Unavailable instead of waiting for the family lock.
  absl::Status RevertEntry(const std::string& id, FaultState as, bool try_only)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReaperLoop();

  injector::RevertJournal* const journal_;
  const injector::FaultRegistry* const registry_;
  AgentMetrics* const metrics_;
  const LeaseOptions options_;

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> active_ ABSL_GUARDED_BY(mu_);
  std::deque<FaultView> history_ ABSL_GUARDED_BY(mu_);  // newest last, bounded
  std::map<std::string, std::unique_ptr<absl::Mutex>> family_locks_ ABSL_GUARDED_BY(mu_);
  int inflight_ ABSL_GUARDED_BY(mu_) = 0;  // injections between the halt check and the table
  bool halted_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool table_changed_ ABSL_GUARDED_BY(mu_) = false;  // wakes the reaper
  std::thread reaper_;
};

absl::string_view FaultStateName(FaultState state);

}  // namespace chaosdrill::agent
