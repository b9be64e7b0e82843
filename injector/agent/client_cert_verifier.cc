#include "injector/agent/client_cert_verifier.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "injector/agent/lease_manager.h"

namespace chaosdrill::agent {
namespace {

constexpr int64_t kCacheNs = 30'000'000'000;  // re-verify (expiry) every 30 s
constexpr size_t kCacheMax = 256;

std::string Subject(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

std::string CommonName(X509* cert) {
  char buf[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof(buf));
  return buf;
}

std::string PropertyValue(const grpc::AuthContext& ctx, const char* name) {
  auto values = ctx.FindPropertyValues(name);
  if (values.empty()) return "";
  return std::string(values.front().data(), values.front().size());
}

}  // namespace

absl::StatusOr<std::shared_ptr<ClientCertVerifier>> ClientCertVerifier::Create(
    const std::string& ca_pem, std::vector<std::string> allowed_subjects, AuditLog* audit,
    AgentMetrics* metrics) {
  X509_STORE* store = X509_STORE_new();
  BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  int added = 0;
  while (X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, ca);
    X509_free(ca);
    ++added;
  }
  BIO_free(bio);
  ERR_clear_error();
  if (added == 0) {
    X509_STORE_free(store);
    return absl::InvalidArgumentError("tls.ca holds no PEM certificate");
  }
  return std::shared_ptr<ClientCertVerifier>(
      new ClientCertVerifier(store, std::move(allowed_subjects), audit, metrics));
}

ClientCertVerifier::~ClientCertVerifier() { X509_STORE_free(static_cast<X509_STORE*>(store_)); }

absl::StatusOr<std::string> ClientCertVerifier::Verify(const std::string& cert_pem) {
  int64_t now = MonotonicNowNs();
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(cert_pem);
    if (it != cache_.end() && it->second.until_ns > now) return it->second.subject;
  }
  BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) {
    ERR_clear_error();
    return absl::UnauthenticatedError("client certificate could not be parsed");
  }
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, static_cast<X509_STORE*>(store_), cert, nullptr);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
  int ok = X509_verify_cert(ctx);
  std::string why = ok == 1 ? "" : X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  std::string subject = Subject(cert);
  std::string cn = CommonName(cert);
  X509_free(cert);
  ERR_clear_error();
  if (ok != 1) {
    return absl::UnauthenticatedError(
        absl::StrCat("client certificate \"", subject, "\" refused: ", why));
  }
  if (!allowed_.empty() && std::find(allowed_.begin(), allowed_.end(), subject) == allowed_.end() &&
      std::find(allowed_.begin(), allowed_.end(), cn) == allowed_.end() &&
      std::find(allowed_.begin(), allowed_.end(), "CN=" + cn) == allowed_.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("tls.allowed_subjects: client \"", subject, "\" is not an allowed subject"));
  }
  absl::MutexLock lock(&mu_);
  if (cache_.size() >= kCacheMax) cache_.clear();
  cache_[cert_pem] = Cached{subject, now + kCacheNs};
  return subject;
}

grpc::Status ClientCertVerifier::Process(const InputMetadata& auth_metadata,
                                         grpc::AuthContext* context, OutputMetadata*,
                                         OutputMetadata*) {
  std::string method = "unknown";
  if (auto it = auth_metadata.find(":path"); it != auth_metadata.end()) {
    method = std::string(it->second.data(), it->second.size());
    if (size_t slash = method.rfind('/'); slash != std::string::npos) {
      method = method.substr(slash + 1);
    }
  }
  std::string pem = PropertyValue(*context, "x509_pem_cert");
  absl::StatusOr<std::string> subject =
      pem.empty() ? absl::UnauthenticatedError(
                        "no client certificate: the agent accepts only clients with a "
                        "certificate from its CA (mutual TLS)")
                  : Verify(pem);
  if (!subject.ok()) {
    audit_->Record(method, pem.empty() ? "tls (no client certificate)" : "tls (unverified)",
                   nlohmann::json::object(), subject.status());
    metrics_->Refused(subject.status().code() == absl::StatusCode::kPermissionDenied
                          ? "tls.allowed_subjects"
                          : "tls.client_certificate");
    return grpc::Status(static_cast<grpc::StatusCode>(subject.status().code()),
                        std::string(subject.status().message()));
  }
  context->AddProperty(kPeerProperty, *subject);
  return grpc::Status::OK;
}

}  // namespace chaosdrill::agent
