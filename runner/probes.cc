#include "runner/probes.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/quantity.h"
#include "common/status.h"
#include "reference/gateway_session_metrics.h"

namespace chaosdrill::runner {
namespace {

constexpr int64_t kStopSliceNs = 50'000'000;  // how promptly a sleeping probe sees Stop()

std::string Number(double v) { return absl::StrFormat("%g", v); }

// The next slot of a probe's grid after `now`: a sample that overran skips covered slots.
int64_t NextSlot(int64_t due, int64_t every, int64_t now) {
  due += every;
  if (due <= now) due += ((now - due) / every + 1) * every;
  return due;
}

std::string GrpcError(absl::string_view call, const grpc::Status& st) {
  return absl::StrCat(call, ": ", reference::GrpcCodeName(st.error_code()),
                      st.error_message().empty() ? "" : ": ", st.error_message());
}

std::chrono::system_clock::time_point Deadline(absl::Duration timeout) {
  return std::chrono::system_clock::now() +
         std::chrono::nanoseconds(absl::ToInt64Nanoseconds(timeout));
}

// The gRPC checks share the cancel plumbing: the context of the call in flight is
// registered so Cancel() from another thread can end it.
class GrpcCheck : public ProbeCheck {
 public:
  explicit GrpcCheck(std::shared_ptr<grpc::Channel> channel)
      : stub_(inference::GRPCInferenceService::NewStub(std::move(channel))) {}

  void Cancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }

 protected:
  // Calls `call(context)` with the deadline set and the context registered for Cancel().
  template <typename F>
  grpc::Status Call(absl::Duration timeout, F call) {
    grpc::ClientContext context;
    context.set_deadline(Deadline(timeout));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_) return grpc::Status(grpc::StatusCode::CANCELLED, "the drill is ending");
      active_ = &context;
    }
    grpc::Status st = call(&context);
    std::lock_guard<std::mutex> lock(mu_);
    active_ = nullptr;
    return st;
  }

  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;

 private:
  std::mutex mu_;
  grpc::ClientContext* active_ = nullptr;  // guarded by mu_
  bool cancelled_ = false;                 // guarded by mu_
};

class ReadyCheck final : public GrpcCheck {
 public:
  ReadyCheck(std::shared_ptr<grpc::Channel> channel, std::string model)
      : GrpcCheck(std::move(channel)), model_(std::move(model)) {}

  ProbeOutcome Run(absl::Duration timeout) override {
    const auto start = std::chrono::steady_clock::now();
    inference::ServerReadyResponse server;
    grpc::Status st = Call(timeout, [&](grpc::ClientContext* c) {
      return stub_->ServerReady(c, inference::ServerReadyRequest(), &server);
    });
    if (!st.ok()) return {.ok = false, .message = GrpcError("ServerReady", st)};
    if (!server.ready()) return {.ok = false, .message = "ServerReady: server not ready"};
    if (model_.empty()) return {.ok = true};
    const absl::Duration left =
        timeout - absl::FromChrono(std::chrono::steady_clock::now() - start);
    inference::ModelReadyRequest req;
    req.set_name(model_);
    inference::ModelReadyResponse model;
    st = Call(std::max(left, absl::Milliseconds(1)),
              [&](grpc::ClientContext* c) { return stub_->ModelReady(c, req, &model); });
    if (!st.ok()) return {.ok = false, .message = GrpcError("ModelReady " + model_, st)};
    if (!model.ready()) {
      return {.ok = false, .message = absl::StrCat("ModelReady: model ", model_, " not ready")};
    }
    return {.ok = true};
  }

 private:
  const std::string model_;
};

class GoldenCheck final : public GrpcCheck {
 public:
  GoldenCheck(std::shared_ptr<grpc::Channel> channel, inference::ModelInferRequest request,
              std::function<bool(const inference::ModelInferResponse&)> check_answer)
      : GrpcCheck(std::move(channel)),
        request_(std::move(request)),
        check_answer_(std::move(check_answer)) {}

