#include "runner/record_analysis.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "runner/probe_analysis.h"

namespace chaosdrill::runner {
namespace {

int64_t Ns(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

}  // namespace

AnalysisInput AnalysisInputFor(const scenarios::Scenario& s, const reports::RunRecord& r,
                               double load_factor) {
  AnalysisInput in{.requests = r.requests,
                   .request_interval_ns = r.request_interval_ns,
                   .phases = r.phases,
                   .faults = r.faults,
                   .hold_ns = Ns(s.phases.hold),
                   .recovery_ratio = s.phases.recovery_ratio,
                   .writes = r.writes,
                   .verified = r.verified,
                   .read_back = r.read_back,
                   .write_interval_ns = r.write_interval_ns};
  if (s.load.good_latency) in.good_latency_ns = Ns(*s.load.good_latency);
  if (s.slo.rto) in.slo.rto_ns = Ns(*s.slo.rto);
  if (s.slo.rpo) in.slo.rpo_writes = static_cast<uint64_t>(*s.slo.rpo);
  in.slo.availability = s.slo.availability;
  if (s.slo.p99) in.slo.p99_ns = Ns(*s.slo.p99);
  if (s.slo.error_budget) {
    const auto& b = *s.slo.error_budget;
    in.slo.error_budget_requests =
        (1 - b.objective) * s.load.rate * load_factor * absl::ToDoubleSeconds(b.window);
    in.slo.error_budget_max_consumed = b.max_consumed;
  }
  return in;
}

reports::AnalysisResult AnalyzeRecord(const scenarios::Scenario& scenario,
                                      const reports::RunRecord& record, double load_factor) {
  reports::AnalysisResult result = Analyze(AnalysisInputFor(scenario, record, load_factor));
  AddProbeVerdicts(record.probes, record.faults, result);
  return result;
}

std::optional<std::string> SloFailure(const reports::AnalysisResult& analysis) {
  if (analysis.slos_met) return std::nullopt;
  std::string failed;
  for (const reports::SloVerdict& v : analysis.slos) {
    if (!v.pass) absl::StrAppend(&failed, failed.empty() ? "" : "; ", v.name, ": ", v.reason);
  }
  return absl::StrCat("SLO failed: ", failed);
}

}  // namespace chaosdrill::runner
