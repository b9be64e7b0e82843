#include "injector/agent/agent_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "injector/agent/pki.h"

namespace chaosdrill::agent {

absl::Status FromGrpc(const grpc::Status& status, absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(context, ": ", status.error_message()));
}

absl::StatusOr<std::unique_ptr<AgentClient>> AgentClient::Connect(const AgentEndpoint& endpoint) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::shared_ptr<grpc::Channel> channel;
  if (!endpoint.unix_path.empty()) {
    std::string path = endpoint.unix_path;
    if (path.rfind("unix:", 0) != 0) path = "unix:" + path;
    channel = grpc::CreateCustomChannel(path, grpc::InsecureChannelCredentials(), args);
  } else if (!endpoint.tcp_target.empty()) {
    if (endpoint.ca_file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "agent ", endpoint.tcp_target, ": TCP needs mutual TLS: a CA file is required"));
    }
    grpc::SslCredentialsOptions opts;
    ASSIGN_OR_RETURN(opts.pem_root_certs, ReadWholeFile(endpoint.ca_file));
    if (!endpoint.cert_file.empty()) {
      ASSIGN_OR_RETURN(opts.pem_cert_chain, ReadWholeFile(endpoint.cert_file));
      ASSIGN_OR_RETURN(opts.pem_private_key, ReadWholeFile(endpoint.key_file));
    }
    if (!endpoint.server_name.empty()) {
      args.SetSslTargetNameOverride(endpoint.server_name);
    }
    channel = grpc::CreateCustomChannel(endpoint.tcp_target, grpc::SslCredentials(opts), args);
  } else {
    return absl::InvalidArgumentError("agent endpoint: give a unix socket path or a tcp target");
  }
  unsigned char raw[12];
  RAND_bytes(raw, sizeof(raw));
  std::string session =
      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
  auto client = std::unique_ptr<AgentClient>(new AgentClient(std::move(channel), session));
  client->unix_path_ = endpoint.unix_path;
  if (client->unix_path_.rfind("unix:", 0) == 0) client->unix_path_ = client->unix_path_.substr(5);
  return client;
}

AgentClient::AgentClient(std::shared_ptr<grpc::Channel> channel, std::string session_id)
    : channel_(std::move(channel)),
      stub_(v1::Agent::NewStub(channel_)),
      session_id_(std::move(session_id)) {}

absl::Status AgentClient::Checked(const grpc::Status& status, absl::string_view context) const {
  absl::Status st = FromGrpc(status, context);
  if (st.code() != absl::StatusCode::kUnavailable || unix_path_.empty()) return st;
  // The agent closes a unix connection from a uid it does not accept before gRPC reads a
  // byte, and the kernel refuses connect() on its 0600 socket to other users: both look
  // like an unreachable agent from here. Say so.
  struct stat sb {};
  if (::stat(unix_path_.c_str(), &sb) != 0 || !S_ISSOCK(sb.st_mode)) {
    return absl::UnavailableError(absl::StrCat(st.message(), " (no agent socket at ", unix_path_,
                                               "; is the agent running?)"));
  }
  return absl::UnavailableError(absl::StrCat(
      st.message(), " (the socket ", unix_path_, " exists, owned by uid ", sb.st_uid,
      "; the agent accepts unix peers only with its own uid, root or one of its "
      "unix_allowed_uids, and audits a refused one as safety.peer_uid; this process is uid ",
      ::geteuid(), ")"));
}

AgentClient::~AgentClient() { StopKeepAlive(); }

void AgentClient::PrepareContext(grpc::ClientContext* ctx) const {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(rpc_timeout_)));
  ctx->set_wait_for_ready(false);
}