  ProbeOutcome Run(absl::Duration timeout) override {
    inference::ModelInferResponse response;
    grpc::Status st = Call(
        timeout, [&](grpc::ClientContext* c) { return stub_->ModelInfer(c, request_, &response); });
    if (!st.ok()) return {.ok = false, .message = GrpcError("ModelInfer", st)};
    if (!check_answer_(response)) {
      return {.ok = false, .message = "ModelInfer: the answer differs from the golden output"};
    }
    return {.ok = true};
  }

 private:
  const inference::ModelInferRequest request_;
  const std::function<bool(const inference::ModelInferResponse&)> check_answer_;
};

class PrometheusCheck final : public ProbeCheck {
 public:
  PrometheusCheck(std::unique_ptr<PrometheusClient> client, std::string query,
                  std::optional<double> below, std::optional<double> above)
      : client_(std::move(client)), query_(std::move(query)), below_(below), above_(above) {}
  ProbeOutcome Run(absl::Duration timeout) override {
    return JudgeThreshold(client_->Query(query_, timeout), below_, above_);
  }
  void Cancel() override { client_->Cancel(); }

 private:
  const std::unique_ptr<PrometheusClient> client_;
  const std::string query_;
  const std::optional<double> below_;
  const std::optional<double> above_;
};

class AlertCheck final : public ProbeCheck {
 public:
  AlertCheck(std::unique_ptr<PrometheusClient> client, std::string alert)
      : client_(std::move(client)), alert_(std::move(alert)), query_(AlertQuery(alert_)) {}
  ProbeOutcome Run(absl::Duration timeout) override {
    return JudgeAlert(client_->Query(query_, timeout), alert_);
  }
  void Cancel() override { client_->Cancel(); }

 private:
  const std::unique_ptr<PrometheusClient> client_;
  const std::string alert_;
  const std::string query_;
};

std::shared_ptr<grpc::Channel> ProbeChannel(const ProbeTarget& target, size_t index) {
  grpc::ChannelArguments args;
  // Its own connection, apart from the load's, and quick reconnects: gRPC's default
  // backoff (1 s growing to 120 s) would report a recovered service as down for minutes.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("chaosdrill.probe", static_cast<int>(index));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  if (!target.tls_server_name.empty()) args.SetSslTargetNameOverride(target.tls_server_name);
  return grpc::CreateCustomChannel(
      target.address, target.credentials ? target.credentials : grpc::InsecureChannelCredentials(),
      args);
}

}  // namespace

std::unique_ptr<ProbeCheck> MakeReadyCheck(std::shared_ptr<grpc::Channel> channel,
                                           std::string model) {
  return std::make_unique<ReadyCheck>(std::move(channel), std::move(model));
}

std::unique_ptr<ProbeCheck> MakeGoldenCheck(
    std::shared_ptr<grpc::Channel> channel, inference::ModelInferRequest request,
    std::function<bool(const inference::ModelInferResponse&)> check_answer) {
  return std::make_unique<GoldenCheck>(std::move(channel), std::move(request),
                                       std::move(check_answer));
}

std::unique_ptr<ProbeCheck> MakePrometheusCheck(std::unique_ptr<PrometheusClient> client,
                                                std::string query, std::optional<double> below,
                                                std::optional<double> above) {
  return std::make_unique<PrometheusCheck>(std::move(client), std::move(query), below, above);
}

std::unique_ptr<ProbeCheck> MakeAlertCheck(std::unique_ptr<PrometheusClient> client,
                                           std::string alert) {
  return std::make_unique<AlertCheck>(std::move(client), std::move(alert));
}

std::string AlertQuery(absl::string_view alert) {
  std::string escaped;
  for (char c : alert) {
    if (c == '\\' || c == '"') escaped.push_back('\\');
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped.push_back(c);
  }
  return absl::StrCat("ALERTS{alertname=\"", escaped, "\",alertstate=\"firing\"}");
}

