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

absl::StatusOr<InjectOutcome> LeaseManager::Inject(const InjectRequestInfo& request) {
  if (request.session_id.empty()) {
    return absl::InvalidArgumentError(
        "session_id is required (the client session owning "
        "the fault's lease)");
  }
  ASSIGN_OR_RETURN(const injector::FaultFactory* factory, registry_->Find(request.spec.kind));
  absl::MutexLock lock(&mu_);
  if (halted_) {
    return absl::FailedPreconditionError(
        "agent is halted: it refuses new faults until `chaosdrill agent resume`");
  }
  ASSIGN_OR_RETURN(injector::FaultPtr fault, factory->Create(request.spec));
  auto applied = injector::JournaledFault::Apply(journal_, request.spec.kind, std::move(fault));
  if (!applied.ok()) {
    metrics_->InjectFailed(request.spec.kind);
    return applied.status();
  }
  int64_t now = MonotonicNowNs();
  absl::Time wall = absl::Now();
  absl::Duration ttl =
      request.lease_ttl > absl::ZeroDuration() ? request.lease_ttl : options_.default_ttl;
  absl::Duration limit = options_.max_duration;
  if (request.max_duration > absl::ZeroDuration()) limit = std::min(limit, request.max_duration);
  if (request.spec.duration) limit = std::min(limit, *request.spec.duration);

  Entry e;
  e.fault = std::move(applied).value();
  e.view.fault_id = e.fault->id();
  e.view.session_id = request.session_id;
  e.view.description = e.fault->Describe();
  e.view.peer = request.peer;
  e.view.note = request.note;
  e.view.spec = request.spec;
  e.view.active_unix_ns = absl::ToUnixNanos(wall);
  e.view.lease_ttl = ttl;
  e.lease_deadline_ns = now + ToNs(ttl);
  e.end_deadline_ns = now + ToNs(limit);
  InjectOutcome out{.fault_id = e.view.fault_id,
                    .active_monotonic_ns = now,
                    .active_unix_ns = e.view.active_unix_ns,
                    .description = e.view.description};
  metrics_->Injected(request.spec.kind);
  LogInfo("agent", absl::StrCat("applied ", out.fault_id, ": ", out.description, " (session ",
                                request.session_id, ", lease ", absl::FormatDuration(ttl), ")"));
  active_.emplace(out.fault_id, std::move(e));
  table_changed_ = true;
  return out;
}

absl::Status LeaseManager::RevertLocked(std::map<std::string, Entry>::iterator it, FaultState as) {
  Entry& e = it->second;
  absl::Status st = e.fault->Revert();
  if (!st.ok()) {
    e.view.state = FaultState::kRevertFailed;
    e.view.error = st.ToString();
    e.retry_at_ns = MonotonicNowNs() + kRetryNs;
    metrics_->RevertFailed(e.view.spec.kind);
    LogError("agent", absl::StrCat("reverting ", it->first, " (", e.view.description,
                                   "): ", st.ToString(), "; retrying"));
    return st;
  }
  e.view.state = as;
  e.view.error.clear();
  e.view.ended_unix_ns = absl::ToUnixNanos(absl::Now());
  metrics_->Reverted(e.view.spec.kind);
  if (as == FaultState::kExpired) metrics_->LeaseExpired(e.view.spec.kind);
  LogInfo("agent", absl::StrCat("reverted ", it->first, " (", FaultStateName(as), ")"));
  history_.push_back(std::move(e.view));
  if (history_.size() > kHistory) history_.pop_front();
  active_.erase(it);
  table_changed_ = true;
  return absl::OkStatus();
}

absl::Status LeaseManager::Revert(const std::string& fault_id, int64_t* reverted_monotonic_ns,
                                  int64_t* reverted_unix_ns) {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(fault_id);
  if (it == active_.end()) {
    for (const FaultView& v : history_) {
      if (v.fault_id == fault_id) {
        if (reverted_monotonic_ns) *reverted_monotonic_ns = MonotonicNowNs();
        if (reverted_unix_ns) *reverted_unix_ns = v.ended_unix_ns;
        return absl::OkStatus();
      }
    }
    return absl::NotFoundError(absl::StrCat("no fault ", fault_id, " on this agent"));
  }
  RETURN_IF_ERROR(RevertLocked(it, FaultState::kReverted));
  if (reverted_monotonic_ns) *reverted_monotonic_ns = MonotonicNowNs();
  if (reverted_unix_ns) *reverted_unix_ns = absl::ToUnixNanos(absl::Now());
  return absl::OkStatus();
}

std::vector<std::string> LeaseManager::Renew(const std::string& session_id,
                                             absl::Duration* min_ttl) {
  std::vector<std::string> ids;
  absl::Duration shortest = absl::InfiniteDuration();
  int64_t now = MonotonicNowNs();
  absl::MutexLock lock(&mu_);
  for (auto& [id, e] : active_) {
    if (e.view.session_id != session_id) continue;
    e.lease_deadline_ns = now + ToNs(e.view.lease_ttl);
    shortest = std::min(shortest, e.view.lease_ttl);
    ids.push_back(id);
  }
  if (min_ttl) *min_ttl = ids.empty() ? options_.default_ttl : shortest;
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
    auto it = active_.find(id);
    if (it != active_.end() && RevertLocked(it, as).ok()) ++reverted;
  }
  return reverted;
}

int LeaseManager::Halt() {
  {
    absl::MutexLock lock(&mu_);
    halted_ = true;
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
    // Collect due entries first: RevertLocked erases from the map.
    std::vector<std::pair<std::string, FaultState>> due;
    for (auto& [id, e] : active_) {
      if (e.view.state == FaultState::kRevertFailed) {
        if (e.retry_at_ns <= now) {
          due.emplace_back(id,
                           now >= e.end_deadline_ns ? FaultState::kEnded : FaultState::kExpired);
        } else {
          next = std::min(next, e.retry_at_ns);
        }
        continue;
      }
      if (e.end_deadline_ns <= now) {
        due.emplace_back(id, FaultState::kEnded);
      } else if (e.lease_deadline_ns <= now) {
        due.emplace_back(id, FaultState::kExpired);
      } else {
        next = std::min({next, e.end_deadline_ns, e.lease_deadline_ns});
      }
    }
    for (const auto& [id, as] : due) {
      auto it = active_.find(id);
      if (it == active_.end()) continue;
      if (as == FaultState::kExpired) {
        LogWarn("agent", absl::StrCat("lease of ", id, " (session ", it->second.view.session_id,
                                      ") expired; reverting"));
      }
      (void)RevertLocked(it, as);
    }
    if (!due.empty()) continue;  // recompute deadlines (failed reverts got retry times)
    table_changed_ = false;
    auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || table_changed_; };
    absl::Duration wait = next == std::numeric_limits<int64_t>::max()
                              ? absl::Seconds(1)
                              : absl::Nanoseconds(std::max<int64_t>(next - now, 0));
    mu_.AwaitWithTimeout(absl::Condition(&wake), wait);
  }
}

}  // namespace chaosdrill::agent
