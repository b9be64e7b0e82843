// Authentication of TCP clients (DESIGN §5): every call on the TLS listener must carry a
// client certificate that chains to the configured CA, is within its validity period, is
// meant for client authentication, and (when configured) has an allowed subject.
//
// Why verification lives here and not in the TLS handshake: a handshake refusal is
// invisible to the application, and the audit log must record refused clients (no
// certificate, another CA, expired). So the listener asks for a client certificate during
// the handshake (the handshake still proves the client holds the key), and this gRPC
// AuthMetadataProcessor, which runs before any handler for every call, verifies the chain
// with OpenSSL, refuses with UNAUTHENTICATED and audits the refusal. Verified peers get an
// auth-context property kPeerProperty with their subject, which handlers require.
#pragma once

#include <grpcpp/security/auth_metadata_processor.h>

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "injector/agent/agent_metrics.h"
#include "injector/agent/audit_log.h"

namespace chaosdrill::agent {

inline constexpr char kPeerProperty[] = "chaosdrill_verified_peer";

class ClientCertVerifier : public grpc::AuthMetadataProcessor {
 public:
  // `ca_pem` holds one or more CA certificates. `audit` and `metrics` outlive this.
  static absl::StatusOr<std::shared_ptr<ClientCertVerifier>> Create(
      const std::string& ca_pem, std::vector<std::string> allowed_subjects, AuditLog* audit,
      AgentMetrics* metrics);
  ~ClientCertVerifier() override;

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  // Verifies one PEM certificate: its subject ("CN=..,O=..") or an error naming why.
  absl::StatusOr<std::string> Verify(const std::string& cert_pem);

 private:
  ClientCertVerifier(void* store, std::vector<std::string> allowed, AuditLog* audit,
                     AgentMetrics* metrics)
      : store_(store), allowed_(std::move(allowed)), audit_(audit), metrics_(metrics) {}

  void* const store_;  // X509_STORE*
  const std::vector<std::string> allowed_;
  AuditLog* const audit_;
  AgentMetrics* const metrics_;
  struct Cached {
    std::string subject;
    int64_t until_ns;  // re-verify after this (monotonic)
  };
  absl::Mutex mu_;
  std::map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);  // by PEM
};

}  // namespace chaosdrill::agent