ProbeOutcome JudgeThreshold(const absl::StatusOr<PromQueryResult>& result,
                            std::optional<double> below, std::optional<double> above) {
  if (!result.ok()) return {.ok = false, .message = std::string(result.status().message())};
  if (result->samples.empty()) {
    return {.ok = false, .message = "the query returned no series (is the metric scraped?)"};
  }
  if (result->samples.size() > 1) {
    return {.ok = false,
            .message = absl::StrCat("the query returned ", result->samples.size(),
                                    " series; expected one number (aggregate it, e.g. sum(...))")};
  }
  const double v = result->samples[0].value;
  if (std::isnan(v)) return {.ok = false, .message = "the value is NaN"};
  ProbeOutcome out;
  if (std::isfinite(v)) out.value = v;
  std::vector<std::string> wrong;
  if (below && !(v < *below)) wrong.push_back(absl::StrCat("not below ", Number(*below)));
  if (above && !(v > *above)) wrong.push_back(absl::StrCat("not above ", Number(*above)));
  out.ok = wrong.empty();
  if (!out.ok || !std::isfinite(v)) {
    out.message =
        absl::StrCat("value ", Number(v), wrong.empty() ? "" : ", ", absl::StrJoin(wrong, " and "));
  }
  return out;
}

ProbeOutcome JudgeAlert(const absl::StatusOr<PromQueryResult>& result, absl::string_view alert) {
  if (!result.ok()) return {.ok = false, .message = std::string(result.status().message())};
  if (result->type != "vector") {
    return {.ok = false,
            .message = absl::StrCat("ALERTS query returned a ", result->type, ", not a vector")};
  }
  const size_t firing = result->samples.size();
  ProbeOutcome out{.ok = firing == 0, .value = static_cast<double>(firing)};
  if (firing > 0) {
    out.message = absl::StrCat("alert ", alert, " firing (", firing, " series)");
  }
  return out;
}

std::optional<reports::Event> ProbeTracker::Record(int64_t t_ns, ProbeOutcome outcome) {
  std::optional<reports::Event> event;
  const bool first = !ok_.has_value();
  if (first || *ok_ != outcome.ok) {
    if (!outcome.ok) {
      event = reports::Event{
          .t_ns = t_ns,
          .type = "probe",
          .message = absl::StrCat("probe ", series_.name, " failing: ", outcome.message)};
    } else if (!first) {
      event = reports::Event{
          .t_ns = t_ns,
          .type = "probe",
          .message = absl::StrCat(
              "probe ", series_.name, " ok again after ",
              DurationToString(absl::Milliseconds((t_ns - since_ns_) / 1'000'000)), " failing")};
    }
    ok_ = outcome.ok;
    since_ns_ = t_ns;
  }
  series_.samples.push_back({.t_ns = t_ns,
                             .ok = outcome.ok,
                             .value = outcome.value,
                             .message = std::move(outcome.message)});
  return event;
}

