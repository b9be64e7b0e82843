#include "runner/drill.h"

#include <pthread.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
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
#include "reference/replica_netns.h"
#include "reference/supervisor.h"
#include "reports/gpu_info.h"
#include "reports/run_record_json.h"
#include "runner/analysis.h"
#include "runner/fault_driver.h"
#include "runner/guard.h"
#include "runner/live_record.h"
#include "runner/load_generator.h"
#include "runner/probes.h"
#include "runner/record_analysis.h"
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

// A TLS file named by the scenario: InvalidArgument naming the field and the file when it
// is missing or unreadable (a TLS handshake error later would not say which file).
absl::StatusOr<std::string> ReadTlsFile(const std::string& field, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": error reading ", path));
  }
  if (ss.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", path, " is empty"));
  }
  return ss.str();
}

// Waits for `done` while polling `interrupted` (every 50 ms); true if it finished.
bool WaitUnlessInterrupted(const std::function<bool()>& done,
                           const std::function<bool()>& interrupted) {
  while (!done()) {
    if (interrupted()) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
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
  env.gpu = reports::GpuEnvironment();
  env.chaosdrill_version = kVersion;
  env.chaosdrill_commit = kGitCommit;
  return env;
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
  void OnInterrupt(absl::string_view during) {
    Emit("abort", "", absl::StrCat("interrupted by a signal ", during, ": reverting every fault"));
    Finish(ExitStatus::kAborted, absl::StrCat("interrupted by a signal ", during));
  }
  int64_t Now() const { return clock_.NowNanos() - origin_; }
  void RunPhases();
  absl::Status StartAgents();
  absl::Status StartTarget();
  absl::Status StartReference(const scenarios::ReferenceTarget& ref);
  absl::Status ConnectEndpoint(const scenarios::EndpointTarget& ep);
  void DryRun();
  void Progress(absl::string_view phase, bool final_line = false);
  // The decided frontier: every request intended before it has its outcome, or can no
  // longer be good (older than good_latency). Live checks judge requests before it only.
  int64_t Frontier(int64_t now, const std::vector<reports::RequestRecord>& recent) const;
  bool Decided(const reports::RequestRecord& r, int64_t now) const {
    return IsCompleted(r) || now - r.intended_ns > std::min(good_latency_ns_, Ns(s_.load.timeout));
  }
  std::optional<std::string> CheckSteadyState(int64_t now, bool* settled);
  std::optional<std::string> CheckAbort(int64_t now);
  void Loop();
  void Verify();
  void Snapshot(bool force);
  void PrepareSnapshot(reports::RunRecord& r) const;

  const Scenario& s_;
  const DrillOptions& o_;
  Clock& clock_;
  int64_t origin_ = 0;
  reports::RunRecord record_;
  std::unique_ptr<std::ofstream> events_;
  bool tty_ = false;
  int64_t last_progress_ = -1;
  std::string phase_ = "starting";
  // Good requests (DESIGN §7): latency at most this. Explicit, or 5 x the baseline p99
  // once the baseline is over; until then, "any latency".
  int64_t good_latency_ns_ = std::numeric_limits<int64_t>::max();
  std::vector<std::optional<int64_t>> abort_since_;  // per condition: holding since (frontier)
  std::unique_ptr<LiveRecord> live_;
  bool snapshot_wanted_ = false;

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
    // monotonic_ns: CLOCK_MONOTONIC, to line events up with outside observations.
    *events_ << nlohmann::json{{"t_ns", e.t_ns},
                               {"monotonic_ns", clock_.NowNanos()},
                               {"type", e.type},
                               {"fault", e.fault},
                               {"message", e.message}}
                    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
             << "\n"
             << std::flush;
  }
  if (o_.progress != ProgressMode::kNone) {
    if (tty_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "[%7.2fs] %s%s%s: %s\n", e.t_ns / 1e9, e.type.c_str(),
                 e.fault.empty() ? "" : " ", e.fault.c_str(), e.message.c_str());
  }
  record_.events.push_back(std::move(e));
  snapshot_wanted_ = true;  // every event lands in the record on disk promptly
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
    // Its log shares our stderr: with --progress none only its errors, otherwise warnings
    // and errors (its info lines, each fault applied and reverted, repeat the drill's own
    // events). CHAOSDRILL_LOG, when set, is the user's choice for both processes.
    if (std::getenv("CHAOSDRILL_LOG") == nullptr) {
      lo.log_level = o_.progress == ProgressMode::kNone ? "error" : "warn";
    }
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
  if (const auto* ref = s_.target.reference()) return StartReference(*ref);
  return ConnectEndpoint(*s_.target.endpoint());
}

