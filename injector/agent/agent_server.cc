#include "injector/agent/agent_server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "chaosdrill/agent/v1/agent.grpc.pb.h"
#include "common/log.h"
#include "common/status.h"
#include "common/version.h"
#include "injector/agent/client_cert_verifier.h"
#include "injector/agent/pki.h"

namespace chaosdrill::agent {

namespace pb = ::chaosdrill::agent::v1;

namespace {

// Who called: `name` for the audit log and List, `principal` owns faults, `local` for the
// unix socket.
struct PeerIdentity {
  std::string name;
  std::string principal;
  bool local = false;
};

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

pb::FaultState ToProto(FaultState s) {
  switch (s) {
    case FaultState::kActive:
      return pb::FAULT_STATE_ACTIVE;
    case FaultState::kReverted:
      return pb::FAULT_STATE_REVERTED;
    case FaultState::kExpired:
      return pb::FAULT_STATE_EXPIRED;
    case FaultState::kEnded:
      return pb::FAULT_STATE_ENDED;
    case FaultState::kRevertFailed:
      return pb::FAULT_STATE_REVERT_FAILED;
  }
  return pb::FAULT_STATE_UNSPECIFIED;
}

nlohmann::json SpecJson(const pb::FaultSpec& spec) {
  nlohmann::json params = nlohmann::json::object();
  for (const auto& [k, v] : spec.params()) params[k] = v;
  return {{"kind", spec.kind()}, {"params", params}, {"duration_ms", spec.duration_ms()}};
}

void FillGpus(GpuFacts* gpus, pb::CapabilitiesResponse* resp) {
  if (gpus == nullptr) return;
  for (const GpuDeviceFacts& g : gpus->Devices()) {
    pb::Gpu* gpu = resp->add_gpus();
    gpu->set_index(static_cast<uint32_t>(g.index));
    gpu->set_name(g.name);
    gpu->set_memory_bytes(g.memory_bytes);  // 0 = unknown (see GpuFacts::error())
  }
}

}  // namespace

class AgentService final : public pb::Agent::CallbackService {
 public:
  AgentService(AgentServerDeps deps, UnixListener* unix) : deps_(deps), unix_(unix) {}

  // The caller's identity, or an error when the call did not come through one of our
  // authenticated transports (never expected; defence in depth).
  absl::StatusOr<PeerIdentity> Peer(grpc::CallbackServerContext* ctx) const {
    auto auth = ctx->auth_context();
    if (auth) {
      auto v = auth->FindPropertyValues(kPeerProperty);
      if (!v.empty()) {
        std::string subject(v.front().data(), v.front().size());
        return PeerIdentity{.name = subject, .principal = subject, .local = false};
      }
    }
    if (unix_ != nullptr) {
      std::string name = unix_->PeerName(ctx->peer());
      if (!name.empty()) {
        // "uid:U pid:P": the uid owns faults (a client may reconnect from another pid).
        return PeerIdentity{
            .name = name, .principal = name.substr(0, name.find(' ')), .local = true};
      }
    }
    return absl::UnauthenticatedError(
        absl::StrCat("peer ", ctx->peer(),
                     " is neither a verified TLS client nor a checked "
                     "unix socket peer"));
  }

