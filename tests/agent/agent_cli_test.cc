// `chaosdrill agent halt|resume|list --socket` against a running agent, and
// `chaosdrill agent init-pki` (the SANs given by flags, read back with the OpenSSL API).
#include <arpa/inet.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "injector/agent/pki.h"
#include "tests/agent/agent_harness.h"
#include "tests/agent/test_pause_fault.h"

namespace chaosdrill::testing {
namespace {

CommandResult Cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ChaosdrillBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, 60'000);
}

TEST_CASE("cli: agent list, halt and resume over --socket", "[agent][cli]") {
  AgentHarness h;
  h.Start();
  auto sleeper = StartSleeper();
  auto client = h.UnixClient();
  auto r =
      client->Inject({.kind = "test.pause", .params = {{"pid", std::to_string(sleeper->pid())}}});
  REQUIRE(r.ok());
  const std::string socket = h.agent->socket_path();

  CommandResult list = Cli({"agent", "list", "--socket", socket});
  INFO(list.out << list.err);
  CHECK(list.exit_code == 0);
  CHECK_THAT(list.out, Catch::StartsWith("agent accepting faults"));
  CHECK_THAT(list.out, Catch::Contains(r->fault_id()) && Catch::Contains("active"));

  CommandResult halt = Cli({"agent", "halt", "--socket", socket, "--reason", "cli test"});
  INFO(halt.out << halt.err);
  CHECK(halt.exit_code == 0);
  CHECK_THAT(halt.out, Catch::Contains("halted: 1 fault(s) reverted"));
  CHECK(ProcessState(sleeper->pid()) != 'T');
  CHECK_THAT(h.AuditText(), Catch::Contains("\"reason\":\"cli test\""));

  list = Cli({"agent", "list", "--socket", socket});
  CHECK(list.exit_code == 0);
  CHECK_THAT(list.out, Catch::StartsWith("agent HALTED"));
  CHECK_THAT(list.out, Catch::Contains(r->fault_id()) && Catch::Contains("reverted"));
  auto refused =
      client->Inject({.kind = "test.pause", .params = {{"pid", std::to_string(sleeper->pid())}}});
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);

  CommandResult resume = Cli({"agent", "resume", "--socket", socket});
  INFO(resume.out << resume.err);
  CHECK(resume.exit_code == 0);
  CHECK_THAT(resume.out, Catch::Contains("resumed"));
  list = Cli({"agent", "list", "--socket", socket});
  CHECK_THAT(list.out, Catch::StartsWith("agent accepting faults"));
  auto again =
      client->Inject({.kind = "test.pause", .params = {{"pid", std::to_string(sleeper->pid())}}});
  REQUIRE(again.ok());
  REQUIRE(client->Revert(again->fault_id()).ok());

  // No agent there: a clear error and a non-zero exit, no crash.
  CommandResult none = Cli({"agent", "list", "--socket", h.dir.path() + "/none.sock"});
  INFO(none.out << none.err);
  CHECK(none.exit_code != 0);
  CHECK(none.exit_code != -1);
  CHECK_THAT(none.err,
             Catch::Contains("chaosdrill agent list:") && Catch::Contains("is the agent running?"));
}

// The DNS names and IP addresses in a PEM certificate's subjectAltName.
std::set<std::string> Sans(const std::string& pem_file) {
  std::set<std::string> out;
  auto pem = agent::ReadWholeFile(pem_file);
  REQUIRE(pem.ok());
  BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  REQUIRE(cert != nullptr);
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      const ASN1_IA5STRING* s = n->d.dNSName;
      out.insert("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<size_t>(ASN1_STRING_length(s))));
    } else if (n->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = n->d.iPAddress;
      int len = ASN1_STRING_length(ip);
      char text[INET6_ADDRSTRLEN] = "";
      if ((len == 4 || len == 16) &&
          inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), text, sizeof(text)) !=
              nullptr) {
        out.insert(std::string("IP:") + text);
      }
    }
  }
  GENERAL_NAMES_free(names);
  X509_free(cert);
  return out;
}

TEST_CASE(
    "cli: agent init-pki puts the --agent-san names and addresses in the agent "
    "certificate",
    "[agent][cli]") {
  TempDir dir;
  std::string out = dir.path() + "/pki";
  CommandResult r = Cli({"agent", "init-pki", "--out", out, "--agent-san", "node1.example",
                         "--agent-san", "10.0.0.11", "--agent-san", "fd00::7", "--days", "30"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::set<std::string> sans = Sans(out + "/agent.crt");
  std::string all;
  for (const auto& s : sans) absl::StrAppend(&all, s, " ");
  INFO("agent.crt SANs: " << all);
  CHECK(sans.count("DNS:node1.example") == 1);
  CHECK(sans.count("IP:10.0.0.11") == 1);
  CHECK(sans.count("IP:fd00::7") == 1);
  CHECK(sans.count("DNS:localhost") == 0);  // the flags replace the defaults
  CHECK(Sans(out + "/runner.crt").count("DNS:node1.example") == 0);
  for (const char* f : {"ca.crt", "ca.key", "agent.crt", "agent.key", "runner.crt", "runner.key"}) {
    struct stat st {};
    REQUIRE(stat((out + "/" + f).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  // Without flags: the defaults.
  CommandResult d = Cli({"agent", "init-pki", "--out", dir.path() + "/default"});
  REQUIRE(d.exit_code == 0);
  std::set<std::string> defaults = Sans(dir.path() + "/default/agent.crt");
  CHECK(defaults.count("DNS:localhost") == 1);
  CHECK(defaults.count("IP:127.0.0.1") == 1);
  // A second run into the same directory refuses to replace the CA.
  CommandResult again = Cli({"agent", "init-pki", "--out", out});
  CHECK(again.exit_code != 0);
  CHECK_THAT(again.err, Catch::Contains("chaosdrill agent init-pki:"));
}

}  // namespace
}  // namespace chaosdrill::testing