absl::StatusOr<std::unique_ptr<ProbeRunner>> ProbeRunner::Create(
    const scenarios::Scenario& scenario, const ProbeTarget& target, Clock& clock,
    int64_t origin_ns) {
  std::vector<Probe> probes;
  for (size_t i = 0; i < scenario.probes.size(); ++i) {
    const scenarios::Probe& p = scenario.probes[i];
    const std::string what = absl::StrCat("probe ", p.name);
    Probe out;
    out.series.name = p.name;
    out.series.every_ns = absl::ToInt64Nanoseconds(p.every);
    out.timeout = std::min(p.timeout, p.every);
    if (std::holds_alternative<scenarios::ReadyProbe>(p.check)) {
      out.series.kind = "ready";
      out.series.check = target.model.empty()
                             ? std::string("ServerReady")
                             : absl::StrCat("ServerReady + ModelReady ", target.model);
      out.check = MakeReadyCheck(ProbeChannel(target, i), target.model);
    } else if (std::holds_alternative<scenarios::GoldenProbe>(p.check)) {
      if (!target.check_answer) {
        return absl::FailedPreconditionError(
            absl::StrCat(what, ": a golden probe needs a golden answer, and ", target.address,
                         " (an endpoint) has none; use a ready or prometheus probe"));
      }
      out.series.kind = "golden";
      out.series.check = absl::StrCat("ModelInfer ", target.golden_request.model_name(),
                                      " compared with the golden output");
      out.check =
          MakeGoldenCheck(ProbeChannel(target, i), target.golden_request, target.check_answer);
    } else if (const auto* prom = std::get_if<scenarios::PrometheusProbe>(&p.check)) {
      auto client = HttpPrometheusClient::Create(prom->url);
      if (!client.ok()) return Annotate(client.status(), what);
      out.series.kind = "prometheus";
      out.series.check = prom->query;
      if (prom->above) absl::StrAppend(&out.series.check, " > ", Number(*prom->above));
      if (prom->below) absl::StrAppend(&out.series.check, " < ", Number(*prom->below));
      out.check = MakePrometheusCheck(*std::move(client), prom->query, prom->below, prom->above);
    } else if (const auto* alert = std::get_if<scenarios::AlertProbe>(&p.check)) {
      auto client = HttpPrometheusClient::Create(alert->url);
      if (!client.ok()) return Annotate(client.status(), what);
      out.series.kind = "alert";
      out.series.check = AlertQuery(alert->alert);
      out.series.alert = alert->alert;
      out.series.within_ns = absl::ToInt64Nanoseconds(alert->within);
      out.series.faults = alert->faults;
      out.check = MakeAlertCheck(*std::move(client), alert->alert);
    }
    probes.push_back(std::move(out));
  }
  return std::make_unique<ProbeRunner>(std::move(probes), clock, origin_ns);
}

ProbeRunner::ProbeRunner(std::vector<Probe> probes, Clock& clock, int64_t origin_ns)
    : probes_(std::move(probes)), clock_(clock), origin_ns_(origin_ns) {
  const int64_t now = Now();
  next_due_.assign(probes_.size(), now);
  std::lock_guard<std::mutex> lock(mu_);
  for (const Probe& p : probes_) trackers_.emplace_back(p.series);
}

ProbeRunner::~ProbeRunner() { Stop(); }

void ProbeRunner::Start() {
  const int64_t now = Now();
  for (size_t i = 0; i < probes_.size(); ++i) {
    next_due_[i] = now;
    threads_.emplace_back([this, i] {
      pthread_setname_np(pthread_self(), absl::StrCat("cd-probe-", i % 100000).c_str());
      Loop(i);
    });
  }
}

void ProbeRunner::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  for (Probe& p : probes_) p.check->Cancel();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void ProbeRunner::Sample(size_t i) {
  Probe& p = probes_[i];
  const int64_t t = Now();
  ProbeOutcome outcome = p.check->Run(p.timeout);
  std::lock_guard<std::mutex> lock(mu_);
  if (std::optional<reports::Event> e = trackers_[i].Record(t, std::move(outcome))) {
    events_.push_back(std::move(*e));
  }
}

void ProbeRunner::Loop(size_t i) {
  const int64_t every = std::max<int64_t>(probes_[i].series.every_ns, 1);
  while (!stopping_.load()) {
    Sample(i);
    next_due_[i] = NextSlot(next_due_[i], every, Now());
    while (!stopping_.load() && Now() < next_due_[i]) {
      clock_.SleepUntil(origin_ns_ + std::min(next_due_[i], Now() + kStopSliceNs));
    }
  }
}

int64_t ProbeRunner::SampleDue() {
  int64_t next = INT64_MAX;
  for (size_t i = 0; i < probes_.size(); ++i) {
    if (next_due_[i] <= Now()) {
      Sample(i);
      next_due_[i] =
          NextSlot(next_due_[i], std::max<int64_t>(probes_[i].series.every_ns, 1), Now());
    }
    next = std::min(next, next_due_[i]);
  }
  return next;
}

std::vector<reports::Event> ProbeRunner::TakeEvents() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<reports::Event> out;
  out.swap(events_);
  return out;
}

std::vector<reports::ProbeSeries> ProbeRunner::Results() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<reports::ProbeSeries> out;
  for (const ProbeTracker& t : trackers_) out.push_back(t.series());
  return out;
}

}  // namespace chaosdrill::runner