absl::Status Drill::StartReference(const scenarios::ReferenceTarget& ref) {
  reference::ReferenceServiceOptions ro;
  ro.dir = absl::StrCat(ReportDir(s_, o_), "/", record_.run_id, "/reference");
  ro.replicas = ref.replicas;
  ro.replication = std::string(scenarios::ReplicationName(ref.replication));
  ro.device = std::string(scenarios::DeviceName(ref.device));
  ro.network = std::string(scenarios::NetworkName(ref.network));
  ro.model = ref.model.name;
  ro.width = ref.model.width;
  ro.depth = ref.model.depth;
  if (!o_.chaosdrill_binary.empty()) ro.chaosdrill_binary = o_.chaosdrill_binary;
  // A fault on the replication link: replication goes through proxies on the local agent.
  if (std::any_of(s_.faults.begin(), s_.faults.end(), [](const auto& f) {
        return f.target.role && f.target.role->kind == scenarios::Role::Kind::kStoreLink;
      })) {
    ro.open_store_link = [this](const std::string& listen, const std::string& upstream) {
      return driver_->OpenStoreLink(listen, upstream);
    };
  }
  std::error_code ec;
  std::filesystem::create_directories(ro.dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating ", ro.dir, ": ", ec.message()));
  Emit("phase", "", absl::StrCat("starting the reference service in ", ro.dir));
  {
    // Start() blocks until everything is ready; a signal meanwhile is noticed here, and
    // the service is stopped as soon as Start() returns (it cannot be cut short).
    std::optional<absl::StatusOr<std::unique_ptr<reference::ReferenceService>>> started;
    std::mutex mu;
    std::thread starter([&] {
      pthread_setname_np(pthread_self(), "cd-ref-start");
      auto r = reference::ReferenceService::Start(ro);
      std::lock_guard lock(mu);
      started = std::move(r);
    });
    auto done = [&] {
      std::lock_guard lock(mu);
      return started.has_value();
    };
    bool interrupted = !WaitUnlessInterrupted(done, [this] { return Interrupted(); });
    if (interrupted) Emit("phase", "", "interrupted: stopping the reference service once it is up");
    starter.join();
    if (!started->ok()) return started->status();
    reference_ = std::move(**started);
    if (interrupted || Interrupted()) {
      (void)reference_->Stop();
      return absl::CancelledError("interrupted while starting the reference service");
    }
  }
  // Roles resolve against the live topology: after a restart or a failover the pids and
  // the store primary are not the ones of the start.
  driver_->SetTopologySource([this] { return reference_->topology(); });
  const reference::Topology topology = reference_->topology();
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
  ASSIGN_OR_RETURN(auto model, reference::CreateModel({.name = ref.model.name,
                                                       .device = "cpu",
                                                       .width = ref.model.width,
                                                       .depth = ref.model.depth}));
  load_options_.request = reference::MakeInferRequest(ref.model.name, model->info().input,
                                                      model->golden_input(), /*raw=*/false);
  std::vector<float> golden = model->golden_output();
  load_options_.check_answer = [golden](const inference::ModelInferResponse& response) {
    auto out = reference::DecodeOutput(response);
    return out.ok() && reference::MatchesGolden(*out, golden);
  };
  record_.target = absl::StrCat(
      "reference (", ref.replicas, " replicas, ", scenarios::ReplicationName(ref.replication), ", ",
      scenarios::DeviceName(ref.device),
      ref.network == scenarios::Network::kNetns ? ", each replica in its own network namespace"
                                                : "",
      ")");
  if (ref.network == scenarios::Network::kNetns) {
    std::vector<std::string> links;
    for (const auto& [name, info] : topology.roles) {
      if (!info.interface.empty()) {
        links.push_back(absl::StrCat(name, " ", info.address, " via ", info.interface));
      }
    }
    Emit("phase", "", absl::StrCat("replica links: ", absl::StrJoin(links, ", ")));
  }
  return absl::OkStatus();
}

absl::Status Drill::ConnectEndpoint(const scenarios::EndpointTarget& ep) {
  service_address_ = ep.address;
  record_.target = absl::StrCat(ep.protocol, " ", ep.address, " model ", ep.model);
  grpc::ChannelArguments args;
  if (ep.tls) {
    // Missing files are a scenario mistake (exit 2), named here rather than left to a
    // handshake failure. The CA is required; a client certificate and key go together.
    grpc::SslCredentialsOptions ssl;
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadTlsFile("target.endpoint.tls.ca", ep.tls->ca));
    if (!ep.tls->cert.empty() || !ep.tls->key.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadTlsFile("target.endpoint.tls.cert", ep.tls->cert));
      ASSIGN_OR_RETURN(ssl.pem_private_key, ReadTlsFile("target.endpoint.tls.key", ep.tls->key));
    }
    load_options_.credentials = grpc::SslCredentials(ssl);
    if (!ep.tls->server_name.empty()) {
      load_options_.tls_server_name = ep.tls->server_name;
      args.SetSslTargetNameOverride(ep.tls->server_name);
    }
  }
  // Build a request of the right shape from the model's metadata; an external model has
  // no golden answer we know, so answers are not checked.
  auto channel = grpc::CreateCustomChannel(
      ep.address,
      load_options_.credentials ? load_options_.credentials : grpc::InsecureChannelCredentials(),
      args);
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  inference::ModelMetadataRequest mreq;
  mreq.set_name(ep.model);
  inference::ModelMetadataResponse meta;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto reader = stub->AsyncModelMetadata(&ctx, mreq, &cq);
  grpc::Status st;
  reader->Finish(&meta, &st, reinterpret_cast<void*>(1));
  bool cancelled = false;
  for (;;) {  // the call, honouring a signal every 50 ms
    void* tag = nullptr;
    bool ok = false;
    auto next =
        cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::milliseconds(50));
    if (next == grpc::CompletionQueue::GOT_EVENT) break;
    if (!cancelled && Interrupted()) {
      ctx.TryCancel();
      cancelled = true;
    }
  }
  cq.Shutdown();
  {
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) {
    }
  }
  if (cancelled) return absl::CancelledError("interrupted while asking the endpoint for metadata");
  if (!st.ok()) {
    return absl::UnavailableError(absl::StrCat("asking ", ep.address, " for model ", ep.model,
                                               "'s metadata: ", st.error_message()));
  }
  if (meta.inputs_size() != 1 || meta.inputs(0).datatype() != "FP32") {
    return absl::UnimplementedError(absl::StrCat(
        "model ", ep.model, ": only models with one FP32 input are supported as endpoints"));
  }
  // Variable dimensions (-1: batch, sequence length) become 1.
  reference::TensorSpec input{.name = meta.inputs(0).name(), .datatype = "FP32"};
  int64_t elements = 1;
  for (int64_t d : meta.inputs(0).shape()) {
    const int64_t dim = d < 0 ? 1 : d;
    input.shape.push_back(dim);
    elements *= dim;
  }
  if (elements <= 0 || elements > (int64_t{1} << 26)) {
    return absl::UnimplementedError(absl::StrCat("model ", ep.model, ": input shape with ",
                                                 elements, " elements is not supported"));
  }
  std::vector<float> zeros(static_cast<size_t>(elements), 0.0f);
  load_options_.request = reference::MakeInferRequest(ep.model, input, zeros, /*raw=*/false);
  load_options_.golden_every = 0;
  record_.target = absl::StrCat(record_.target, " (input ", input.name, " [",
                                absl::StrJoin(input.shape, ","), "])");
  return absl::OkStatus();
}

