#include "injector/agent/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace chaosdrill::agent {
namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Deleter>;

absl::Status SslError(absl::string_view context) {
  unsigned long err = ERR_get_error();
  char buf[256] = "unknown OpenSSL error";
  if (err != 0) ERR_error_string_n(err, buf, sizeof(buf));
  ERR_clear_error();
  return absl::InternalError(absl::StrCat(context, ": ", buf));
}

absl::StatusOr<Ptr<EVP_PKEY>> NewEcKey() {
  Ptr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) return SslError("generating EC P-256 key");
  return key;
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<std::string> KeyToPem(EVP_PKEY* key) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return SslError("encoding private key");
  }
  return BioToString(bio.get());
}

absl::StatusOr<std::string> CertToPem(X509* cert) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return SslError("encoding certificate");
  return BioToString(bio.get());
}

absl::StatusOr<Ptr<X509>> PemToCert(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return SslError("parsing CA certificate");
  return cert;
}

absl::StatusOr<Ptr<EVP_PKEY>> PemToKey(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return SslError("parsing CA key");
  return key;
}

absl::Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) return SslError(absl::StrCat("building extension ", OBJ_nid2sn(nid), "=", value));
  if (!X509_add_ext(cert, ext.get(), -1)) return SslError("adding extension");
  return absl::OkStatus();
}

bool IsIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Builds and signs one certificate. `issuer`/`issuer_key` null means self-signed.
absl::StatusOr<CertAndKey> Build(const CertRequest& req, X509* issuer, EVP_PKEY* issuer_key) {
  ASSIGN_OR_RETURN(Ptr<EVP_PKEY> key, NewEcKey());
  Ptr<X509> cert(X509_new());
  if (!cert) return SslError("allocating certificate");
  X509_set_version(cert.get(), 2);  // v3
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return SslError("random serial");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(req.not_before));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(req.not_after));
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("chaosdrill"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(req.common_name.c_str()), -1,
                             -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  EVP_PKEY* signer_key = issuer_key != nullptr ? issuer_key : key.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));

  RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_subject_key_identifier, "hash"));
  if (issuer != nullptr) {
    RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_authority_key_identifier, "keyid:always"));
  }
  switch (req.role) {
    case CertRole::kCa:
      RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE"));
      RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign"));
      break;
    case CertRole::kServer:
    case CertRole::kClient:
      RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE"));
      RETURN_IF_ERROR(
          AddExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyAgreement"));
      RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_ext_key_usage,
                             req.role == CertRole::kServer ? "serverAuth" : "clientAuth"));
      break;
  }
  if (!req.sans.empty()) {
    std::vector<std::string> parts;
    for (const std::string& san : req.sans) {
      parts.push_back(absl::StrCat(IsIp(san) ? "IP:" : "DNS:", san));
    }
    RETURN_IF_ERROR(AddExt(cert.get(), signer, NID_subject_alt_name, absl::StrJoin(parts, ",")));
  }
  if (X509_sign(cert.get(), signer_key, EVP_sha256()) == 0) {
    return SslError(absl::StrCat("signing certificate for ", req.common_name));
  }
  CertAndKey out;
  ASSIGN_OR_RETURN(out.cert_pem, CertToPem(cert.get()));
  ASSIGN_OR_RETURN(out.key_pem, KeyToPem(key.get()));
  return out;
}

}  // namespace

absl::StatusOr<CertAndKey> CreateCa(const std::string& common_name, absl::Time not_after) {
  CertRequest req;
  req.common_name = common_name;
  req.role = CertRole::kCa;
  req.not_after = not_after;
  return Build(req, nullptr, nullptr);
}

absl::StatusOr<CertAndKey> IssueCert(const CertAndKey& ca, const CertRequest& request) {
  ASSIGN_OR_RETURN(Ptr<X509> ca_cert, PemToCert(ca.cert_pem));
  ASSIGN_OR_RETURN(Ptr<EVP_PKEY> ca_key, PemToKey(ca.key_pem));
  return Build(request, ca_cert.get(), ca_key.get());
}

PkiPaths PkiPaths::In(const std::string& dir) {
  return PkiPaths{.ca_cert = dir + "/ca.crt",
                  .ca_key = dir + "/ca.key",
                  .agent_cert = dir + "/agent.crt",
                  .agent_key = dir + "/agent.key",
                  .runner_cert = dir + "/runner.crt",
                  .runner_key = dir + "/runner.key"};
}

absl::Status WritePrivateFile(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(absl::StrCat("creating ", tmp));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status st = ErrnoStatus(absl::StrCat("writing ", tmp));
      ::close(fd);
      return st;
    }
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, 0600);
  if (::fsync(fd) != 0 || ::close(fd) != 0) return ErrnoStatus(absl::StrCat("writing ", tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("renaming ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(absl::StrCat("reading ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<PkiPaths> InitPki(const InitPkiOptions& options) {
  if (options.out_dir.empty()) return absl::InvalidArgumentError("init-pki: --out is required");
  if (options.days <= 0) return absl::InvalidArgumentError("init-pki: --days must be positive");
  if (::mkdir(options.out_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("creating ", options.out_dir));
  }
  PkiPaths paths = PkiPaths::In(options.out_dir);
  if (!options.overwrite && ::access(paths.ca_key.c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(
        paths.ca_key, " already exists; refusing to replace a CA (pass --force to do so)"));
  }
  absl::Time not_after = absl::Now() + absl::Hours(24) * options.days;
  ASSIGN_OR_RETURN(CertAndKey ca, CreateCa("chaosdrill CA", not_after));
  CertRequest agent_req{.common_name = "chaosdrill-agent",
                        .role = CertRole::kServer,
                        .sans = options.agent_sans,
                        .not_after = not_after};
  ASSIGN_OR_RETURN(CertAndKey agent, IssueCert(ca, agent_req));
  CertRequest runner_req{
      .common_name = "chaosdrill-runner", .role = CertRole::kClient, .not_after = not_after};
  ASSIGN_OR_RETURN(CertAndKey runner, IssueCert(ca, runner_req));
  RETURN_IF_ERROR(WritePrivateFile(paths.ca_cert, ca.cert_pem));
  RETURN_IF_ERROR(WritePrivateFile(paths.ca_key, ca.key_pem));
  RETURN_IF_ERROR(WritePrivateFile(paths.agent_cert, agent.cert_pem));
  RETURN_IF_ERROR(WritePrivateFile(paths.agent_key, agent.key_pem));
  RETURN_IF_ERROR(WritePrivateFile(paths.runner_cert, runner.cert_pem));
  RETURN_IF_ERROR(WritePrivateFile(paths.runner_key, runner.key_pem));
  return paths;
}

}  // namespace chaosdrill::agent
