#include "injector/agent/lease_manager.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"

namespace chaosdrill::agent {
namespace {

constexpr size_t kHistory = 256;
constexpr int64_t kRetryNs = 1'000'000'000;
constexpr int64_t kDeferNs = 20'000'000;  // reaper retry when a family lock is busy

int64_t ToNs(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

}  // namespace

int64_t MonotonicNowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

absl::string_view FaultStateName(FaultState state) {
  switch (state) {
    case FaultState::kActive:
      return "active";
    case FaultState::kReverted:
      return "reverted";
    case FaultState::kExpired:
      return "expired";
    case FaultState::kEnded:
      return "ended";
    case FaultState::kRevertFailed:
      return "revert_failed";
  }
  return "unknown";
}

LeaseManager::LeaseManager(injector::RevertJournal* journal,
                           const injector::FaultRegistry* registry, AgentMetrics* metrics,
                           LeaseOptions options)
    : journal_(journal), registry_(registry), metrics_(metrics), options_(options) {}

LeaseManager::~LeaseManager() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (reaper_.joinable()) reaper_.join();
  // Faults still held here stay applied (and journaled): release them without reverting,
  // as a crash would, so JournaledFault's destructor does not revert behind our back.
  absl::MutexLock lock(&mu_);
  for (auto& [id, e] : active_) e.fault.release();  // NOLINT: deliberately leaked
}

void LeaseManager::StartReaper() {
  reaper_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "lease-reaper");
    ReaperLoop();
  });
}

absl::Mutex* LeaseManager::FamilyLock(const std::string& kind) {
  std::string family = kind.substr(0, kind.find('.'));
  std::unique_ptr<absl::Mutex>& m = family_locks_[family];
  if (!m) m = std::make_unique<absl::Mutex>();
  return m.get();
}

absl::StatusOr<InjectOutcome> LeaseManager::Inject(const InjectRequestInfo& request) {
  if (request.session_id.empty()) {
    return absl::InvalidArgumentError(
        "session_id is required (the client session owning "
        "the fault's lease)");
  }
  ASSIGN_OR_RETURN(const injector::FaultFactory* factory, registry_->Find(request.spec.kind));
  absl::Duration ttl =
      request.lease_ttl > absl::ZeroDuration() ? request.lease_ttl : options_.default_ttl;
  ttl = std::min(ttl, options_.max_ttl);
  absl::Mutex* family = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (halted_) {
      return absl::FailedPreconditionError(
          "agent is halted: it refuses new faults until `chaosdrill agent resume`");
    }
    ++inflight_;
    family = FamilyLock(request.spec.kind);
  }
  absl::StatusOr<std::unique_ptr<injector::JournaledFault>> applied;
  {
    // The fault operation and its journal fsyncs: outside mu_, serialised per family.
    absl::MutexLock op(family);
    absl::StatusOr<injector::FaultPtr> fault = factory->Create(request.spec);
    if (fault.ok()) {
      applied = injector::JournaledFault::Apply(journal_, request.spec.kind, std::move(*fault));
    } else {
      applied = fault.status();
    }
  }
  int64_t now = MonotonicNowNs();
  absl::Time wall = absl::Now();
  absl::MutexLock lock(&mu_);
  --inflight_;
  if (!applied.ok()) {
    metrics_->InjectFailed(request.spec.kind);
    return applied.status();
  }
  absl::Duration limit = options_.max_duration;
  if (request.max_duration > absl::ZeroDuration()) limit = std::min(limit, request.max_duration);
  if (request.spec.duration) limit = std::min(limit, *request.spec.duration);

  Entry e;
  e.fault = std::move(applied).value();
  e.view.fault_id = e.fault->id();
  e.view.session_id = request.session_id;
  e.view.description = e.fault->Describe();
  e.view.peer = request.peer;
  e.view.principal = request.principal.empty() ? request.peer : request.principal;
  e.view.note = request.note;
  e.view.spec = request.spec;
  e.view.active_unix_ns = absl::ToUnixNanos(wall);
  e.view.lease_ttl = ttl;
  e.lease_deadline_ns = now + ToNs(ttl);
  e.end_deadline_ns = now + ToNs(limit);
  InjectOutcome out{.fault_id = e.view.fault_id,
                    .active_monotonic_ns = now,
                    .active_unix_ns = e.view.active_unix_ns,
                    .description = e.view.description,
                    .lease_ttl = ttl};
  metrics_->Injected(request.spec.kind);
  LogInfo("agent", absl::StrCat("applied ", out.fault_id, ": ", out.description, " (session ",
                                request.session_id, ", lease ", absl::FormatDuration(ttl), ")"));
  active_.emplace(out.fault_id, std::move(e));
  table_changed_ = true;
  return out;
}

