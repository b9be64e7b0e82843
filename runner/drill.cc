#include "runner/drill.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/quantity.h"
#include "common/status.h"
#include "common/version.h"
#include "injector/agent/local_agent.h"
#include "injector/fault_registry.h"
#include "reference/model_codec.h"
#include "reference/model_factory.h"
#include "reference/supervisor.h"
#include "runner/analysis.h"
#include "runner/fault_driver.h"
#include "runner/load_generator.h"
#include "runner/probe_analysis.h"
#include "runner/probes.h"
#include "runner/session_writer.h"

namespace chaosdrill::runner {
namespace {

using reports::ExitStatus;
using scenarios::Scenario;

constexpr int64_t kNsPerMs = 1'000'000;
constexpr absl::Duration kLeaseTtl = absl::Seconds(5);
constexpr int64_t kAbortCheckNs = 100 * kNsPerMs;

int64_t Ns(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

std::string RunId(const Scenario& s) {
  std::random_device rd;
  return absl::StrCat(s.metadata.name, "-",
                      absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone()), "-",
                      absl::StrFormat("%04x", rd() & 0xffff));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

reports::Environment CollectEnvironment() {
  reports::Environment env;
  utsname u{};
  if (uname(&u) == 0) {
    env.host = u.nodename;
    env.kernel = absl::StrCat(u.sysname, " ", u.release, " ", u.machine);
  }
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      env.cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  env.cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  env.memory_bytes = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  env.gpu = kHaveCuda ? "built with CUDA" : "none (built without CUDA)";
  env.chaosdrill_version = kVersion;
  env.chaosdrill_commit = kGitCommit;
  return env;
}

// Whether `now` is inside the scenario's guard window.
absl::Status CheckGuard(const scenarios::Guard& guard, absl::Time now) {
  absl::TimeZone tz;
  if (!absl::LoadTimeZone(guard.timezone, &tz)) {
    return absl::InvalidArgumentError(
        absl::StrCat("guard.timezone: unknown time zone ", guard.timezone));
  }
  absl::CivilMinute local = absl::ToCivilMinute(now, tz);
  int minute = local.hour() * 60 + local.minute();
  bool in_window = guard.start_minute <= guard.end_minute
                       ? minute >= guard.start_minute && minute < guard.end_minute
                       : minute >= guard.start_minute || minute < guard.end_minute;
  if (guard.start_minute == guard.end_minute) in_window = true;  // the whole day
  static constexpr absl::Weekday kDays[] = {absl::Weekday::monday,    absl::Weekday::tuesday,
                                            absl::Weekday::wednesday, absl::Weekday::thursday,
                                            absl::Weekday::friday,    absl::Weekday::saturday,
                                            absl::Weekday::sunday};
  bool on_day = guard.days.empty();
  for (scenarios::Weekday d : guard.days) {
    if (kDays[static_cast<int>(d)] == absl::GetWeekday(absl::CivilDay(local))) on_day = true;
  }
  if (in_window && on_day) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "outside the scenario's guard window (",
      absl::StrFormat("%02d:%02d-%02d:%02d", guard.start_minute / 60, guard.start_minute % 60,
                      guard.end_minute / 60, guard.end_minute % 60),
      " ", guard.timezone, "; now ", absl::FormatTime("%a %H:%M", now, tz),
      "); use --force to run anyway"));
}

class Drill {
 public:
  Drill(const Scenario& scenario, const DrillOptions& options)
      : s_(scenario), o_(options), clock_(MonotonicClock::Get()) {}

  reports::RunRecord Run();

 private:
  void Emit(absl::string_view type, absl::string_view fault, absl::string_view message);
  void Finish(ExitStatus status, std::string reason) {
    if (record_.exit_status == ExitStatus::kPassed && record_.exit_reason.empty()) {
      record_.exit_status = status;
      record_.exit_reason = std::move(reason);
    }
  }
  bool Interrupted() const { return o_.interrupted != nullptr && o_.interrupted->load(); }
  int64_t Now() const { return clock_.NowNanos() - origin_; }
  absl::Status StartAgents();
  absl::Status StartTarget();
  void Progress(absl::string_view phase, bool final_line = false);
  std::optional<std::string> CheckAbort(int64_t now);
  void Loop();
  void Verify();

