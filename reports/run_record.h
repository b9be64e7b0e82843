// The RunRecord: everything a drill observed, and the results computed from it
// (schema "chaosdrill.run/v1", docs/run-record.md). The runner fills it, analysis
// (runner/analysis.h) computes its results from the recorded data alone, and every report
// is rendered from it alone, so a report can be re-rendered or merged later without
// re-running the drill. Times are CLOCK_MONOTONIC nanoseconds from drill start unless a
// field says otherwise.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/histogram.h"

namespace chaosdrill::reports {

inline constexpr char kRunRecordSchema[] = "chaosdrill.run/v1";

// One inference request of the open-loop load. 24 bytes: a 10-minute drill at 1,000 rps
// is 600k of these (14 MiB).
struct RequestRecord {
  static constexpr uint8_t kTimeout = 1;         // missed its deadline
  static constexpr uint8_t kGoldenChecked = 2;   // answer compared with the golden output
  static constexpr uint8_t kGoldenMismatch = 4;  // ... and it differed

  int64_t intended_ns = 0;   // when the open-loop schedule meant to send it
  int64_t sent_ns = 0;       // when it was actually sent
  int64_t completed_ns = 0;  // when the answer (or error) arrived; deadline if timed out
  uint8_t code = 0;          // gRPC status code, 0 = OK
  uint8_t flags = 0;

  int64_t latency_ns() const { return completed_ns - intended_ns; }  // no coordinated omission
  int64_t service_ns() const { return completed_ns - sent_ns; }

  bool operator==(const RequestRecord&) const = default;
};

// One session-store append of the RPO writer.
struct WriteRecord {
  std::string session;
  int64_t seq = 0;
  int64_t sent_ns = 0;
  std::optional<int64_t> ack_ns;  // empty: never acknowledged (error or timeout)

  bool operator==(const WriteRecord&) const = default;
};

struct PhaseTimes {
  int64_t baseline_end_ns = 0;  // faults phase starts here
  int64_t faults_end_ns = 0;    // last fault's scheduled end; recovery phase starts here
  int64_t observe_end_ns = 0;   // end of the recovery phase (the observe limit)

  bool operator==(const PhaseTimes&) const = default;
};

struct FaultEvent {
  std::string name;
  std::string kind;
  std::string target;                  // human-readable: "replica[0] (pid 4242)"
  int64_t scheduled_ns = 0;            // `at` from the scenario
  int64_t injected_ns = 0;             // when the agent confirmed it active (t_i)
  std::optional<int64_t> reverted_ns;  // when the agent confirmed it reverted
  std::optional<int64_t> duration_ns;  // the scenario's `duration`; empty: none given
  bool inject_failed = false;
  std::string error;  // why injection failed

  bool operator==(const FaultEvent&) const = default;
};

// Results for one fault (DESIGN §7). Durations in nanoseconds.
struct FaultResult {
  std::string name;
  bool impact = false;       // any bad request attributable to it
  int64_t impact_ns = 0;     // intended time of the first bad request
  bool recovered = false;    // false: "unrecovered" (any RTO SLO fails)
  int64_t recovered_ns = 0;  // t_r
  int64_t rto_ns = 0;        // t_r - t_i; 0 when no impact
  int64_t time_to_impact_ns = 0;
  int64_t outage_ns = 0;             // t_r - impact; observe end - impact when unrecovered
  uint64_t failed_requests = 0;      // bad requests in [impact, t_r)
  double error_budget_consumed = 0;  // failed_requests / budget (0 when no budget is set)
  int64_t outage_p50_ns = 0;         // latency of completed requests during the outage
  int64_t outage_p99_ns = 0;
  std::optional<int64_t> recover_after_revert_ns;  // max(0, t_r - revert); faults with a duration
  // Latency of completed requests in the fault's span outside its outage (docs/measurements.md).
  int64_t outside_p50_ns = 0;
  int64_t outside_p99_ns = 0;

  bool operator==(const FaultResult&) const = default;
};

struct RpoResult {
  uint64_t writes = 0;
  uint64_t acknowledged = 0;
  uint64_t lost = 0;                     // acknowledged and absent on read-back (RPO writes)
  int64_t rpo_ns = 0;                    // latest - earliest ack among lost, + one write interval
  uint64_t duplicated = 0;               // entries read back more than once
  uint64_t reordered = 0;                // entries read back after a higher seq of the same session
  uint64_t ambiguous = 0;                // unacknowledged writes that did land
  std::vector<WriteRecord> lost_writes;  // the exact entries, for the report

  bool operator==(const RpoResult&) const = default;
};

struct SloVerdict {
  std::string name;      // "rto", "rto[kill-one]", "rpo", "availability", "p99", "error_budget"
  std::string target;    // as written: "3s", "0", "0.99"
  std::string measured;  // "1.84s", "unrecovered", "0.9987"
  bool pass = false;
  std::string reason;  // one line when failing

  bool operator==(const SloVerdict&) const = default;
};

// A time-stamped happening of the drill: phase changes, fault inject/revert, probe
// changes, aborts, errors.
struct Event {
  int64_t t_ns = 0;
  std::string type;   // "phase", "inject", "revert", "inject_failed", "probe", "abort", "error"
  std::string fault;  // fault name, when about one
  std::string message;