absl::Status LeaseManager::RevertEntry(const std::string& id, FaultState as, bool try_only) {
  auto it = active_.find(id);
  if (it == active_.end()) return absl::OkStatus();  // reverted meanwhile
  if (it->second.busy) {
    if (try_only) return absl::UnavailableError("a revert is in progress");
    auto settled = [this, &id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      auto i = active_.find(id);
      return i == active_.end() || !i->second.busy;
    };
    mu_.Await(absl::Condition(&settled));
    it = active_.find(id);
    if (it == active_.end()) return absl::OkStatus();
  }
  absl::Mutex* family = FamilyLock(it->second.view.spec.kind);
  if (try_only && !family->TryLock()) {
    return absl::UnavailableError("another operation of this kind family runs");
  }
  it->second.busy = true;
  injector::JournaledFault* fault = it->second.fault.get();
  mu_.Unlock();
  if (!try_only) family->Lock();
  absl::Status st = fault->Revert();  // the fault operation and the journal: outside mu_
  family->Unlock();
  mu_.Lock();
  it = active_.find(id);  // still there: nobody erases a busy entry
  Entry& e = it->second;
  e.busy = false;
  table_changed_ = true;
  if (!st.ok()) {
    e.view.state = FaultState::kRevertFailed;
    e.view.error = st.ToString();
    e.retry_at_ns = MonotonicNowNs() + kRetryNs;
    metrics_->RevertFailed(e.view.spec.kind);
    LogError("agent", absl::StrCat("reverting ", id, " (", e.view.description, "): ", st.ToString(),
                                   "; retrying"));
    return st;
  }
  e.view.state = as;
  e.view.error.clear();
  e.view.ended_unix_ns = absl::ToUnixNanos(absl::Now());
  metrics_->Reverted(e.view.spec.kind);
  if (as == FaultState::kExpired) metrics_->LeaseExpired(e.view.spec.kind);
  LogInfo("agent", absl::StrCat("reverted ", id, " (", FaultStateName(as), ")"));
  history_.push_back(std::move(e.view));
  if (history_.size() > kHistory) history_.pop_front();
  active_.erase(it);
  return absl::OkStatus();
}

namespace {

absl::Status NotOwner(const FaultView& v, const std::string& principal) {
  return absl::PermissionDeniedError(absl::StrCat(
      "leases.owner: fault ", v.fault_id, " belongs to ", v.principal, " (session ", v.session_id,
      "), not to ", principal,
      "; a client may revert only its own faults (an operator can halt the agent from its "
      "local socket)"));
}

}  // namespace

absl::Status LeaseManager::Revert(const std::string& fault_id, const std::string& principal,
                                  int64_t* reverted_monotonic_ns, int64_t* reverted_unix_ns) {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(fault_id);
  if (it == active_.end()) {
    for (const FaultView& v : history_) {
      if (v.fault_id == fault_id) {
        if (v.principal != principal) return NotOwner(v, principal);
        if (reverted_monotonic_ns) *reverted_monotonic_ns = MonotonicNowNs();
        if (reverted_unix_ns) *reverted_unix_ns = v.ended_unix_ns;
        return absl::OkStatus();
      }
    }
    return absl::NotFoundError(absl::StrCat("no fault ", fault_id, " on this agent"));
  }
  if (it->second.view.principal != principal) return NotOwner(it->second.view, principal);
  RETURN_IF_ERROR(RevertEntry(fault_id, FaultState::kReverted, /*try_only=*/false));
  if (reverted_monotonic_ns) *reverted_monotonic_ns = MonotonicNowNs();
  if (reverted_unix_ns) *reverted_unix_ns = absl::ToUnixNanos(absl::Now());
  return absl::OkStatus();
}