absl::StatusOr<v1::CapabilitiesResponse> AgentClient::Capabilities() {
  grpc::ClientContext ctx;
  PrepareContext(&ctx);
  v1::CapabilitiesResponse resp;
  absl::Status st =
      Checked(stub_->Capabilities(&ctx, v1::CapabilitiesRequest(), &resp), "agent Capabilities");
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::InjectResponse> AgentClient::Inject(const FaultSpec& spec,
                                                       const InjectOptions& options) {
  v1::InjectRequest req;
  req.mutable_spec()->set_kind(spec.kind);
  for (const auto& [k, v] : spec.params) (*req.mutable_spec()->mutable_params())[k] = v;
  if (spec.duration) req.mutable_spec()->set_duration_ms(absl::ToInt64Milliseconds(*spec.duration));
  req.set_session_id(session_id_);
  req.set_lease_ttl_ms(absl::ToInt64Milliseconds(options.lease_ttl));
  req.set_max_duration_ms(absl::ToInt64Milliseconds(options.max_duration));
  req.set_note(options.note);
  grpc::ClientContext ctx;
  PrepareContext(&ctx);
  v1::InjectResponse resp;
  absl::Status st =
      Checked(stub_->Inject(&ctx, req, &resp), absl::StrCat("agent Inject ", spec.kind));
  if (!st.ok()) return st;
  if (options.keep_alive) {
    StartKeepAlive(options.lease_ttl > absl::ZeroDuration() ? options.lease_ttl
                                                            : absl::Seconds(10));
  }
  return resp;
}

absl::StatusOr<v1::RevertResponse> AgentClient::Revert(const std::string& fault_id) {
  v1::RevertRequest req;
  req.set_fault_id(fault_id);
  grpc::ClientContext ctx;
  PrepareContext(&ctx);
  v1::RevertResponse resp;
  absl::Status st =
      Checked(stub_->Revert(&ctx, req, &resp), absl::StrCat("agent Revert ", fault_id));
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::ListResponse> AgentClient::List() {
  grpc::ClientContext ctx;
  PrepareContext(&ctx);
  v1::ListResponse resp;
  absl::Status st = Checked(stub_->List(&ctx, v1::ListRequest(), &resp), "agent List");
  if (!st.ok()) return st;
  return resp;
}

absl::StatusOr<uint32_t> AgentClient::Halt(const std::string& reason) {
  v1::HaltRequest req;
  req.set_reason(reason);
  grpc::ClientContext ctx;
  PrepareContext(&ctx);
  v1::HaltResponse resp;
  absl::Status st = Checked(stub_->Halt(&ctx, req, &resp), "agent Halt");
  if (!st.ok()) return st;
  return resp.reverted();
}

absl::Status AgentClient::Resume() {
  grpc::ClientContext ctx;
  PrepareContext(&ctx);
  v1::ResumeResponse resp;
  return Checked(stub_->Resume(&ctx, v1::ResumeRequest(), &resp), "agent Resume");
}

void AgentClient::StartKeepAlive(absl::Duration ttl) {
  absl::MutexLock lock(&mu_);
  absl::Duration interval = std::max(ttl / 3, absl::Milliseconds(50));
  if (keepalive_.joinable()) {
    if (interval < interval_) interval_ = interval;
    return;
  }
  interval_ = interval;
  stop_ = false;
  keepalive_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "agent-keepalive");
    KeepAliveLoop();
  });
}

void AgentClient::StopKeepAlive() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (stream_ctx_ != nullptr) stream_ctx_->TryCancel();
    cv_.SignalAll();
  }
  if (keepalive_.joinable()) keepalive_.join();
}

uint64_t AgentClient::renewals() const {
  absl::MutexLock lock(&mu_);
  return renewals_;
}

void AgentClient::KeepAliveLoop() {
  v1::KeepAliveRequest req;
  req.set_session_id(session_id_);
  for (;;) {
    grpc::ClientContext ctx;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      stream_ctx_ = &ctx;
    }
    auto stream = stub_->KeepAlive(&ctx);
    v1::KeepAliveResponse resp;
    for (;;) {
      if (!stream->Write(req) || !stream->Read(&resp)) break;
      absl::MutexLock lock(&mu_);
      ++renewals_;
      // The agent says the shortest TTL among our faults (its default when we gave none):
      // renew at least three times per TTL.
      if (resp.lease_ttl_ms() > 0) {
        interval_ = std::min(interval_, std::max(absl::Milliseconds(resp.lease_ttl_ms()) / 3,
                                                 absl::Milliseconds(50)));
      }
      absl::Duration interval = interval_;
      absl::Time until = absl::Now() + interval;
      while (!stop_ && absl::Now() < until) cv_.WaitWithDeadline(&mu_, until);
      if (stop_) break;
    }
    stream->WritesDone();
    grpc::Status st = stream->Finish();
    absl::MutexLock lock(&mu_);
    stream_ctx_ = nullptr;
    if (stop_) return;
    if (!st.ok()) LogWarn("agent-client", absl::StrCat("keepalive stream: ", st.error_message()));
    // Reconnect soon: the lease keeps running while we are away.
    cv_.WaitWithTimeout(&mu_, absl::Milliseconds(200));
  }
}

}  // namespace chaosdrill::agent
