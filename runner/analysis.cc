#include "runner/analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/quantity.h"

namespace chaosdrill::runner {
namespace {

using reports::AnalysisResult;
using reports::FaultEvent;
using reports::FaultResult;
using reports::RequestRecord;
using reports::RpoResult;
using reports::SloVerdict;

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

std::string Seconds(int64_t ns) {
  // Millisecond resolution is what RTO can honestly claim at typical request rates.
  return DurationToString(absl::Milliseconds(std::llround(ns / 1e6)));
}

// Sorted requests with prefix sums of good ones, so any time window's good ratio is two
// binary searches.
class Timeline {
 public:
  Timeline(const std::vector<RequestRecord>& requests, int64_t good_latency_ns)
      : requests_(requests), good_prefix_(requests.size() + 1, 0) {
    good_.reserve(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      good_.push_back(IsGood(requests[i], good_latency_ns));
      good_prefix_[i + 1] = good_prefix_[i] + (good_.back() ? 1 : 0);
    }
  }

  size_t size() const { return requests_.size(); }
  int64_t intended(size_t i) const { return requests_[i].intended_ns; }
  bool good(size_t i) const { return good_[i]; }
  const RequestRecord& at(size_t i) const { return requests_[i]; }

  // First index with intended >= t.
  size_t LowerBound(int64_t t) const {
    return std::partition_point(requests_.begin(), requests_.end(),
                                [t](const RequestRecord& r) { return r.intended_ns < t; }) -
           requests_.begin();
  }
  // [begin, end) index range of requests intended in [from, to).
  uint64_t Good(size_t begin, size_t end) const { return good_prefix_[end] - good_prefix_[begin]; }