  bool operator==(const Event&) const = default;
};

// One sample of a probe (scenario `probes:`): when it was taken, whether the probe's
// condition held, and what it saw.
struct ProbeSample {
  int64_t t_ns = 0;             // when the sample started (request sent)
  bool ok = false;              // ready / golden / threshold held; alerts: not firing
  std::optional<double> value;  // prometheus: the number; alert: firing series; else none
  std::string message;          // why it failed, or what it saw; "" when plainly ok

  bool operator==(const ProbeSample&) const = default;
};

// A probe's configuration as run and its time series.
struct ProbeSeries {
  std::string name;
  std::string kind;   // "ready", "golden", "prometheus", "alert"
  std::string check;  // what it asks: "ServerReady + ModelReady tiny-mlp", the PromQL query
  int64_t every_ns = 0;
  std::string alert;                 // alert probes: the alert's name
  std::optional<int64_t> within_ns;  // alert probes: it must fire this soon after each fault
  std::vector<std::string> faults;   // alert probes: faults judged; empty = every fault
  std::vector<ProbeSample> samples;  // in time order

  bool operator==(const ProbeSeries&) const = default;
};

// Time to detect: how soon after a fault's injection an alert probe first saw it firing.
struct AlertDetection {
  std::string probe;
  std::string alert;
  std::string fault;
  int64_t injected_ns = 0;
  int64_t within_ns = 0;
  bool already_firing = false;  // firing at the last sample before injection: not attributable
  bool fired = false;           // seen firing at or after injection, before the drill ended
  int64_t detect_ns = 0;        // first firing sample - injected_ns (when fired)
  bool pass = false;            // fired, not already firing, detect_ns <= within_ns

  bool operator==(const AlertDetection&) const = default;
};

struct Environment {
  std::string host;
  std::string kernel;
  std::string cpu;
  int cores = 0;
  uint64_t memory_bytes = 0;
  std::string gpu;  // "none" or "NVIDIA H100 80GB HBM3 (driver 580.x)"
  std::string chaosdrill_version;
  std::string chaosdrill_commit;

  bool operator==(const Environment&) const = default;
};

struct AnalysisResult {
  uint64_t requests = 0;  // in the measured window (baseline end .. observe end)
  uint64_t good = 0;
  uint64_t incomplete = 0;      // of `requests`, without an outcome in the log (never good)
  double availability = 1;      // good / requests in the measured window
  int64_t good_latency_ns = 0;  // the threshold used (explicit or 5 x baseline p99)
  int64_t baseline_p99_ns = 0;
  int64_t p50_ns = 0;  // measured window, completed requests, from the intended send time
  int64_t p99_ns = 0;
  int64_t service_p50_ns = 0;  // the same requests, from the actual send (service time)
  int64_t service_p99_ns = 0;
  double error_budget_consumed = 0;  // bad / budget (see runner::SloTargets)
  std::vector<FaultResult> faults;
  std::optional<RpoResult> rpo;
  std::vector<SloVerdict> slos;
  bool slos_met = true;
  std::vector<AlertDetection> alerts;  // from alert probes (runner/probe_analysis.h)

  bool operator==(const AnalysisResult&) const = default;
};

// Exit status of a drill (DESIGN §7).
enum class ExitStatus { kPassed = 0, kSloFailed = 1, kInvalid = 2, kAborted = 3, kInfraError = 4 };

// Everything one drill observed and concluded.
struct RunRecord {
  std::string schema = kRunRecordSchema;
  std::string run_id;  // "<scenario>-<UTC yyyymmddThhmmssZ>-<random>"
  std::string scenario_name;
  std::string scenario_file;
  std::string scenario_source;  // the YAML as written
  std::string target;           // "reference (3 replicas, async)" or the endpoint address
  int64_t started_unix_ns = 0;  // wall clock at drill time zero
  int64_t request_interval_ns = 0;
  int64_t write_interval_ns = 0;
  PhaseTimes phases;
  Environment environment;
  std::vector<FaultEvent> faults;
  std::vector<Event> events;
  std::vector<ProbeSeries> probes;
  std::vector<RequestRecord> requests;
  std::vector<WriteRecord> writes;
  std::map<std::string, std::vector<int64_t>> read_back;  // entries read back intact
  // Entries read back whose payload is not the one written, per session (seqs): counted as
  // absent from read_back, so an acknowledged one is lost.
  std::map<std::string, std::vector<int64_t>> read_back_corrupt;
  bool verified = false;
  LatencyHistogram send_skew;  // actual minus intended send time
  AnalysisResult analysis;
  ExitStatus exit_status = ExitStatus::kPassed;
  std::string exit_reason;  // one line: why not passed
  // Written while the drill ran (about once a second and at each event): a runner that
  // died leaves the record so. JSON: "in_progress": true and exit.status "running"; the
  // exit code is the status so far, and analysis covers only what had settled.
  bool in_progress = false;

  bool operator==(const RunRecord&) const = default;
};

}  // namespace chaosdrill::reports
