// In-process PKI for the agent's mutual TLS (DESIGN §5): a CA, an agent server
// certificate and a runner client certificate, made with the OpenSSL 3 API (EC P-256
// keys, X.509 v3 with basicConstraints, keyUsage, extendedKeyUsage and SANs). No shelling
// out to `openssl`. Tests use the same code for certificates the agent must refuse
// (expired, issued by another CA).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace chaosdrill::agent {

// A PEM certificate with its PEM (PKCS#8) private key.
struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;
};

enum class CertRole { kCa, kServer, kClient };

struct CertRequest {
  std::string common_name;
  CertRole role = CertRole::kClient;
  // DNS names and IP addresses ("localhost", "127.0.0.1", "::1"); IPs are detected.
  std::vector<std::string> sans;
  absl::Time not_before = absl::Now() - absl::Minutes(5);
  absl::Time not_after = absl::Now() + absl::Hours(24 * 365);
};

// A fresh self-signed CA (basicConstraints CA:TRUE, keyUsage keyCertSign|cRLSign).
absl::StatusOr<CertAndKey> CreateCa(const std::string& common_name, absl::Time not_after);

// A leaf certificate signed by `ca`: serverAuth or clientAuth extendedKeyUsage,
// digitalSignature keyUsage, CA:FALSE, the SANs given.
absl::StatusOr<CertAndKey> IssueCert(const CertAndKey& ca, const CertRequest& request);

// Paths `init-pki` writes under its output directory.
struct PkiPaths {
  std::string ca_cert, ca_key, agent_cert, agent_key, runner_cert, runner_key;
  static PkiPaths In(const std::string& dir);
};

struct InitPkiOptions {
  std::string out_dir;
  std::vector<std::string> agent_sans = {"localhost", "127.0.0.1"};
  int days = 365;
  bool overwrite = false;  // refuse to replace an existing CA key unless set
};

// Creates out_dir (0700) and writes ca.crt/ca.key, agent.crt/agent.key,
// runner.crt/runner.key, every file mode 0600. AlreadyExists when ca.key exists and
// !overwrite.
absl::StatusOr<PkiPaths> InitPki(const InitPkiOptions& options);

// Writes `content` to `path` with mode 0600 (created fresh; replaced atomically).
absl::Status WritePrivateFile(const std::string& path, const std::string& content);

// Reads a whole file (for PEM files named in configs); NotFound/PermissionDenied name it.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace chaosdrill::agent
