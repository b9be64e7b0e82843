#include "reports/merge.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace chaosdrill::reports {
namespace {

std::string Label(const std::vector<RunRecord>& records, const std::vector<std::string>& names,
                  size_t i) {
  if (i < names.size() && !names[i].empty()) {
    return absl::StrCat(names[i], " (run ", records[i].run_id, ")");
  }
  return absl::StrCat("run ", records[i].run_id);
}

void Shift(FaultEvent& f, int64_t by) {
  f.scheduled_ns += by;
  f.injected_ns += by;
  if (f.reverted_ns) *f.reverted_ns += by;
}

}  // namespace

absl::StatusOr<RunRecord> MergeRecords(const std::vector<RunRecord>& records,
                                       const std::vector<std::string>& names) {
  if (records.empty()) return absl::InvalidArgumentError("merge: no run records given");
  int64_t start = records[0].started_unix_ns;
  std::map<std::string, size_t> seen_ids;
  for (size_t i = 0; i < records.size(); ++i) {
    const RunRecord& r = records[i];
    if (r.scenario_name != records[0].scenario_name) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge: ", Label(records, names, i), " is scenario '", r.scenario_name,
                       "', but ", Label(records, names, 0), " is '", records[0].scenario_name,
                       "' (only runs of the same scenario merge)"));
    }
    if (r.in_progress) {
      return absl::InvalidArgumentError(absl::StrCat(
          "merge: ", Label(records, names, i),
          " is an in-progress record (its runner stopped before the drill ended: ", r.exit_reason,
          "); only finished runs merge"));
    }
    if (auto [at, fresh] = seen_ids.emplace(r.run_id, i); !fresh) {
      return absl::InvalidArgumentError(absl::StrCat(
          "merge: ", Label(records, names, i), " and ", Label(records, names, at->second),
          " have the same run id (the same runner's data twice would count "
          "every request twice)"));
    }
    start = std::min(start, r.started_unix_ns);
  }
  size_t injector = 0;  // the record whose phases lead: the first with faults
  for (size_t i = 0; i < records.size(); ++i) {
    if (!records[i].faults.empty()) {
      injector = i;
      break;
    }
  }

  // A copy of the first record keeps its scenario, environment and target (and any field
  // added later that has no merge rule yet); the merged data replaces the rest.
  RunRecord m = records[0];
  m.run_id = absl::StrCat(records[0].run_id, "-merged", records.size());
  m.started_unix_ns = start;
  m.requests = {};
  m.writes.clear();
  m.read_back.clear();
  m.read_back_corrupt.clear();
  m.faults.clear();
  m.events.clear();
  m.send_skew = LatencyHistogram();
  m.analysis = AnalysisResult();
  // Probe series stay the first record's (each runner probed on its own), moved onto the
  // merged time axis.
  for (ProbeSeries& p : m.probes) {
    for (ProbeSample& x : p.samples) x.t_ns += records[0].started_unix_ns - start;
  }
  const int64_t lead_shift = records[injector].started_unix_ns - start;
  m.phases = records[injector].phases;
  m.phases.baseline_end_ns += lead_shift;
  m.phases.faults_end_ns += lead_shift;
  m.phases.observe_end_ns += lead_shift;

  double rate = 0;  // requests per ns, combined
  double write_rate = 0;
  bool any_writes = false, writes_verified = true;
  std::map<std::string, size_t> fault_index;  // name -> index in m.faults
  size_t total_requests = 0;
  for (const RunRecord& r : records) total_requests += r.requests.size();
  m.requests.reserve(total_requests);
  ExitStatus worst = ExitStatus::kPassed;
  std::string worst_reason;
  for (const RunRecord& r : records) {
    const int64_t shift = r.started_unix_ns - start;
    for (RequestRecord q : r.requests) {
      q.intended_ns += shift;
      q.sent_ns += shift;
      q.completed_ns += shift;
      m.requests.push_back(q);
    }
    for (WriteRecord w : r.writes) {
      w.sent_ns += shift;
      if (w.ack_ns) *w.ack_ns += shift;
      m.writes.push_back(std::move(w));
    }
    if (!r.writes.empty()) {
      any_writes = true;
      writes_verified = writes_verified && r.verified;
    }
    for (const auto& [session, seqs] : r.read_back) {
      // Runners read back their own sessions; a session two runners read back is the same
      // store's answer, kept once.
      m.read_back.emplace(session, seqs);
    }
    for (const auto& [session, seqs] : r.read_back_corrupt)
      m.read_back_corrupt.emplace(session, seqs);
    for (FaultEvent f : r.faults) {
      Shift(f, shift);
      auto [at, fresh] = fault_index.emplace(f.name, m.faults.size());
      if (fresh) {
        m.faults.push_back(std::move(f));
        continue;
      }
      FaultEvent& into = m.faults[at->second];
      if (into.inject_failed && !f.inject_failed) {
        // The first confirmed injection wins over a failure elsewhere.
        std::optional<int64_t> reverted = into.reverted_ns;
        into = f;
        if (reverted && (!into.reverted_ns || *reverted > *into.reverted_ns)) {
          into.reverted_ns = reverted;
        }
        continue;
      }
      if (f.inject_failed) continue;
      into.injected_ns = std::min(into.injected_ns, f.injected_ns);
      into.scheduled_ns = std::min(into.scheduled_ns, f.scheduled_ns);
      if (f.reverted_ns && (!into.reverted_ns || *f.reverted_ns > *into.reverted_ns)) {
        into.reverted_ns = f.reverted_ns;
      }
    }
    for (Event e : r.events) {
      e.t_ns += shift;
      m.events.push_back(std::move(e));
    }
    m.send_skew.Merge(r.send_skew);
    if (r.request_interval_ns > 0) rate += 1.0 / r.request_interval_ns;
    if (r.write_interval_ns > 0) write_rate += 1.0 / r.write_interval_ns;
    m.phases.observe_end_ns = std::max(m.phases.observe_end_ns, r.phases.observe_end_ns + shift);
    ExitStatus status =
        r.exit_status == ExitStatus::kSloFailed ? ExitStatus::kPassed : r.exit_status;
    if (static_cast<int>(status) > static_cast<int>(worst)) {
      worst = status;
      worst_reason = r.exit_reason;
    }
  }
  m.verified = any_writes && writes_verified;
  m.exit_status = worst;
  m.exit_reason = worst_reason;
  std::stable_sort(
      m.requests.begin(), m.requests.end(),
      [](const RequestRecord& a, const RequestRecord& b) { return a.intended_ns < b.intended_ns; });
  std::stable_sort(
      m.writes.begin(), m.writes.end(),
      [](const WriteRecord& a, const WriteRecord& b) { return a.sent_ns < b.sent_ns; });
  auto event_order = [](const Event& a, const Event& b) {
    return std::tie(a.t_ns, a.type, a.fault, a.message) <
           std::tie(b.t_ns, b.type, b.fault, b.message);
  };
  std::stable_sort(m.events.begin(), m.events.end(), event_order);
  m.events.erase(std::unique(m.events.begin(), m.events.end()), m.events.end());
  m.request_interval_ns = rate > 0 ? std::llround(1.0 / rate) : 0;
  m.write_interval_ns = write_rate > 0 ? std::llround(1.0 / write_rate) : 0;
  return m;
}

}  // namespace chaosdrill::reports