int64_t Drill::Frontier(int64_t now, const std::vector<reports::RequestRecord>& recent) const {
  for (const reports::RequestRecord& r : recent) {
    if (!Decided(r, now)) return r.intended_ns;
  }
  return now;
}

std::optional<std::string> Drill::CheckSteadyState(int64_t now, bool* settled) {
  const int64_t baseline_end = record_.phases.baseline_end_ns;
  std::vector<reports::RequestRecord> baseline =
      load_->Slice(SteadyStateFrom(baseline_end), baseline_end);
  // Wait until every answer of the steady-state window is in, so the check sees what the
  // final analysis will (its baseline p99 and good_latency come from the same function):
  // each request completes by its deadline, one timeout after its actual send. A request
  // still unanswered a second past that (a sender that far behind) is judged not ok.
  *settled = true;
  const int64_t give_up = Ns(s_.load.timeout) + 1'000 * kNsPerMs;
  for (const reports::RequestRecord& r : baseline) {
    if (!IsCompleted(r) && now - r.intended_ns <= give_up) {
      *settled = false;
      return std::nullopt;
    }
  }
  std::optional<int64_t> explicit_good;
  if (s_.load.good_latency) explicit_good = Ns(*s_.load.good_latency);
  const SteadyStateStats ss = SteadyStateOf(baseline, baseline_end, explicit_good);
  good_latency_ns_ = ss.good_latency_ns;
  if (ss.requests == 0 || ss.ok == 0) {
    return std::string("no request succeeded during the baseline");
  }
  const double ratio = static_cast<double>(ss.good) / ss.requests;
  if (ratio < s_.steady_state.success_ratio) {
    return absl::StrFormat("good ratio %.4f (%d of %d requests) below %.4f", ratio, ss.good,
                           ss.requests, s_.steady_state.success_ratio);
  }
  if (s_.steady_state.p50 && ss.ok_p50_ns > Ns(*s_.steady_state.p50)) {
    return absl::StrCat("p50 ", DurationToString(absl::Nanoseconds(ss.ok_p50_ns)), " above ",
                        DurationToString(*s_.steady_state.p50));
  }
  if (s_.steady_state.p99 && ss.ok_p99_ns > Ns(*s_.steady_state.p99)) {
    return absl::StrCat("p99 ", DurationToString(absl::Nanoseconds(ss.ok_p99_ns)), " above ",
                        DurationToString(*s_.steady_state.p99));
  }
  return std::nullopt;
}

