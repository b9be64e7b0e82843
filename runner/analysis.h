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

// Exposed for tests and the live progress line: whether one request counts as good.
bool IsGood(const reports::RequestRecord& r, int64_t good_latency_ns);

}  // namespace chaosdrill::runner