std::vector<std::string> LeaseManager::Renew(const std::string& session_id,
                                             const std::string& principal,
                                             absl::Duration* min_ttl) {
  std::vector<std::string> ids;
  absl::Duration shortest = absl::InfiniteDuration();
  int64_t now = MonotonicNowNs();
  absl::MutexLock lock(&mu_);
  for (auto& [id, e] : active_) {
    if (e.view.session_id != session_id || e.view.principal != principal) continue;
    e.lease_deadline_ns = now + ToNs(e.view.lease_ttl);
    shortest = std::min(shortest, e.view.lease_ttl);
    ids.push_back(id);
  }
  if (min_ttl) *min_ttl = ids.empty() ? std::min(options_.default_ttl, options_.max_ttl) : shortest;
  return ids;
}

std::vector<FaultView> LeaseManager::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<FaultView> out(history_.begin(), history_.end());
  for (const auto& [id, e] : active_) out.push_back(e.view);
  return out;
}

int LeaseManager::RevertAll(FaultState as) {
  absl::MutexLock lock(&mu_);
  int reverted = 0;
  // Newest first, so faults layered on each other come off in reverse order.
  std::vector<std::pair<int64_t, std::string>> order;
  for (const auto& [id, e] : active_) order.emplace_back(e.view.active_unix_ns, id);
  std::sort(order.rbegin(), order.rend());
  for (const auto& [t, id] : order) {
    if (active_.count(id) > 0 && RevertEntry(id, as, /*try_only=*/false).ok()) ++reverted;
  }
  return reverted;
}

int LeaseManager::Halt() {
  {
    absl::MutexLock lock(&mu_);
    halted_ = true;
    // Injections past the halt check finish first, so that RevertAll sees them.
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return inflight_ == 0; };
    mu_.Await(absl::Condition(&drained));
  }
  LogWarn("agent", "halted: reverting every fault and refusing new ones until resume");
  return RevertAll(FaultState::kReverted);
}

void LeaseManager::Resume() {
  absl::MutexLock lock(&mu_);
  halted_ = false;
  LogInfo("agent", "resumed");
}

bool LeaseManager::halted() const {
  absl::MutexLock lock(&mu_);
  return halted_;
}

size_t LeaseManager::active_count() const {
  absl::MutexLock lock(&mu_);
  return active_.size();
}

void LeaseManager::ReaperLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    int64_t now = MonotonicNowNs();
    int64_t next = std::numeric_limits<int64_t>::max();
    std::vector<std::string> due;
    for (auto& [id, e] : active_) {
      if (e.busy) continue;  // its revert is running; it changes the table when done
      int64_t at = e.view.state == FaultState::kRevertFailed
                       ? e.retry_at_ns
                       : std::min(e.end_deadline_ns, e.lease_deadline_ns);
      if (at <= now) {
        due.push_back(id);
      } else {
        next = std::min(next, at);
      }
    }
    bool deferred = false;
    for (const std::string& id : due) {
      // RevertEntry lets go of mu_ while it works: look again, the lease may be renewed.
      auto it = active_.find(id);
      if (it == active_.end() || it->second.busy) continue;
      Entry& e = it->second;
      int64_t t = MonotonicNowNs();
      FaultState as;
      if (e.view.state == FaultState::kRevertFailed) {
        if (e.retry_at_ns > t) continue;
        as = t >= e.end_deadline_ns ? FaultState::kEnded : FaultState::kExpired;
      } else if (e.end_deadline_ns <= t) {
        as = FaultState::kEnded;
      } else if (e.lease_deadline_ns <= t) {
        as = FaultState::kExpired;
        LogWarn("agent", absl::StrCat("lease of ", id, " (session ", e.view.session_id,
                                      ") expired; reverting"));
      } else {
        continue;  // renewed meanwhile
      }
      absl::Status st = RevertEntry(id, as, /*try_only=*/true);
      if (absl::IsUnavailable(st)) deferred = true;  // its family is busy: soon again
    }
    if (stopping_) break;
    if (!due.empty() && !deferred) continue;  // recompute deadlines
    if (deferred) next = std::min(next, MonotonicNowNs() + kDeferNs);
    table_changed_ = false;
    auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || table_changed_; };
    int64_t t = MonotonicNowNs();
    absl::Duration wait = next == std::numeric_limits<int64_t>::max()
                              ? absl::Seconds(1)
                              : absl::Nanoseconds(std::max<int64_t>(next - t, 0));
    mu_.AwaitWithTimeout(absl::Condition(&wake), wait);
  }
}

}  // namespace chaosdrill::agent
