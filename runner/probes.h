// Probes (scenario `probes:`, SCHEMA.md): health signals besides the load, each sampled on
// its own interval for the whole drill into a time series of the RunRecord, with an event
// whenever one changes state (ok -> failing, failing -> ok). Kinds: `ready` (OIP
// ServerReady + ModelReady), `golden` (one inference, answer compared; reference target
// only), `prometheus` (an instant PromQL query against a threshold) and `alert` (whether
// ALERTS{alertname=...} is firing; runner/probe_analysis.h turns that into time to detect
// per fault). Probes observe only: they do not change RTO or the load's numbers.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "reports/run_record.h"
#include "runner/prometheus_client.h"
#include "scenarios/scenario.h"

namespace chaosdrill::runner {

// What one sample saw.
struct ProbeOutcome {
  bool ok = false;
  std::optional<double> value;  // finite numbers only (NaN/Inf are reported in `message`)
  std::string message;
};

// One probe's check. Run() is called from one thread at a time and returns within about
// `timeout`; Cancel() may be called from any thread to end a Run() in progress early
// (at the end of the drill) and makes every later Run() fail at once.
class ProbeCheck {
 public:
  virtual ~ProbeCheck() = default;
  virtual ProbeOutcome Run(absl::Duration timeout) = 0;
  virtual void Cancel() {}
};

// OIP ServerReady, then ModelReady of `model` (skipped when empty), on `channel`.
std::unique_ptr<ProbeCheck> MakeReadyCheck(std::shared_ptr<grpc::Channel> channel,
                                           std::string model);
// One ModelInfer of `request`; ok when it succeeds and `check_answer` accepts the answer.
std::unique_ptr<ProbeCheck> MakeGoldenCheck(
    std::shared_ptr<grpc::Channel> channel, inference::ModelInferRequest request,
    std::function<bool(const inference::ModelInferResponse&)> check_answer);
// An instant query that must return one number: ok while it is below `below` and above
// `above` (each when set).
std::unique_ptr<ProbeCheck> MakePrometheusCheck(std::unique_ptr<PrometheusClient> client,
                                                std::string query, std::optional<double> below,
                                                std::optional<double> above);
// ok while alert `alert` is not firing; value = the number of firing series.
std::unique_ptr<ProbeCheck> MakeAlertCheck(std::unique_ptr<PrometheusClient> client,
                                           std::string alert);

// ALERTS{alertname="<alert>",alertstate="firing"}, the name escaped for a PromQL string.
std::string AlertQuery(absl::string_view alert);
// How a query answer is judged (exposed for tests).
ProbeOutcome JudgeThreshold(const absl::StatusOr<PromQueryResult>& result,
                            std::optional<double> below, std::optional<double> above);
ProbeOutcome JudgeAlert(const absl::StatusOr<PromQueryResult>& result, absl::string_view alert);

// The state machine of one probe: appends each sample to the series and returns the event
// to emit when the state changed. The first sample emits only when it fails (a probe that
// starts healthy is the expected case); later, every flip emits.
class ProbeTracker {
 public:
  explicit ProbeTracker(reports::ProbeSeries config) : series_(std::move(config)) {}

  std::optional<reports::Event> Record(int64_t t_ns, ProbeOutcome outcome);
  const reports::ProbeSeries& series() const { return series_; }

 private:
  reports::ProbeSeries series_;
  std::optional<bool> ok_;  // the current state; empty before the first sample
  int64_t since_ns_ = 0;    // when the current state began
};

// What the probes need to know about the target, from the drill.
struct ProbeTarget {
  std::string address;                                    // host:port, OIP gRPC
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: plaintext
  std::string tls_server_name;                            // TLS: overrides the checked name
  std::string model;                                      // for ModelReady; "" = skip
  inference::ModelInferRequest golden_request;
  // Null when the target has no golden answer (endpoints): golden probes are refused.
  std::function<bool(const inference::ModelInferResponse&)> check_answer;
};

class ProbeRunner {
 public:
  struct Probe {
    reports::ProbeSeries series;  // configuration; samples are appended while running
    absl::Duration timeout = absl::Seconds(1);
    std::unique_ptr<ProbeCheck> check;
  };

  // Builds every probe of `scenario` against `target`. Errors name the probe (a bad
  // Prometheus URL, a golden probe without a golden answer). Nothing runs yet.
  static absl::StatusOr<std::unique_ptr<ProbeRunner>> Create(const scenarios::Scenario& scenario,
                                                             const ProbeTarget& target,
                                                             Clock& clock, int64_t origin_ns);
  // `origin_ns` is the drill's time zero on `clock`; sample times are relative to it.
  ProbeRunner(std::vector<Probe> probes, Clock& clock, int64_t origin_ns);
  ~ProbeRunner();  // Stop()s
  ProbeRunner(const ProbeRunner&) = delete;
  ProbeRunner& operator=(const ProbeRunner&) = delete;

  // One thread per probe ("cd-probe-N"): a first sample at once, then one every `every`
  // on a fixed grid (a sample that overran its slot skips the slots it covered).
  void Start();
  // Cancels samples in flight and joins the threads. Idempotent.
  void Stop();
  // Without Start(): takes every sample due at the clock's current time, in probe order,
  // and returns the drill time when the next one is due. For tests with a ManualClock.
  int64_t SampleDue();

  // State changes since the last call, in the order they happened (type "probe").
  std::vector<reports::Event> TakeEvents();
  // Every probe's series so far.
  std::vector<reports::ProbeSeries> Results() const;

 private:
  void Sample(size_t i);
  void Loop(size_t i);
  int64_t Now() const { return clock_.NowNanos() - origin_ns_; }

  std::vector<Probe> probes_;  // checks: used by their own thread only
  Clock& clock_;
  const int64_t origin_ns_;
  std::vector<int64_t> next_due_;  // [i] touched only by probe i's thread (or SampleDue)
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
  bool stopped_ = false;

  mutable std::mutex mu_;
  std::vector<ProbeTracker> trackers_ ABSL_GUARDED_BY(mu_);
  std::vector<reports::Event> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chaosdrill::runner