  const Scenario& s_;
  const DrillOptions& o_;
  Clock& clock_;
  int64_t origin_ = 0;
  reports::RunRecord record_;
  std::unique_ptr<std::ofstream> events_;
  bool tty_ = false;
  int64_t last_progress_ = -1;

  std::unique_ptr<agent::LocalAgent> local_agent_;
  std::unique_ptr<reference::ReferenceService> reference_;
  std::unique_ptr<FaultDriver> driver_;
  std::string service_address_;  // where load and writes go
  LoadOptions load_options_;
  std::unique_ptr<LoadGenerator> load_;
  std::unique_ptr<SessionWriter> writer_;
  std::unique_ptr<ProbeRunner> probes_;  // scenario probes, on their own threads

  // Probe state changes as events. Their t_ns is when the loop saw them (at most one loop
  // period after the sample); the exact sample times are in record_.probes.
  void DrainProbeEvents() {
    if (!probes_) return;
    for (const reports::Event& e : probes_->TakeEvents()) Emit(e.type, e.fault, e.message);
  }
};

void Drill::Emit(absl::string_view type, absl::string_view fault, absl::string_view message) {
  reports::Event e{.t_ns = origin_ ? Now() : 0,
                   .type = std::string(type),
                   .fault = std::string(fault),
                   .message = std::string(message)};
  if (events_) {
    *events_ << nlohmann::json{{"t_ns", e.t_ns},
                               {"type", e.type},
                               {"fault", e.fault},
                               {"message", e.message}}
                    .dump()
             << "\n"
             << std::flush;
  }
  if (o_.progress != ProgressMode::kNone) {
    if (tty_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "[%7.2fs] %s%s%s: %s\n", e.t_ns / 1e9, e.type.c_str(),
                 e.fault.empty() ? "" : " ", e.fault.c_str(), e.message.c_str());
  }
  record_.events.push_back(std::move(e));
}

void Drill::Progress(absl::string_view phase, bool final_line) {
  if (o_.progress == ProgressMode::kNone || !load_) return;
  int64_t now = Now();
  int64_t period = tty_ ? 250 * kNsPerMs : 1'000 * kNsPerMs;
  if (!final_line && last_progress_ >= 0 && now - last_progress_ < period) return;
  last_progress_ = now;
  LoadWindow w = load_->Window(std::max<int64_t>(0, now - 1'000 * kNsPerMs - Ns(s_.load.timeout)),
                               now - Ns(s_.load.timeout));
  std::string line = absl::StrFormat(
      "%-8s %6.1fs/%.0fs  rps %5.0f  errors %5.1f%%  p99 %s  active faults %d", std::string(phase),
      now / 1e9, absl::ToDoubleSeconds(s_.phases.End()), static_cast<double>(w.sent),
      w.completed ? 100.0 * w.errors / w.completed : 0.0,
      DurationToString(absl::Milliseconds(w.p99_ns / kNsPerMs)), driver_ ? driver_->active() : 0);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    if (final_line) std::fprintf(stderr, "\n");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

absl::Status Drill::StartAgents() {
  driver_ = std::make_unique<FaultDriver>(clock_, origin_, kLeaseTtl);
  bool needs_local = s_.agents.empty() || s_.target.is_reference();
  for (const auto& f : s_.faults) {
    if (!f.target.agent && f.target.selector.empty()) needs_local = true;
  }
  if (needs_local) {
    agent::LocalAgentOptions lo;
    std::string binary = o_.chaosdrill_binary.empty() ? "/proc/self/exe" : o_.chaosdrill_binary;
    lo.command = {binary, "agent", "serve"};
    // A local drill targets this machine's own processes, resolved by the runner from the
    // reference topology; PID 1, the agent and its parent stay protected regardless.
    lo.extra_config = o_.local_agent_config.empty()
                          ? "allowlist:\n  kinds: [\"*\"]\n  interfaces: [\"*\"]\n"
                            "  processes: [\"*\"]\n  cgroups: [\"*\"]\n"
                            "  gpu_devices: [0, 1, 2, 3, 4, 5, 6, 7]\n"
                          : o_.local_agent_config;
    ASSIGN_OR_RETURN(local_agent_, agent::LocalAgent::Start(lo));
    ASSIGN_OR_RETURN(auto client, local_agent_->Connect());
    driver_->AddAgent({.name = std::string(scenarios::kLocalAgentName),
                       .same_host = true,
                       .client = std::move(client)});
  }
  for (const scenarios::Agent& a : s_.agents) {
    agent::AgentEndpoint ep;
    if (a.address.rfind("unix:", 0) == 0) {
      ep.unix_path = a.address;
    } else {
      ep.tcp_target = a.address;
      if (a.tls) {
        ep.ca_file = a.tls->ca;
        ep.cert_file = a.tls->cert;
        ep.key_file = a.tls->key;
        ep.server_name = a.tls->server_name;
      }
    }
    auto client = agent::AgentClient::Connect(ep);
    if (!client.ok())
      return Annotate(client.status(), absl::StrCat("connecting to agent ", a.name));
    driver_->AddAgent({.name = a.name, .labels = a.labels, .client = std::move(*client)});
  }
  return driver_->Preflight(s_);
}

absl::Status Drill::StartTarget() {
  if (const auto* ref = s_.target.reference()) {
    reference::ReferenceServiceOptions ro;
    ro.dir = absl::StrCat(ReportDir(s_, o_), "/", record_.run_id, "/reference");
    ro.replicas = ref->replicas;
    ro.replication = std::string(scenarios::ReplicationName(ref->replication));
    ro.device = std::string(scenarios::DeviceName(ref->device));
    ro.model = ref->model.name;
    ro.width = ref->model.width;
    ro.depth = ref->model.depth;
    if (!o_.chaosdrill_binary.empty()) ro.chaosdrill_binary = o_.chaosdrill_binary;
    std::error_code ec;
    std::filesystem::create_directories(ro.dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("creating ", ro.dir, ": ", ec.message()));
    Emit("phase", "", absl::StrCat("starting the reference service in ", ro.dir));
    ASSIGN_OR_RETURN(reference_, reference::ReferenceService::Start(ro));
    reference::Topology topology = reference_->topology();
    driver_->SetTopology(topology);
    service_address_ = topology.gateway;
    bool proxy_on_gateway = std::any_of(s_.faults.begin(), s_.faults.end(), [](const auto& f) {
      return f.spec.kind.rfind("proxy.", 0) == 0 && f.target.role &&
             f.target.role->kind == scenarios::Role::Kind::kGateway;
    });
    if (proxy_on_gateway) {
      ASSIGN_OR_RETURN(service_address_, driver_->StartGatewayRoute(topology.gateway));
      Emit("phase", "", absl::StrCat("load goes through the gateway route ", service_address_));
    }
    // The golden pair comes from the same deterministic model the replicas serve.
    ASSIGN_OR_RETURN(auto model, reference::CreateModel({.name = ref->model.name,
                                                         .device = "cpu",
                                                         .width = ref->model.width,
                                                         .depth = ref->model.depth}));
    load_options_.request = reference::MakeInferRequest(ref->model.name, model->info().input,
                                                        model->golden_input(), /*raw=*/false);
    std::vector<float> golden = model->golden_output();
    load_options_.check_answer = [golden](const inference::ModelInferResponse& response) {
      auto out = reference::DecodeOutput(response);
      return out.ok() && reference::MatchesGolden(*out, golden);
    };
    record_.target = absl::StrCat("reference (", ref->replicas, " replicas, ",
                                  scenarios::ReplicationName(ref->replication), ", ",
                                  scenarios::DeviceName(ref->device), ")");
    return absl::OkStatus();
  }
  const scenarios::EndpointTarget& ep = *s_.target.endpoint();
  service_address_ = ep.address;
  record_.target = absl::StrCat(ep.protocol, " ", ep.address, " model ", ep.model);
  if (ep.tls) {
    grpc::SslCredentialsOptions ssl{.pem_root_certs = ReadFile(ep.tls->ca),
                                    .pem_private_key = ReadFile(ep.tls->key),
                                    .pem_cert_chain = ReadFile(ep.tls->cert)};
    load_options_.credentials = grpc::SslCredentials(ssl);
  }
  // Build a request of the right shape from the model's metadata; an external model has
  // no golden answer we know, so answers are not checked.
  auto channel = grpc::CreateChannel(ep.address, load_options_.credentials
                                                     ? load_options_.credentials
                                                     : grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  inference::ModelMetadataRequest mreq;
  mreq.set_name(ep.model);
  inference::ModelMetadataResponse meta;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status st = stub->ModelMetadata(&ctx, mreq, &meta);
  if (!st.ok()) {
    return absl::UnavailableError(absl::StrCat("asking ", ep.address, " for model ", ep.model,
                                               "'s metadata: ", st.error_message()));
  }
  if (meta.inputs_size() != 1 || meta.inputs(0).datatype() != "FP32") {
    return absl::UnimplementedError(absl::StrCat(
        "model ", ep.model, ": only models with one FP32 input are supported as endpoints"));
  }
  reference::TensorSpec input{.name = meta.inputs(0).name(), .datatype = "FP32"};
  int64_t width = 1;
  for (int64_t d : meta.inputs(0).shape()) {
    input.shape.push_back(d);
    if (d > 0) width *= d;
  }
  std::vector<float> zeros(static_cast<size_t>(width), 0.0f);
  load_options_.request = reference::MakeInferRequest(ep.model, input, zeros, /*raw=*/false);
  load_options_.golden_every = 0;
  return absl::OkStatus();
}

std::optional<std::string> Drill::CheckAbort(int64_t now) {
  const int64_t baseline_end = record_.phases.baseline_end_ns;
  // Only requests whose answers are in: a window ending one timeout ago.
  const int64_t settled = now - Ns(s_.load.timeout);
  for (const scenarios::AbortCondition& c : s_.abort) {
    const int64_t span = Ns(c.for_duration);
    if (settled - span < baseline_end) continue;  // the condition cannot have held that long
    LoadWindow w = load_->Window(settled - span, settled);
    if (c.success_ratio_below && w.completed > 0 && w.success_ratio() < *c.success_ratio_below) {
      return absl::StrFormat("success ratio %.3f below %.3f for %s", w.success_ratio(),
                             *c.success_ratio_below, DurationToString(c.for_duration));
    }
    if (c.p99_above && w.p99_ns > Ns(*c.p99_above)) {
      return absl::StrCat("p99 ", DurationToString(absl::Nanoseconds(w.p99_ns)), " above ",
                          DurationToString(*c.p99_above), " for ",
                          DurationToString(c.for_duration));
    }
  }
  return std::nullopt;
}

void Drill::Loop() {
  const int64_t baseline_end = record_.phases.baseline_end_ns;
  const int64_t observe_end = record_.phases.observe_end_ns;
  struct Action {
    int64_t t;
    bool inject;
    size_t fault;
  };
  std::vector<Action> actions;
  for (size_t i = 0; i < s_.faults.size(); ++i) {
    actions.push_back({Ns(s_.faults[i].at), true, i});
    if (s_.faults[i].spec.duration) {
      actions.push_back({Ns(s_.faults[i].at + *s_.faults[i].spec.duration), false, i});
    }
  }
  std::stable_sort(actions.begin(), actions.end(),
                   [](const Action& a, const Action& b) { return a.t < b.t; });
  record_.faults.resize(s_.faults.size());
  size_t next = 0;
  std::string phase = "baseline";
  int64_t next_abort_check = baseline_end;

  while (true) {
    int64_t now = Now();
    DrainProbeEvents();
    if (Interrupted()) {
      Emit("abort", "", "interrupted by a signal: reverting every fault");
      Finish(ExitStatus::kAborted, "interrupted by a signal");
      return;
    }
    if (phase == "baseline" && now >= baseline_end) {
      // The steady-state hypothesis over the baseline (its first second warms connections).
      int64_t from = std::min<int64_t>(1'000 * kNsPerMs, baseline_end / 2);
      LoadWindow w = load_->Window(from, baseline_end);
      std::string why;
      if (w.completed == 0) {
        why = "no request completed during the baseline";
      } else if (w.success_ratio() < s_.steady_state.success_ratio) {
        why = absl::StrFormat("success ratio %.4f below %.4f", w.success_ratio(),
                              s_.steady_state.success_ratio);
      } else if (s_.steady_state.p99 && w.p99_ns > Ns(*s_.steady_state.p99)) {
        why = absl::StrCat("p99 ", DurationToString(absl::Nanoseconds(w.p99_ns)), " above ",
                           DurationToString(*s_.steady_state.p99));
      }
      if (!why.empty()) {
        Emit("abort", "", absl::StrCat("steady state did not hold in the baseline: ", why));
        Finish(ExitStatus::kSloFailed,
               absl::StrCat("steady-state hypothesis failed before any fault: ", why));
        return;
      }
      phase = "faults";
      Emit("phase", "", "baseline held; faults phase");
    }
    while (next < actions.size() && actions[next].t <= now) {
      const Action& a = actions[next++];
      const scenarios::ScenarioFault& f = s_.faults[a.fault];
      reports::FaultEvent& event = record_.faults[a.fault];
      event.scheduled_ns = Ns(f.at);
      if (a.inject) {
        absl::Status st = driver_->Inject(f, event);
        if (!st.ok()) {
          Emit("inject_failed", f.name, st.message());
          Finish(ExitStatus::kInfraError, std::string(st.message()));
          return;
        }
        Emit("inject", f.name, event.target);
      } else {
        absl::Status st = driver_->Revert(f.name, event);
        if (!st.ok()) {
          Emit("error", f.name, st.message());
          Finish(ExitStatus::kInfraError, std::string(st.message()));
          return;
        }
        Emit("revert", f.name, "reverted");
      }
    }
    if (phase == "faults" && next == actions.size() && now >= record_.phases.faults_end_ns) {
      phase = "recovery";
      Emit("phase", "", "recovery phase");
    }
    if (phase != "baseline" && now >= next_abort_check) {
      next_abort_check = now + kAbortCheckNs;
      if (auto why = CheckAbort(now)) {
        Emit("abort", "", absl::StrCat("abort condition: ", *why));
        Finish(ExitStatus::kAborted, absl::StrCat("aborted: ", *why));
        return;
      }
    }
    Progress(phase);
    if (now >= observe_end) return;
    int64_t wake = std::min({observe_end, now + kAbortCheckNs,
                             phase == "baseline" ? baseline_end : observe_end,
                             next < actions.size() ? actions[next].t : observe_end});
    clock_.SleepUntil(origin_ + std::max(wake, now + kNsPerMs));
  }
}

void Drill::Verify() {
  if (!writer_) return;
  Emit("phase", "", "verify: reading back every session");
  auto back = writer_->ReadBack(absl::Seconds(30));
  if (!back.ok()) {
    Emit("error", "", back.status().message());
    Finish(ExitStatus::kInfraError, std::string(back.status().message()));
    return;
  }
  record_.read_back = std::move(*back);
  record_.verified = true;
}

reports::RunRecord Drill::Run() {
  tty_ = o_.progress == ProgressMode::kAuto && isatty(STDERR_FILENO);
  record_.run_id = RunId(s_);
  record_.scenario_name = s_.metadata.name;
  record_.scenario_file = s_.file;
  if (s_.file != "<memory>") record_.scenario_source = ReadFile(s_.file);
  record_.environment = CollectEnvironment();
  record_.request_interval_ns = static_cast<int64_t>(1e9 / s_.load.rate);
  if (s_.writes) record_.write_interval_ns = static_cast<int64_t>(1e9 / s_.writes->rate);
  record_.phases.baseline_end_ns = Ns(s_.phases.baseline);
  record_.phases.observe_end_ns = Ns(s_.phases.End());
  record_.phases.faults_end_ns = record_.phases.baseline_end_ns;
  for (const auto& f : s_.faults) {
    record_.phases.faults_end_ns = std::max(
        record_.phases.faults_end_ns, Ns(f.at + f.spec.duration.value_or(absl::ZeroDuration())));
  }
  if (!o_.events_file.empty()) {
    events_ = std::make_unique<std::ofstream>(o_.events_file, std::ios::app);
    if (!*events_) {
      Finish(ExitStatus::kInvalid, absl::StrCat("cannot open --events file ", o_.events_file));
      return record_;
    }
  }
  if (s_.guard && !o_.force) {
    if (absl::Status g = CheckGuard(*s_.guard, absl::Now()); !g.ok()) {
      Emit("abort", "", g.message());
      Finish(ExitStatus::kInvalid, std::string(g.message()));
      return record_;
    }
  }

  origin_ = clock_.NowNanos();
  record_.started_unix_ns = absl::ToUnixNanos(absl::Now());
  if (absl::Status st = StartAgents(); !st.ok()) {
    Emit("error", "", st.message());
    Finish(ExitStatus::kInfraError, std::string(st.message()));
    return record_;
  }
  if (o_.dry_run) {
    Emit("phase", "", "dry run: scenario valid, agents reachable, every fault kind available");
    return record_;
  }
  if (absl::Status st = StartTarget(); !st.ok()) {
    Emit("error", "", st.message());
    Finish(ExitStatus::kInfraError, std::string(st.message()));
    return record_;
  }

  // Time zero of the drill: load and writes start now.
  origin_ = clock_.NowNanos();
  driver_->SetOrigin(origin_);
  record_.started_unix_ns = absl::ToUnixNanos(absl::Now());
  load_options_.address = service_address_;
  load_options_.rate = s_.load.rate;
  load_options_.poisson = s_.load.arrival == scenarios::Arrival::kPoisson;
  load_options_.connections = s_.load.connections;
  load_options_.timeout = s_.load.timeout;
  if (load_options_.check_answer) load_options_.golden_every = s_.load.golden_every;
  load_options_.seed = s_.load.seed.value_or(std::random_device{}());
  load_ = std::make_unique<LoadGenerator>(load_options_, clock_, origin_);
  if (absl::Status st = load_->Start(0); !st.ok()) {
    Finish(ExitStatus::kInfraError, std::string(st.message()));
    return record_;
  }
  if (s_.writes) {
    WriteOptions wo{.address = service_address_,
                    .credentials = load_options_.credentials,
                    .rate = s_.writes->rate,
                    .sessions = s_.writes->sessions,
                    .payload_size = s_.writes->payload_size,
                    .session_prefix = record_.run_id};
    writer_ = std::make_unique<SessionWriter>(wo, clock_, origin_);
    if (absl::Status st = writer_->Start(0); !st.ok()) {
      Finish(ExitStatus::kInfraError, std::string(st.message()));
      return record_;
    }
  }
  if (!s_.probes.empty()) {
    auto probes = ProbeRunner::Create(s_,
                                      {.address = service_address_,
                                       .credentials = load_options_.credentials,
                                       .model = load_options_.request.model_name(),
                                       .golden_request = load_options_.request,
                                       .check_answer = load_options_.check_answer},
                                      clock_, origin_);
    if (!probes.ok()) {
      Emit("error", "", probes.status().message());
      Finish(ExitStatus::kInfraError, std::string(probes.status().message()));
      return record_;
    }
    probes_ = *std::move(probes);
    probes_->Start();
  }
  Emit("phase", "", absl::StrCat("baseline: ", s_.load.rate, " rps at ", service_address_));

  Loop();

  // Whatever happened: faults off first, then stop the load and read back the writes.
  for (size_t i = 0; i < record_.faults.size(); ++i) {
    reports::FaultEvent& event = record_.faults[i];
    if (event.inject_failed || event.name.empty() || event.reverted_ns) continue;
    (void)driver_->Revert(s_.faults[i].name, event);
    // An instantaneous fault (process.kill) has nothing to revert: no revert time.
    auto factory = injector::FaultRegistry::Global().Find(s_.faults[i].spec.kind);
    if (factory.ok() && !(*factory)->info().takes_duration) event.reverted_ns.reset();
  }
  if (absl::Status st = driver_->RevertAll(); !st.ok()) {
    Emit("error", "", st.message());
    Finish(ExitStatus::kInfraError, std::string(st.message()));
  }
  Progress("stopping", /*final_line=*/true);
  load_->Stop();
  if (writer_) writer_->Stop();
  if (probes_) probes_->Stop();
  DrainProbeEvents();
  if (record_.exit_status == ExitStatus::kPassed || record_.exit_status == ExitStatus::kSloFailed) {
    Verify();
  }
  // Faults that were never reached keep no event.
  std::erase_if(record_.faults, [](const reports::FaultEvent& f) { return f.name.empty(); });
  record_.requests = load_->Log();
  record_.send_skew = load_->SendSkew();
  if (writer_) record_.writes = writer_->Log();
  if (probes_) record_.probes = probes_->Results();

  AnalysisInput in{.requests = record_.requests,
                   .request_interval_ns = record_.request_interval_ns,
                   .phases = record_.phases,
                   .faults = record_.faults,
                   .hold_ns = Ns(s_.phases.hold),
                   .recovery_ratio = s_.phases.recovery_ratio,
                   .writes = record_.writes,
                   .verified = record_.verified,
                   .read_back = record_.read_back,
                   .write_interval_ns = record_.write_interval_ns};
  if (s_.load.good_latency) in.good_latency_ns = Ns(*s_.load.good_latency);
  if (s_.slo.rto) in.slo.rto_ns = Ns(*s_.slo.rto);
  if (s_.slo.rpo) in.slo.rpo_writes = static_cast<uint64_t>(*s_.slo.rpo);
  in.slo.availability = s_.slo.availability;
  if (s_.slo.p99) in.slo.p99_ns = Ns(*s_.slo.p99);
  if (s_.slo.error_budget) {
    const auto& b = *s_.slo.error_budget;
    in.slo.error_budget_requests =
        (1 - b.objective) * s_.load.rate * absl::ToDoubleSeconds(b.window);
    in.slo.error_budget_max_consumed = b.max_consumed;
  }
  record_.analysis = Analyze(in);
  AddProbeVerdicts(record_.probes, record_.faults, record_.analysis);
  if (record_.exit_status == ExitStatus::kPassed && !record_.analysis.slos_met) {
    std::string failed;
    for (const auto& v : record_.analysis.slos) {
      if (!v.pass) absl::StrAppend(&failed, failed.empty() ? "" : "; ", v.name, ": ", v.reason);
    }
    Finish(ExitStatus::kSloFailed, absl::StrCat("SLO failed: ", failed));
  }
  return record_;
}

}  // namespace

std::string ReportDir(const Scenario& scenario, const DrillOptions& options) {
  return options.report_dir.empty() ? scenario.report.dir : options.report_dir;
}

reports::RunRecord RunDrill(const Scenario& scenario, const DrillOptions& options) {
  Drill drill(scenario, options);
  return drill.Run();
}

}  // namespace chaosdrill::runner
