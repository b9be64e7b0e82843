// A run record analysed with its scenario's settings: what the drill computes when it ends
// and what `chaosdrill report --merge` recomputes for merged records, built in one place
// so the two cannot drift apart. Pure functions of the scenario and the record.
#pragma once

#include <optional>
#include <string>

#include "reports/run_record.h"
#include "runner/analysis.h"
#include "scenarios/scenario.h"

namespace chaosdrill::runner {

// The analysis input for `record`: its request and write logs, phases, faults and
// read-back, with the scenario's hold, recovery ratio, good_latency and SLO targets. The
// error budget in requests is (1 - objective) x load.rate x `load_factor` x window, where
// `load_factor` is how many runners' worth of the scenario's rate the record holds: 1 for
// one drill, the sum over the runners of their share for a merge.
AnalysisInput AnalysisInputFor(const scenarios::Scenario& scenario,
                               const reports::RunRecord& record, double load_factor = 1);

// Analyze(AnalysisInputFor(...)), then the alert verdicts from the record's probe series
// (AddProbeVerdicts, runner/probe_analysis.h): the record's complete analysis.
reports::AnalysisResult AnalyzeRecord(const scenarios::Scenario& scenario,
                                      const reports::RunRecord& record, double load_factor = 1);

// "SLO failed: rto[kill-one]: recovered in 4.2s > 3s; availability: ..." naming every
// failed verdict, or nullopt when every SLO was met: the exit reason of a drill whose
// analysis failed it.
std::optional<std::string> SloFailure(const reports::AnalysisResult& analysis);

}  // namespace chaosdrill::runner