std::optional<std::string> Drill::CheckAbort(int64_t now) {
  if (s_.abort.empty()) return std::nullopt;
  constexpr int64_t kWindow = 1'000 * kNsPerMs;  // "over the last second" (SCHEMA.md)
  const int64_t baseline_end = record_.phases.baseline_end_ns;
  // Every request older than min(good_latency, timeout) is decided, so this look-back
  // holds the frontier and the second before it.
  const int64_t lookback = kWindow + std::min(good_latency_ns_, Ns(s_.load.timeout)) + kNsPerMs;
  std::vector<reports::RequestRecord> recent = load_->Slice(now - lookback, now);
  const int64_t frontier = Frontier(now, recent);
  if (frontier <= baseline_end) return std::nullopt;
  uint64_t total = 0, good = 0;
  LatencyHistogram latency;
  for (const reports::RequestRecord& r : recent) {
    if (r.intended_ns < frontier - kWindow) continue;
    if (r.intended_ns >= frontier) break;
    ++total;
    if (IsGood(r, good_latency_ns_)) ++good;
    // An unanswered request's latency is at least its age.
    latency.Record(IsCompleted(r) ? r.latency_ns() : now - r.intended_ns);
  }
  abort_since_.resize(s_.abort.size());
  for (size_t k = 0; k < s_.abort.size(); ++k) {
    const scenarios::AbortCondition& c = s_.abort[k];
    std::string what;
    bool holds = false;
    if (total > 0 && c.success_ratio_below) {
      const double ratio = static_cast<double>(good) / total;
      if (ratio < *c.success_ratio_below) {
        holds = true;
        what = absl::StrFormat("good ratio %.3f below %.3f", ratio, *c.success_ratio_below);
      }
    }
    if (total > 0 && c.p99_above && latency.ValueAtQuantile(0.99) > Ns(*c.p99_above)) {
      holds = true;
      absl::StrAppend(&what, what.empty() ? "" : " and ", "p99 ",
                      DurationToString(absl::Nanoseconds(latency.ValueAtQuantile(0.99))), " above ",
                      DurationToString(*c.p99_above));
    }
    if (!holds) {
      abort_since_[k].reset();
      continue;
    }
    if (!abort_since_[k]) abort_since_[k] = frontier;
    if (frontier - *abort_since_[k] >= Ns(c.for_duration)) {
      return absl::StrCat(what, " over the last second, continuously for ",
                          DurationToString(c.for_duration), " (requests up to ",
                          DurationToString(absl::Milliseconds((now - frontier) / kNsPerMs)),
                          " ago)");
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
  phase_ = phase;
  int64_t next_abort_check = baseline_end;

  while (true) {
    int64_t now = Now();
    DrainProbeEvents();
    if (Interrupted()) {
      OnInterrupt(absl::StrCat("in the ", phase, " phase"));
      return;
    }
    if (phase == "baseline" && now >= baseline_end) {
      // The steady-state hypothesis over the baseline, once its answers are in.
      bool settled = false;
      std::optional<std::string> why = CheckSteadyState(now, &settled);
      if (why) {
        Emit("abort", "", absl::StrCat("steady state did not hold in the baseline: ", *why));
        Finish(ExitStatus::kSloFailed,
               absl::StrCat("steady-state hypothesis failed before any fault: ", *why));
        return;
      }
      if (settled) {
        phase = "faults";
        phase_ = phase;
        Emit("phase", "",
             absl::StrCat("baseline held; faults phase (good latency ",
                          good_latency_ns_ == std::numeric_limits<int64_t>::max()
                              ? std::string("unbounded")
                              : DurationToString(absl::Nanoseconds(good_latency_ns_)),
                          ")"));
      }
    }
    while (phase != "baseline" && next < actions.size() && actions[next].t <= now) {
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
        // A fault is held for its duration from the moment the agent confirmed it (t_i),
        // not from `at`: an injection that took 70 ms would otherwise be held 70 ms short.
        if (f.spec.duration) {
          for (size_t k = next; k < actions.size(); ++k) {
            if (!actions[k].inject && actions[k].fault == a.fault) {
              actions[k].t = event.injected_ns + Ns(*f.spec.duration);
            }
          }
          std::stable_sort(actions.begin() + static_cast<std::ptrdiff_t>(next), actions.end(),
                           [](const Action& x, const Action& y) { return x.t < y.t; });
        }
      } else {
        absl::Status st = driver_->Revert(f.name, event);
        if (!st.ok()) {
          Emit("error", f.name, st.message());
          Finish(ExitStatus::kInfraError, std::string(st.message()));
          return;
        }
        Emit("revert", f.name, "reverted");
      }
      if (Interrupted()) break;
    }
    if (phase == "faults" && next == actions.size() && now >= record_.phases.faults_end_ns) {
      phase = "recovery";
      phase_ = phase;
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
    Snapshot(/*force=*/false);
    if (now >= observe_end) return;
    int64_t wake = std::min({observe_end, now + kAbortCheckNs,
                             phase == "baseline" ? baseline_end : observe_end,
                             next < actions.size() ? actions[next].t : observe_end});
    // Sleep in short steps: a signal is honoured within 20 ms.
    wake = std::min(wake, now + 20 * kNsPerMs);
    clock_.SleepUntil(origin_ + std::max(wake, now + kNsPerMs));
  }
}

void Drill::Snapshot(bool force) {
  if (!live_ || !load_) return;
  // An event asks for a prompt snapshot, still at most every 100 ms (a burst of probe
  // events copies the log once).
  if (!force && !live_->Due(snapshot_wanted_ ? absl::Milliseconds(100) : absl::Seconds(1))) {
    return;
  }
  snapshot_wanted_ = false;
  reports::RunRecord r = record_;
  r.requests = load_->Log();
  r.send_skew = load_->SendSkew();
  if (writer_) r.writes = writer_->Log();
  if (probes_) r.probes = probes_->Results();
  std::erase_if(r.faults, [](const reports::FaultEvent& f) { return f.name.empty(); });
  r.in_progress = true;
  // The writer thread reads this to settle the partial analysis.
  r.phases.observe_end_ns = std::min(r.phases.observe_end_ns, Now());
  if (r.exit_reason.empty()) {
    r.exit_reason = absl::StrCat("in progress: ", phase_, " phase at ",
                                 DurationToString(absl::Milliseconds(Now() / kNsPerMs)),
                                 " (a runner that died leaves its record so)");
  }
  live_->Offer(std::move(r));
}

// On the record thread: analysis of what had settled when the snapshot was taken (its
// observe end is the snapshot time; requests younger than one timeout are left out of
// the analysis, not out of the record).
void Drill::PrepareSnapshot(reports::RunRecord& r) const {
  AnalysisInput in = AnalysisInputFor(s_, r);
  const int64_t settled = r.phases.observe_end_ns - Ns(s_.load.timeout);
  std::erase_if(in.requests,
                [settled](const reports::RequestRecord& q) { return q.intended_ns >= settled; });
  in.phases.observe_end_ns = std::max<int64_t>(0, settled);
  in.phases.faults_end_ns = std::min(in.phases.faults_end_ns, in.phases.observe_end_ns);
  r.analysis = Analyze(in);
  r.phases.observe_end_ns = record_.phases.observe_end_ns;  // the plan, as in the final record
}

void Drill::Verify() {
  if (!writer_) return;
  phase_ = "verify";
  Emit("phase", "", "verify: reading back every session");
  // The store may be failing over (the gateway answers UNAVAILABLE): ReadBack retries
  // until this deadline.
  auto back = writer_->ReadBack(absl::Seconds(30), [this] { return Interrupted(); });
  if (!back.ok()) {
    if (back.status().code() == absl::StatusCode::kCancelled) {
      OnInterrupt("in the verify phase");
      return;
    }
    Emit("error", "", back.status().message());
    Finish(ExitStatus::kInfraError, std::string(back.status().message()));
    return;
  }
  if (back->retries > 0) {
    Emit("phase", "", absl::StrCat("verify: ", back->retries, " reads retried"));
  }
  if (!back->corrupt.empty()) {
    std::vector<std::string> parts;
    size_t n = 0;
    for (const auto& [session, seqs] : back->corrupt) {
      n += seqs.size();
      parts.push_back(absl::StrCat(session, " seq ", absl::StrJoin(seqs, ",")));
    }
    Emit("error", "",
         absl::StrCat("verify: ", n,
                      " entries read back with a payload other than the one "
                      "written (counted as not read back): ",
                      absl::StrJoin(parts, "; ")));
  }
  record_.read_back = std::move(back->sessions);
  record_.read_back_corrupt = std::move(back->corrupt);
  record_.verified = true;
}

void Drill::DryRun() {
  // network netns needs root; the service is not started, but whether it could be is known.
  if (const auto* ref = s_.target.reference(); ref && ref->network == scenarios::Network::kNetns) {
    if (absl::Status st = reference::NetnsPreflight(); !st.ok()) {
      Emit("error", "", absl::StrCat("target.reference.network: netns: ", st.message()));
      Finish(ExitStatus::kInfraError, std::string(st.message()));
      return;
    }
    Emit("resolve", "",
         "target.reference.network: netns: this node can give each replica its own network "
         "namespace and veth link");
  }
  // Targets: agent names and selectors resolve now; reference roles only once the service
  // runs (a dry run does not start it); an endpoint is asked for its model's metadata.
  for (const scenarios::ScenarioFault& f : s_.faults) {
    if (f.target.role) {
      Emit("resolve", f.name,
           absl::StrCat(f.spec.kind, " on ", f.target.role->ToString(),
                        ": a reference role, resolved when the reference service runs (not "
                        "started in a dry run)"));
      continue;
    }
    auto resolved = driver_->Resolve(f);
    if (!resolved.ok()) {
      Emit("error", f.name, resolved.status().message());
      Finish(ExitStatus::kInvalid, std::string(resolved.status().message()));
      return;
    }
    std::vector<std::string> targets;
    for (const FaultDriver::Resolved& r : *resolved) targets.push_back(r.target);
    Emit("resolve", f.name, absl::StrCat(f.spec.kind, " on ", absl::StrJoin(targets, ", ")));
  }
  if (const auto* ep = s_.target.endpoint()) {
    if (absl::Status st = ConnectEndpoint(*ep); !st.ok()) {
      if (st.code() == absl::StatusCode::kCancelled) return OnInterrupt("in the dry run");
      Emit("error", "", st.message());
      Finish(st.code() == absl::StatusCode::kInvalidArgument ? ExitStatus::kInvalid
                                                             : ExitStatus::kInfraError,
             std::string(st.message()));
      return;
    }
    Emit("resolve", "", absl::StrCat("endpoint: ", record_.target));
  }
  Emit("phase", "",
       "dry run: scenario valid, agents reachable, every fault kind available and allowed, "
       "targets resolved; nothing changed");
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
  RunPhases();
  if (o_.dry_run) return record_;  // changes nothing, writes nothing
  record_.in_progress = false;
  const std::string path = RecordPath(s_, o_, record_.run_id);
  absl::Status written;
  if (live_) {
    written = live_->WriteFinal(record_);
    live_.reset();
  } else {
    std::error_code ec;
    std::filesystem::create_directories(ReportDir(s_, o_), ec);
    written = reports::WriteRunRecord(record_, path);
  }
  if (!written.ok()) {
    Emit("error", "", absl::StrCat("writing the run record: ", written.message()));
    Finish(ExitStatus::kInfraError, absl::StrCat("writing the run record: ", written.message()));
  }
  return record_;
}

void Drill::RunPhases() {
  if (!o_.events_file.empty()) {
    events_ = std::make_unique<std::ofstream>(o_.events_file, std::ios::app);
    if (!*events_) {
      events_.reset();
      Finish(ExitStatus::kInvalid, absl::StrCat("cannot open --events file ", o_.events_file));
      return;
    }
  }
  if (s_.guard && !o_.force) {
    if (absl::Status g = CheckGuard(*s_.guard, absl::Now()); !g.ok()) {
      Emit("abort", "", g.message());
      Finish(ExitStatus::kInvalid, std::string(g.message()));
      return;
    }
  }

  origin_ = clock_.NowNanos();
  record_.started_unix_ns = absl::ToUnixNanos(absl::Now());
  if (!o_.dry_run) {
    // The record is on disk from here on, so even a runner that dies leaves one.
    std::error_code ec;
    const std::string dir = ReportDir(s_, o_);
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      Finish(ExitStatus::kInfraError,
             absl::StrCat("creating the report directory ", dir, ": ", ec.message()));
      return;
    }
    live_ = std::make_unique<LiveRecord>(RecordPath(s_, o_, record_.run_id),
                                         [this](reports::RunRecord& r) { PrepareSnapshot(r); });
    reports::RunRecord first = record_;
    first.in_progress = true;
    first.exit_reason = "in progress: starting (a runner that died leaves its record so)";
    live_->Offer(std::move(first));
  }
  if (absl::Status st = StartAgents(); !st.ok()) {
    Emit("error", "", st.message());
    Finish(ExitStatus::kInfraError, std::string(st.message()));
    return;
  }
  if (Interrupted()) return OnInterrupt("while starting the agents");
  if (o_.dry_run) return DryRun();
  if (absl::Status st = StartTarget(); !st.ok()) {
    if (st.code() == absl::StatusCode::kCancelled) return OnInterrupt("while starting the target");
    Emit("error", "", st.message());
    Finish(st.code() == absl::StatusCode::kInvalidArgument ? ExitStatus::kInvalid
                                                           : ExitStatus::kInfraError,
           std::string(st.message()));
    return;
  }
  if (Interrupted()) {
    OnInterrupt("while starting the target");
    if (absl::Status st = driver_->RevertAll(); !st.ok()) Emit("error", "", st.message());
    return;
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
    return;
  }
  if (s_.writes) {
    WriteOptions wo{.address = service_address_,
                    .credentials = load_options_.credentials,
                    .tls_server_name = load_options_.tls_server_name,
                    .rate = s_.writes->rate,
                    .sessions = s_.writes->sessions,
                    .payload_size = s_.writes->payload_size,
                    .session_prefix = record_.run_id};
    writer_ = std::make_unique<SessionWriter>(wo, clock_, origin_);
    if (absl::Status st = writer_->Start(0); !st.ok()) {
      Finish(ExitStatus::kInfraError, std::string(st.message()));
      return;
    }
  }
  if (!s_.probes.empty()) {
    auto probes = ProbeRunner::Create(s_,
                                      {.address = service_address_,
                                       .credentials = load_options_.credentials,
                                       .tls_server_name = load_options_.tls_server_name,
                                       .model = load_options_.request.model_name(),
                                       .golden_request = load_options_.request,
                                       .check_answer = load_options_.check_answer},
                                      clock_, origin_);
    if (!probes.ok()) {
      Emit("error", "", probes.status().message());
      Finish(ExitStatus::kInfraError, std::string(probes.status().message()));
      return;
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
    if (factory.ok() && !(*factory)->info().takes_duration) {
      event.reverted_ns.reset();
    } else if (event.reverted_ns) {
      Emit("revert", event.name,
           record_.exit_status == ExitStatus::kAborted ? "reverted (abort)" : "reverted");
    }
  }
  if (absl::Status st = driver_->RevertAll(); !st.ok()) {
    Emit("error", "", st.message());
    Finish(ExitStatus::kInfraError, std::string(st.message()));
  }
  if (Interrupted()) {
    // Ctrl-C does for its drill what `agent halt` does: nothing of it stays applied.
    if (absl::Status st = driver_->HaltLocal("chaosdrill run interrupted"); !st.ok()) {
      Emit("error", "", st.message());
    }
  }
  Snapshot(/*force=*/true);
  Progress("stopping", /*final_line=*/true);
  load_->Stop();
  if (writer_) writer_->Stop();
  if (probes_) probes_->Stop();
  DrainProbeEvents();
  if (record_.exit_status == ExitStatus::kPassed || record_.exit_status == ExitStatus::kSloFailed) {
    if (Interrupted()) {
      OnInterrupt("before the verify phase");
    } else {
      Verify();
    }
  }
  // Faults that were never reached keep no event.
  std::erase_if(record_.faults, [](const reports::FaultEvent& f) { return f.name.empty(); });
  record_.requests = load_->Log();
  record_.send_skew = load_->SendSkew();
  if (writer_) record_.writes = writer_->Log();
  if (probes_) record_.probes = probes_->Results();

  // The same function `chaosdrill report --merge` re-analyses records with.
  record_.analysis = AnalyzeRecord(s_, record_);
  if (std::optional<std::string> failed = SloFailure(record_.analysis)) {
    Finish(ExitStatus::kSloFailed, *std::move(failed));
  }
}

}  // namespace

std::string ReportDir(const Scenario& scenario, const DrillOptions& options) {
  return options.report_dir.empty() ? scenario.report.dir : options.report_dir;
}

std::string RecordPath(const Scenario& scenario, const DrillOptions& options,
                       const std::string& run_id) {
  return absl::StrCat(ReportDir(scenario, options), "/", run_id, ".json");
}

reports::RunRecord RunDrill(const Scenario& scenario, const DrillOptions& options) {
  Drill drill(scenario, options);
  return drill.Run();
}

}  // namespace chaosdrill::runner
