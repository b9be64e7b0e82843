// The numbers a drill reports (DESIGN §7, docs/measurements.md), computed as a pure
// function of recorded data: per-fault RTO and impact, availability, latency, error budget,
// RPO, and the SLO verdicts. No live state, no clock: the same input always gives the same
// result, which is what makes merged or re-rendered reports trustworthy.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "reports/run_record.h"

namespace chaosdrill::runner {

struct SloTargets {
  std::optional<int64_t> rto_ns;       // every fault recovered within this
  std::optional<uint64_t> rpo_writes;  // at most this many acknowledged writes lost
  std::optional<double> availability;  // good / requests in the measured window
  std::optional<int64_t> p99_ns;       // p99 latency in the measured window
  // Error budget: the bad requests a long-running objective allows (scenario's
  // slo.error_budget: (1 - objective) x rate x window), and the share of it this drill may
  // burn. Without it, per-fault budget figures use (1 - availability) x requests.
  std::optional<double> error_budget_requests;
  std::optional<double> error_budget_max_consumed;
};

struct AnalysisInput {
  // Sorted by intended_ns (the load generator logs them in schedule order); Analyze sorts
  // a copy otherwise.
  std::vector<reports::RequestRecord> requests;
  int64_t request_interval_ns = 0;  // 1 / rate
  reports::PhaseTimes phases;
  std::vector<reports::FaultEvent> faults;
  std::optional<int64_t> good_latency_ns;  // explicit; else 5 x baseline p99
  int64_t hold_ns = 5'000'000'000;
  double recovery_ratio = 0.99;

  // RPO: every append, and what the verify phase read back per session, in stored order.
  std::vector<reports::WriteRecord> writes;
  bool verified = false;  // the verify phase ran; RPO is computed only then
  std::map<std::string, std::vector<int64_t>> read_back;
  int64_t write_interval_ns = 0;  // 1 / writes.rate

  SloTargets slo;
};

reports::AnalysisResult Analyze(const AnalysisInput& input);

// Whether one request has an outcome in the log (an in-flight request has completed_ns 0).
inline bool IsCompleted(const reports::RequestRecord& r) { return r.completed_ns != 0; }
// Completed with status OK and, where checked, the golden answer: good whatever its latency.
// The steady-state check and the baseline p99 use this (good_latency is not known yet).
bool IsOk(const reports::RequestRecord& r);
// Good (DESIGN §7): IsOk and latency (from the intended send time) <= good_latency_ns. An
// in-flight request is never good. For abort conditions, probes and the progress line too.
bool IsGood(const reports::RequestRecord& r, int64_t good_latency_ns);

// The steady-state window of the baseline is [SteadyStateFrom(baseline_end), baseline_end):
// the first second (at most half the baseline) warms connections and is not judged.
inline int64_t SteadyStateFrom(int64_t baseline_end_ns) {
  return baseline_end_ns / 2 < 1'000'000'000 ? baseline_end_ns / 2 : 1'000'000'000;
}

// The steady-state statistics of a baseline, over the requests intended in the
// steady-state window. The drill's steady-state check judges exactly these, and Analyze
// takes its baseline p99 and default good_latency from them, so the two cannot disagree.
struct SteadyStateStats {
  uint64_t requests = 0;  // intended in the window, completed or not
  uint64_t good = 0;      // IsGood with good_latency_ns
  uint64_t ok = 0;        // IsOk
  // Latency (from the intended send) of the IsOk requests; 0 if there are none. ok_p99_ns
  // is the baseline p99.
  int64_t ok_p50_ns = 0;
  int64_t ok_p99_ns = 0;
  // The explicit good_latency, else 5 x ok_p99_ns (unbounded, INT64_MAX, with no ok request).
  int64_t good_latency_ns = 0;
};
SteadyStateStats SteadyStateOf(const std::vector<reports::RequestRecord>& sorted_requests,
                               int64_t baseline_end_ns, std::optional<int64_t> good_latency_ns);

// SteadyStateOf(...).ok_p99_ns.
int64_t BaselineP99(const std::vector<reports::RequestRecord>& sorted_requests,
                    int64_t baseline_end_ns);

}  // namespace chaosdrill::runner