 private:
  const std::vector<RequestRecord>& requests_;
  std::vector<bool> good_;
  std::vector<uint64_t> good_prefix_;
};

// Latency (from the intended send time) of the completed requests in [begin, end).
LatencyHistogram LatencyOf(const Timeline& t, size_t begin, size_t end) {
  LatencyHistogram h;
  for (size_t i = begin; i < end; ++i) {
    if (IsCompleted(t.at(i))) h.Record(t.at(i).latency_ns());
  }
  return h;
}

// Service time (from the actual send) of the completed requests in [begin, end).
LatencyHistogram ServiceOf(const Timeline& t, size_t begin, size_t end) {
  LatencyHistogram h;
  for (size_t i = begin; i < end; ++i) {
    if (IsCompleted(t.at(i))) h.Record(t.at(i).service_ns());
  }
  return h;
}

// next_bad[i]: the first j >= i whose hold window [t_j, t_j + hold) is not good at >= ratio
// (size() if none). A window without requests is ok.
std::vector<size_t> NextBadWindow(const Timeline& t, int64_t hold_ns, double ratio) {
  std::vector<size_t> next_bad(t.size() + 1, t.size());
  for (size_t i = t.size(); i-- > 0;) {
    size_t begin = t.LowerBound(t.intended(i));
    size_t end = t.LowerBound(t.intended(i) + hold_ns);
    uint64_t total = end - begin;
    bool ok = total == 0 || static_cast<double>(t.Good(begin, end)) >= ratio * total;
    next_bad[i] = ok ? next_bad[i + 1] : i;
  }
  return next_bad;
}

// The injection time of the first other fault injected strictly after `t`, or kNever.
int64_t NextInjectionAfter(const std::vector<int64_t>& injections, int64_t t) {
  auto it = std::upper_bound(injections.begin(), injections.end(), t);
  return it == injections.end() ? kNever : *it;
}

FaultResult AnalyzeFault(const FaultEvent& f, const AnalysisInput& in, const Timeline& t,
                         const std::vector<size_t>& next_bad,
                         const std::vector<int64_t>& injections, double budget_requests) {
  FaultResult r{.name = f.name};
  const int64_t interval = in.request_interval_ns;
  const int64_t ti = f.injected_ns;
  const int64_t observe_end = in.phases.observe_end_ns;
  // The fault's own span: from one interval before t_i (the request in flight when it
  // landed) until one interval before the next fault's injection (where that fault's span
  // begins, so consecutive spans never share a request), or observation ends.
  const int64_t next_injection = NextInjectionAfter(injections, ti);
  const int64_t span_end =
      next_injection == kNever ? observe_end : std::min(observe_end, next_injection - interval);
  const size_t span_begin = t.LowerBound(ti - interval);
  const size_t span_last = std::max(span_begin, t.LowerBound(span_end));

  size_t impact = t.size();
  for (size_t i = span_begin; i < span_last; ++i) {
    if (!t.good(i)) {
      impact = i;
      break;
    }
  }
  if (impact == t.size()) {
    r.recovered = true;
    r.recovered_ns = ti;  // no impact: RTO 0
    LatencyHistogram outside = LatencyOf(t, span_begin, span_last);
    r.outside_p50_ns = outside.ValueAtQuantile(0.5);
    r.outside_p99_ns = outside.ValueAtQuantile(0.99);
    return r;
  }
  r.impact = true;
  r.impact_ns = t.intended(impact);
  r.time_to_impact_ns = std::max<int64_t>(0, r.impact_ns - ti);

  // Recovery: the first good request at t_r >= t_i after the impact such that every hold
  // window [t, t + hold) starting at a request in [t_r, check_end - hold] is good at >= ratio,
  // where check_end is the end of observation or, when another fault is injected after t_r,
  // one interval before that injection (its own impact window). A candidate too close to
  // the next injection to be confirmed recovers only together with the next fault.
  size_t recovered = t.size();
  for (size_t c = std::max(impact + 1, t.LowerBound(ti));
       c < t.size() && t.intended(c) < observe_end; ++c) {
    if (!t.good(c)) continue;
    const int64_t tr = t.intended(c);
    const int64_t next = NextInjectionAfter(injections, tr);
    const int64_t check_end = next == kNever ? observe_end : std::min(observe_end, next - interval);
    if (tr + in.hold_ns > check_end) {
      if (next == kNever || next >= observe_end) break;  // too close to the end: unrecovered
      c = t.LowerBound(next) - 1;                        // resume at the next fault
      continue;
    }
    const size_t last = t.LowerBound(check_end - in.hold_ns + 1);  // exclusive
    if (next_bad[c] >= last) {
      recovered = c;
      break;
    }
    c = next_bad[c];  // every candidate up to the failing window would include it
  }

  const size_t outage_end = recovered == t.size() ? t.LowerBound(observe_end) : recovered;
  r.failed_requests = (outage_end - impact) - t.Good(impact, outage_end);
  LatencyHistogram outage = LatencyOf(t, impact, outage_end);
  r.outage_p50_ns = outage.ValueAtQuantile(0.5);
  r.outage_p99_ns = outage.ValueAtQuantile(0.99);
  LatencyHistogram outside = LatencyOf(t, span_begin, impact);
  if (outage_end < span_last) outside.Merge(LatencyOf(t, outage_end, span_last));
  r.outside_p50_ns = outside.ValueAtQuantile(0.5);
  r.outside_p99_ns = outside.ValueAtQuantile(0.99);
  if (budget_requests > 0) r.error_budget_consumed = r.failed_requests / budget_requests;
  if (recovered == t.size()) {  // unrecovered: the outage lasts to the end of observation
    r.outage_ns = std::max<int64_t>(0, observe_end - r.impact_ns);
    return r;
  }
  r.recovered = true;
  r.recovered_ns = t.intended(recovered);
  r.rto_ns = r.recovered_ns - ti;
  r.outage_ns = r.recovered_ns - r.impact_ns;
  if (f.duration_ns && f.reverted_ns) {
    r.recover_after_revert_ns = std::max<int64_t>(0, r.recovered_ns - *f.reverted_ns);
  }
  return r;
}

RpoResult AnalyzeRpo(const AnalysisInput& in) {
  RpoResult rpo;
  std::map<std::string, std::multiset<int64_t>> stored;
  for (const auto& [session, seqs] : in.read_back) {
    auto& set = stored[session];
    int64_t highest = std::numeric_limits<int64_t>::min();
    for (int64_t seq : seqs) {
      if (set.count(seq) > 0) ++rpo.duplicated;
      if (seq < highest) ++rpo.reordered;
      highest = std::max(highest, seq);
      set.insert(seq);
    }
  }
  int64_t first_lost_ack = kNever, last_lost_ack = std::numeric_limits<int64_t>::min();
  for (const reports::WriteRecord& w : in.writes) {
    ++rpo.writes;
    auto it = stored.find(w.session);
    bool present = it != stored.end() && it->second.count(w.seq) > 0;
    if (!w.ack_ns) {
      if (present) ++rpo.ambiguous;
      continue;
    }
    ++rpo.acknowledged;
    if (present) continue;
    ++rpo.lost;
    rpo.lost_writes.push_back(w);
    first_lost_ack = std::min(first_lost_ack, *w.ack_ns);
    last_lost_ack = std::max(last_lost_ack, *w.ack_ns);
  }
  if (rpo.lost > 0) rpo.rpo_ns = last_lost_ack - first_lost_ack + in.write_interval_ns;
  return rpo;
}

SloVerdict Verdict(std::string name, std::string target, std::string measured, bool pass,
                   std::string reason) {
  return SloVerdict{.name = std::move(name),
                    .target = std::move(target),
                    .measured = std::move(measured),
                    .pass = pass,
                    .reason = pass ? "" : std::move(reason)};
}

}  // namespace

bool IsOk(const RequestRecord& r) {
  return IsCompleted(r) && r.code == 0 && (r.flags & RequestRecord::kTimeout) == 0 &&
         (r.flags & RequestRecord::kGoldenMismatch) == 0;
}

bool IsGood(const RequestRecord& r, int64_t good_latency_ns) {
  return IsOk(r) && r.latency_ns() <= good_latency_ns;
}

SteadyStateStats SteadyStateOf(const std::vector<RequestRecord>& sorted_requests,
                               int64_t baseline_end_ns, std::optional<int64_t> good_latency_ns) {
  const int64_t from = SteadyStateFrom(baseline_end_ns);
  auto first =
      std::partition_point(sorted_requests.begin(), sorted_requests.end(),
                           [from](const RequestRecord& r) { return r.intended_ns < from; });
  auto last = std::partition_point(first, sorted_requests.end(), [&](const RequestRecord& r) {
    return r.intended_ns < baseline_end_ns;
  });
  SteadyStateStats ss;
  LatencyHistogram ok_latency;
  for (auto it = first; it != last; ++it) {
    ++ss.requests;
    if (IsOk(*it)) {
      ++ss.ok;
      ok_latency.Record(it->latency_ns());
    }
  }
  ss.ok_p50_ns = ok_latency.ValueAtQuantile(0.5);
  ss.ok_p99_ns = ok_latency.ValueAtQuantile(0.99);
  ss.good_latency_ns = good_latency_ns    ? *good_latency_ns
                       : ss.ok_p99_ns > 0 ? 5 * ss.ok_p99_ns
                                          : kNever;
  for (auto it = first; it != last; ++it) {
    if (IsGood(*it, ss.good_latency_ns)) ++ss.good;
  }
  return ss;
}

int64_t BaselineP99(const std::vector<RequestRecord>& sorted_requests, int64_t baseline_end_ns) {
  return SteadyStateOf(sorted_requests, baseline_end_ns, std::nullopt).ok_p99_ns;
}

AnalysisResult Analyze(const AnalysisInput& input) {
  std::vector<RequestRecord> sorted_copy;
  const std::vector<RequestRecord>* requests = &input.requests;
  auto by_intended = [](const RequestRecord& a, const RequestRecord& b) {
    return a.intended_ns < b.intended_ns;
  };
  if (!std::is_sorted(input.requests.begin(), input.requests.end(), by_intended)) {
    sorted_copy = input.requests;
    std::stable_sort(sorted_copy.begin(), sorted_copy.end(), by_intended);
    requests = &sorted_copy;
  }

  AnalysisResult result;
  // Baseline p99 and good_latency exactly as the steady-state check saw them.
  const SteadyStateStats steady =
      SteadyStateOf(*requests, input.phases.baseline_end_ns, input.good_latency_ns);
  result.baseline_p99_ns = steady.ok_p99_ns;
  result.good_latency_ns = steady.good_latency_ns;

  Timeline t(*requests, result.good_latency_ns);
  size_t begin = t.LowerBound(input.phases.baseline_end_ns);
  size_t end = t.LowerBound(input.phases.observe_end_ns);
  result.requests = end - begin;
  result.good = t.Good(begin, end);
  result.availability = result.requests ? static_cast<double>(result.good) / result.requests : 1;
  for (size_t i = begin; i < end; ++i) {
    if (!IsCompleted(t.at(i))) ++result.incomplete;
  }
  LatencyHistogram measured = LatencyOf(t, begin, end);
  result.p50_ns = measured.ValueAtQuantile(0.5);
  result.p99_ns = measured.ValueAtQuantile(0.99);
  LatencyHistogram service = ServiceOf(t, begin, end);
  result.service_p50_ns = service.ValueAtQuantile(0.5);
  result.service_p99_ns = service.ValueAtQuantile(0.99);
  double budget_requests = 0;
  if (input.slo.error_budget_requests) {
    budget_requests = *input.slo.error_budget_requests;
  } else if (input.slo.availability) {
    budget_requests = (1 - *input.slo.availability) * result.requests;
  }
  uint64_t bad = result.requests - result.good;
  if (budget_requests > 0) {
    result.error_budget_consumed = bad / budget_requests;
  } else if (input.slo.availability || input.slo.error_budget_requests) {
    result.error_budget_consumed = bad > 0 ? std::numeric_limits<double>::infinity() : 0;
  }

  std::vector<int64_t> injections;
  for (const FaultEvent& f : input.faults) {
    if (!f.inject_failed) injections.push_back(f.injected_ns);
  }
  std::sort(injections.begin(), injections.end());
  std::vector<size_t> next_bad = NextBadWindow(t, input.hold_ns, input.recovery_ratio);
  for (const FaultEvent& f : input.faults) {
    if (f.inject_failed) continue;
    result.faults.push_back(AnalyzeFault(f, input, t, next_bad, injections, budget_requests));
  }
  if (input.verified) result.rpo = AnalyzeRpo(input);

  // SLO verdicts, in a stable order.
  const SloTargets& slo = input.slo;
  if (slo.rto_ns) {
    for (const FaultResult& f : result.faults) {
      std::string target = Seconds(*slo.rto_ns);
      if (!f.recovered) {
        result.slos.push_back(Verdict(absl::StrCat("rto[", f.name, "]"), target, "unrecovered",
                                      false, "service did not recover before observe ended"));
      } else {
        bool pass = f.rto_ns <= *slo.rto_ns;
        result.slos.push_back(
            Verdict(absl::StrCat("rto[", f.name, "]"), target, Seconds(f.rto_ns), pass,
                    absl::StrCat("recovered in ", Seconds(f.rto_ns), " > ", target)));
      }
    }
  }
  if (slo.rpo_writes) {
    if (!result.rpo) {
      result.slos.push_back(Verdict("rpo", absl::StrCat(*slo.rpo_writes), "not verified", false,
                                    "the verify phase did not run"));
    } else {
      bool pass = result.rpo->lost <= *slo.rpo_writes;
      result.slos.push_back(
          Verdict("rpo", absl::StrCat(*slo.rpo_writes),
                  absl::StrCat(result.rpo->lost, " lost (", Seconds(result.rpo->rpo_ns), ")"), pass,
                  absl::StrCat(result.rpo->lost, " acknowledged writes lost")));
    }
  }
  if (slo.availability) {
    bool pass = result.availability >= *slo.availability;
    result.slos.push_back(
        Verdict("availability", absl::StrFormat("%.4g", *slo.availability),
                absl::StrFormat("%.4f", result.availability), pass,
                absl::StrCat(bad, " of ", result.requests, " requests were not good")));
  }
  if (slo.p99_ns) {
    bool pass = result.p99_ns <= *slo.p99_ns;
    result.slos.push_back(Verdict("p99", Seconds(*slo.p99_ns), Seconds(result.p99_ns), pass,
                                  "p99 latency above target"));
  }
  if (slo.error_budget_max_consumed) {
    bool pass = result.error_budget_consumed <= *slo.error_budget_max_consumed;
    result.slos.push_back(
        Verdict("error_budget", absl::StrFormat("%.3g%%", *slo.error_budget_max_consumed * 100),
                absl::StrFormat("%.3g%%", result.error_budget_consumed * 100), pass,
                absl::StrCat(bad, " bad requests burned more of the error budget than allowed")));
  }
  for (const SloVerdict& v : result.slos) result.slos_met = result.slos_met && v.pass;
  return result;
}

}  // namespace chaosdrill::runner