  template <typename Body>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, absl::string_view rpc,
                                  const nlohmann::json& summary, Body body) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::StatusOr<PeerIdentity> peer = Peer(ctx);
    absl::Status st = peer.ok() ? body(*peer) : peer.status();
    if (st.code() == absl::StatusCode::kPermissionDenied && rpc != "Inject") {
      deps_.metrics->Refused(std::string(st.message().substr(0, st.message().find(':'))));
    }
    deps_.audit->Record(rpc, peer.ok() ? peer->name : ctx->peer(), summary, st);
    reactor->Finish(ToGrpc(st));
    return reactor;
  }

  grpc::ServerUnaryReactor* Capabilities(grpc::CallbackServerContext* ctx,
                                         const pb::CapabilitiesRequest*,
                                         pb::CapabilitiesResponse* resp) override {
    return Unary(ctx, "Capabilities", nlohmann::json::object(), [&](const PeerIdentity&) {
      char host[256] = "";
      ::gethostname(host, sizeof(host) - 1);
      resp->set_hostname(host);
      utsname u{};
      if (::uname(&u) == 0) resp->set_kernel(u.release);
      resp->set_cores(static_cast<uint32_t>(::sysconf(_SC_NPROCESSORS_ONLN)));
      resp->set_memory_bytes(deps_.policy->facts().memory_bytes);
      FillGpus(deps_.gpus, resp);
      for (const injector::FaultFactory* f : deps_.registry->All()) {
        injector::PreflightResult pre = f->Preflight();
        pb::KindAvailability* k = resp->add_kinds();
        k->set_kind(std::string(f->name()));
        k->set_available(pre.available);
        k->set_reason(pre.reason);
        k->set_fix(pre.fix);
        k->set_allowed(deps_.policy->KindAllowed(std::string(f->name())));
      }
      resp->set_agent_version(kVersion);
      resp->set_halted(deps_.leases->halted());
      resp->set_max_duration_ms(absl::ToInt64Milliseconds(deps_.leases->options().max_duration));
      resp->set_default_lease_ttl_ms(
          absl::ToInt64Milliseconds(deps_.leases->options().default_ttl));
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* Inject(grpc::CallbackServerContext* ctx, const pb::InjectRequest* req,
                                   pb::InjectResponse* resp) override {
    nlohmann::json summary = {{"spec", SpecJson(req->spec())},
                              {"session", req->session_id()},
                              {"lease_ttl_ms", req->lease_ttl_ms()},
                              {"max_duration_ms", req->max_duration_ms()}};
    if (!req->note().empty()) summary["note"] = req->note();
    return Unary(ctx, "Inject", summary, [&](const PeerIdentity& peer) -> absl::Status {
      InjectRequestInfo info;
      info.spec.kind = req->spec().kind();
      for (const auto& [k, v] : req->spec().params()) info.spec.params[k] = v;
      if (req->spec().duration_ms() > 0) {
        info.spec.duration = absl::Milliseconds(req->spec().duration_ms());
      }
      info.session_id = req->session_id();
      info.lease_ttl = absl::Milliseconds(req->lease_ttl_ms());
      info.max_duration = absl::Milliseconds(req->max_duration_ms());
      info.peer = peer.name;
      info.principal = peer.principal;
      info.note = req->note();
      if (absl::Status st = deps_.policy->Check(info.spec); !st.ok()) {
        if (st.code() == absl::StatusCode::kPermissionDenied) {
          std::string rule(st.message().substr(0, st.message().find(':')));
          deps_.metrics->Refused(rule);
        }
        return st;
      }
      absl::StatusOr<InjectOutcome> out = deps_.leases->Inject(info);
      if (!out.ok()) return out.status();
      resp->set_fault_id(out->fault_id);
      resp->set_active_monotonic_ns(out->active_monotonic_ns);
      resp->set_active_unix_ns(out->active_unix_ns);
      resp->set_description(out->description);
      summary["fault_id"] = out->fault_id;
      summary["lease_ttl_granted_ms"] = absl::ToInt64Milliseconds(out->lease_ttl);
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* Revert(grpc::CallbackServerContext* ctx, const pb::RevertRequest* req,
                                   pb::RevertResponse* resp) override {
    return Unary(ctx, "Revert", {{"fault_id", req->fault_id()}}, [&](const PeerIdentity& peer) {
      int64_t mono = 0, unix_ns = 0;
      absl::Status st = deps_.leases->Revert(req->fault_id(), peer.principal, &mono, &unix_ns);
      resp->set_reverted_monotonic_ns(mono);
      resp->set_reverted_unix_ns(unix_ns);
      return st;
    });
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const pb::ListRequest*,
                                 pb::ListResponse* resp) override {
    return Unary(ctx, "List", nlohmann::json::object(), [&](const PeerIdentity&) {
      for (const FaultView& v : deps_.leases->List()) {
        pb::FaultInfo* f = resp->add_faults();
        f->set_fault_id(v.fault_id);
        f->set_session_id(v.session_id);
        f->mutable_spec()->set_kind(v.spec.kind);
        for (const auto& [k, val] : v.spec.params) (*f->mutable_spec()->mutable_params())[k] = val;
        if (v.spec.duration) {
          f->mutable_spec()->set_duration_ms(absl::ToInt64Milliseconds(*v.spec.duration));
        }
        f->set_description(v.description);
        f->set_state(ToProto(v.state));
        f->set_active_unix_ns(v.active_unix_ns);
        f->set_ended_unix_ns(v.ended_unix_ns);
        f->set_lease_ttl_ms(absl::ToInt64Milliseconds(v.lease_ttl));
        f->set_peer(v.peer);
        f->set_error(v.error);
      }
      resp->set_halted(deps_.leases->halted());
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* Halt(grpc::CallbackServerContext* ctx, const pb::HaltRequest* req,
                                 pb::HaltResponse* resp) override {
    return Unary(ctx, "Halt", {{"reason", req->reason()}}, [&](const PeerIdentity& peer) {
      RETURN_IF_ERROR(LocalOnly("Halt", peer));
      resp->set_reverted(static_cast<uint32_t>(deps_.leases->Halt()));
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* ctx, const pb::ResumeRequest*,
                                   pb::ResumeResponse*) override {
    return Unary(ctx, "Resume", nlohmann::json::object(), [&](const PeerIdentity& peer) {
      RETURN_IF_ERROR(LocalOnly("Resume", peer));
      deps_.leases->Resume();
      return absl::OkStatus();
    });
  }

  grpc::ServerBidiReactor<pb::KeepAliveRequest, pb::KeepAliveResponse>* KeepAlive(
      grpc::CallbackServerContext* ctx) override;

  // Halt and Resume act on every client's faults: an operator's commands, accepted on the
  // local unix socket only (whose peers the agent checked by uid), not over TCP.
  static absl::Status LocalOnly(absl::string_view rpc, const PeerIdentity& peer) {
    if (peer.local) return absl::OkStatus();
    return absl::PermissionDeniedError(
        absl::StrCat("admin.local_socket: ", rpc,
                     " affects every client's faults and is accepted only on "
                     "the agent's local unix socket (chaosdrill agent ",
                     rpc == "Halt" ? "halt" : "resume", " --socket PATH on the node), not from ",
                     peer.name, " over TCP"));
  }

  const AgentServerDeps deps_;
  UnixListener* const unix_;
};

namespace {

// Renews the session's leases on every message and answers with its live faults. One
// audit line when the stream ends, with the number of renewals.
class KeepAliveReactor final
    : public grpc::ServerBidiReactor<pb::KeepAliveRequest, pb::KeepAliveResponse> {
 public:
  KeepAliveReactor(const AgentService* service, absl::StatusOr<PeerIdentity> peer)
      : service_(service), peer_(std::move(peer)) {
    if (!peer_.ok()) {
      Finish(ToGrpc(peer_.status()));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    if (session_.empty()) session_ = request_.session_id();
    absl::Duration ttl;
    std::vector<std::string> ids =
        service_->deps_.leases->Renew(request_.session_id(), peer_->principal, &ttl);
    ++renewals_;
    response_.Clear();
    for (auto& id : ids) response_.add_active_fault_ids(std::move(id));
    response_.set_lease_ttl_ms(absl::ToInt64Milliseconds(ttl));
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "keepalive stream broken"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override {
    service_->deps_.audit->Record("KeepAlive", peer_.ok() ? peer_->name : "unauthenticated",
                                  {{"session", session_}, {"renewals", renewals_}}, peer_.status());
    delete this;
  }

 private:
  const AgentService* const service_;
  const absl::StatusOr<PeerIdentity> peer_;
  pb::KeepAliveRequest request_;
  pb::KeepAliveResponse response_;
  std::string session_;
  uint64_t renewals_ = 0;
};

}  // namespace

grpc::ServerBidiReactor<pb::KeepAliveRequest, pb::KeepAliveResponse>* AgentService::KeepAlive(
    grpc::CallbackServerContext* ctx) {
  return new KeepAliveReactor(this, Peer(ctx));
}

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::Start(const AgentConfig& config,
                                                                AgentServerDeps deps) {
  std::unique_ptr<AgentServer> server(new AgentServer());
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(1 << 20);
  // No SO_REUSEPORT: a second agent on the same port must fail, not share the traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (!config.tcp_listen.empty()) {
    if (config.tls.ca.empty() || config.tls.cert.empty() || config.tls.key.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("refusing to listen on tcp ", config.tcp_listen,
                       " without mutual TLS: tls.ca, tls.cert and tls.key are required"));
    }
    ASSIGN_OR_RETURN(std::string ca, ReadWholeFile(config.tls.ca));
    ASSIGN_OR_RETURN(std::string cert, ReadWholeFile(config.tls.cert));
    ASSIGN_OR_RETURN(std::string key, ReadWholeFile(config.tls.key));
    ASSIGN_OR_RETURN(server->verifier_, ClientCertVerifier::Create(ca, config.tls.allowed_subjects,
                                                                   deps.audit, deps.metrics));
    grpc::SslServerCredentialsOptions opts(
        GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);  // see client_cert_verifier.h
    opts.pem_root_certs = ca;
    opts.pem_key_cert_pairs.push_back({key, cert});
    std::shared_ptr<grpc::ServerCredentials> creds = grpc::SslServerCredentials(opts);
    creds->SetAuthMetadataProcessor(server->verifier_);
    builder.AddListeningPort(config.tcp_listen, creds, &server->tcp_port_);
  }
  if (!config.unix_listen.empty()) {
    std::set<uid_t> uids(config.unix_allowed_uids.begin(), config.unix_allowed_uids.end());
    AuditLog* audit = deps.audit;
    ASSIGN_OR_RETURN(server->unix_,
                     UnixListener::Listen(config.unix_listen, uids,
                                          [audit](const std::string& peer, const std::string& why) {
                                            audit->Record("connect", peer, nlohmann::json::object(),
                                                          absl::PermissionDeniedError(why));
                                          }));
  }
  server->service_ = std::make_unique<AgentService>(deps, server->unix_.get());
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || (!config.tcp_listen.empty() && server->tcp_port_ == 0)) {
    return absl::UnavailableError(absl::StrCat("starting the agent's gRPC server failed (is tcp ",
                                               config.tcp_listen, " free and a valid host:port?)"));
  }
  if (server->unix_) server->unix_->Start(server->server_.get());
  return server;
}

AgentServer::~AgentServer() { Shutdown(); }

void AgentServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  if (unix_) unix_->Stop();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
    server_->Wait();
  }
}

}  // namespace chaosdrill::agent
