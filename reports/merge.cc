#include "reports/merge.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace chaosdrill::reports {

absl::StatusOr<RunRecord> MergeRecords(const std::vector<RunRecord>& records) {
  if (records.empty()) return absl::InvalidArgumentError("merge: no run records given");
  int64_t start = records[0].started_unix_ns;
  for (const RunRecord& r : records) {
    if (r.scenario_name != records[0].scenario_name) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge: run ", r.run_id, " is scenario '", r.scenario_name, "', but run ",
                       records[0].run_id, " is '", records[0].scenario_name,
                       "' (only runs of the same scenario merge)"));
    }
    start = std::min(start, r.started_unix_ns);
  }
  RunRecord m = records[0];
  m.run_id = absl::StrCat(records[0].run_id, "-merged", records.size());
  m.started_unix_ns = start;
  m.requests.clear();
  m.writes.clear();
  m.read_back.clear();
  m.events.clear();
  m.send_skew = LatencyHistogram();
  m.analysis = AnalysisResult();
  m.verified = true;
  double rate = 0;  // requests per ns, combined
  double write_rate = 0;
  const int64_t shift0 = records[0].started_unix_ns - start;
  for (FaultEvent& f : m.faults) {
    f.scheduled_ns += shift0;
    f.injected_ns += shift0;
    if (f.reverted_ns) *f.reverted_ns += shift0;
  }
  m.phases.baseline_end_ns += shift0;
  m.phases.faults_end_ns += shift0;
  m.phases.observe_end_ns += shift0;
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
    for (const auto& [session, seqs] : r.read_back) {
      std::vector<int64_t>& out = m.read_back[session];
      if (out.empty()) out = seqs;  // runners read the same store: keep one copy
    }
    for (Event e : r.events) {
      e.t_ns += shift;
      m.events.push_back(std::move(e));
    }
    m.send_skew.Merge(r.send_skew);
    m.verified = m.verified && r.verified;
    if (r.request_interval_ns > 0) rate += 1.0 / r.request_interval_ns;
    if (r.write_interval_ns > 0) write_rate += 1.0 / r.write_interval_ns;
    m.phases.observe_end_ns = std::max(m.phases.observe_end_ns, r.phases.observe_end_ns + shift);
    if (static_cast<int>(r.exit_status) > static_cast<int>(m.exit_status)) {
      m.exit_status = r.exit_status;
      m.exit_reason = r.exit_reason;
    }
  }
  std::stable_sort(
      m.requests.begin(), m.requests.end(),
      [](const RequestRecord& a, const RequestRecord& b) { return a.intended_ns < b.intended_ns; });
  std::stable_sort(m.events.begin(), m.events.end(),
                   [](const Event& a, const Event& b) { return a.t_ns < b.t_ns; });
  m.request_interval_ns = rate > 0 ? std::llround(1.0 / rate) : 0;
  m.write_interval_ns = write_rate > 0 ? std::llround(1.0 / write_rate) : 0;
  return m;
}

}  // namespace chaosdrill::reports
