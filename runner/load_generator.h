// Open-loop load over the Open Inference Protocol's ModelInfer (DESIGN §7). Request k has
// an intended send time fixed in advance (constant rate or Poisson arrivals); it is sent
// at that time or, if the sender fell behind, as soon as possible — never later because
// an earlier answer was slow. Latency is measured from the intended time, so a stalled
// service cannot hide its stall (no coordinated omission). Each request's intended, sent
// and completed times, status code and golden check land in a log the analysis reads.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "reports/run_record.h"
#include "runner/call_pump.h"

namespace chaosdrill::runner {

struct LoadOptions {
  std::string address;                                    // host:port of the OIP gRPC endpoint
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: plaintext
  std::string tls_server_name;  // TLS: the name checked in the server's certificate
  double rate = 100;            // requests per second
  bool poisson = false;         // exponential gaps with mean 1/rate instead of a constant gap
  int connections = 4;          // separate HTTP/2 connections, used round-robin
  absl::Duration timeout = absl::Seconds(2);  // per-request deadline, from the actual send
  inference::ModelInferRequest request;       // sent as is, with `id` set per request
  // Every golden_every-th request (0: never) has its answer checked with this; false
  // marks the request as a wrong answer.
  int golden_every = 0;
  std::function<bool(const inference::ModelInferResponse&)> check_answer;
  uint64_t seed = 1;  // Poisson arrivals are reproducible
};

// The intended send times: constant gaps of 1/rate, or exponential gaps with that mean
// (Poisson arrivals) from a seeded generator, so a drill's schedule is reproducible.
class ArrivalSchedule {
 public:
  ArrivalSchedule(double rate, bool poisson, uint64_t seed, int64_t first_ns);
  int64_t Next();  // the next intended time, in order

 private:
  const bool poisson_;
  const double interval_ns_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
  double next_ns_;
};

// A live view over a time window, for probes, abort conditions and the progress line.
struct LoadWindow {
  uint64_t sent = 0;
  uint64_t completed = 0;
  uint64_t ok = 0;      // gRPC OK and not a wrong answer (runner::IsOk)
  uint64_t good = 0;    // ok and latency <= the good_latency given to Window (runner::IsGood)
  uint64_t errors = 0;  // completed, not ok (timeouts included)
  uint64_t timeouts = 0;
  int64_t p99_ns = 0;  // latency (from intended time) of completed requests
  // Latency of the ok requests only: what the steady-state check and the baseline p99 of
  // the analysis (runner::BaselineP99) judge.
  int64_t ok_p50_ns = 0;
  int64_t ok_p99_ns = 0;
  double success_ratio() const { return completed ? static_cast<double>(ok) / completed : 1; }
  double good_ratio() const { return completed ? static_cast<double>(good) / completed : 1; }
};

class LoadGenerator {
 public:
  // `origin_ns` is the drill's time zero on `clock`; every logged time is relative to it.
  LoadGenerator(LoadOptions options, Clock& clock, int64_t origin_ns);
  ~LoadGenerator();  // Stop()s
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Starts sending; the first request is intended at `first_ns` (drill time).
  absl::Status Start(int64_t first_ns);
  // Stops scheduling new requests and waits for every in-flight one to complete (at most
  // one timeout). Idempotent.
  void Stop();

  // Requests intended in [from_ns, to_ns) (drill time), completed or not. Costs
  // O(log n + window); the log's lock is held only to copy a few thousand records at a
  // time, so the sender and completion threads are never held up for long.
  LoadWindow Window(int64_t from_ns, int64_t to_ns,
                    int64_t good_latency_ns = std::numeric_limits<int64_t>::max()) const;
  // The log so far, in intended order. In-flight requests have completed_ns == 0.
  std::vector<reports::RequestRecord> Log() const;
  // The part of the log intended in [from_ns, to_ns), in intended order (live checks that
  // judge single requests: abort conditions, the steady state).
  std::vector<reports::RequestRecord> Slice(int64_t from_ns, int64_t to_ns) const;
  // Distribution of actual send minus intended send, the sender's own lateness.
  LatencyHistogram SendSkew() const;

 private:
  class InferCall;
  void ScheduleLoop(int64_t first_ns);
  void Complete(const InferCall& call);
  int64_t Now() const { return clock_.NowNanos() - origin_ns_; }

  const LoadOptions options_;
  Clock& clock_;
  const int64_t origin_ns_;
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs_;
  std::unique_ptr<CallPump> pump_;  // "cd-load-recv"
  std::atomic<bool> stopping_{false};
  std::thread scheduler_;  // "cd-load-send"
  bool started_ = false;
  bool stopped_ = false;

  mutable std::mutex mu_;
  // Appended in intended-time order by the one sender thread, so sorted by intended_ns.
  std::deque<reports::RequestRecord> log_ ABSL_GUARDED_BY(mu_);
  LatencyHistogram skew_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chaosdrill::runner
