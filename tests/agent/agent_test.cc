// The agent's safety rules (DESIGN §5), each one a test, over real gRPC on a Unix socket
// and on loopback TCP with real mutual TLS, against the agent running as a child process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "injector/agent/agent_config.h"
#include "injector/agent/pki.h"
#include "injector/journal.h"
#include "tests/agent/agent_harness.h"
#include "tests/agent/test_pause_fault.h"

namespace chaosdrill::testing {
namespace {

using agent::AgentClient;

FaultSpec Pause(pid_t pid) {
  return {.kind = "test.pause", .params = {{"pid", std::to_string(pid)}}};
}

// One HTTP/1.0 GET on 127.0.0.1:port; the whole response.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
    (void)!write(fd, req.data(), req.size());
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

// Waits (bounded) until pid's state is or is not 'T'. Returns the time it took.
absl::Duration AwaitState(pid_t pid, bool stopped, absl::Duration limit) {
  absl::Time start = absl::Now();
  while (absl::Now() - start < limit) {
    char s = ProcessState(pid);
    if ((s == 'T') == stopped) return absl::Now() - start;
    absl::SleepFor(absl::Milliseconds(5));  // polling /proc: there is no event to await
  }
  return absl::InfiniteDuration();
}

TEST_CASE("init-pki writes a CA, agent and runner certificates, every file 0600", "[agent]") {
  TempDir dir;
  agent::InitPkiOptions opts{.out_dir = dir.path() + "/pki"};
  auto paths = agent::InitPki(opts);
  REQUIRE(paths.ok());
  for (const std::string& f : {paths->ca_cert, paths->ca_key, paths->agent_cert, paths->agent_key,
                               paths->runner_cert, paths->runner_key}) {
    struct stat st {};
    REQUIRE(stat(f.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  // A second run must not replace the CA silently.
  auto again = agent::InitPki(opts);
  CHECK(again.status().code() == absl::StatusCode::kAlreadyExists);
}

TEST_CASE("agent config errors name the file, the line and the field", "[agent]") {
  struct Case {
    const char* yaml;
    const char* expect;
  };
  const Case cases[] = {
      {"listen: {unix: /tmp/x.sock}\nlease_ttl: soon\n", "agent.yaml:2: lease_ttl:"},
      {"listen: {unix: /tmp/x.sock}\nbogus: 1\n", "agent.yaml:2: bogus: unknown key"},
      {"listen: {tcp: \"0.0.0.0:7443\"}\n", "listen.tcp: a TCP listener needs mutual TLS"},
      {"listen: {unix: /tmp/x.sock}\nallowlist:\n  max_cpu_cores: -2\n",
       "agent.yaml:3: allowlist.max_cpu_cores"},
      {"listen: {unix: /tmp/x.sock}\nallowlist:\n  protected_targets: [init]\n",
       "allowlist.protected_targets: unknown target"},
      {"journal: /tmp/j\n", "listen: needs tcp"},
  };
  for (const Case& c : cases) {
    auto config = agent::ParseAgentConfig(c.yaml, "agent.yaml");
    INFO(c.yaml);
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(config.status().message()), Catch::Contains(c.expect));
  }
}

TEST_CASE("the unix socket is 0600 in a private directory and serves the API", "[agent]") {
  AgentHarness h;
  h.Start();
  struct stat st {};
  REQUIRE(stat(h.agent->socket_path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat(h.agent->dir().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  auto client = h.UnixClient();
  auto caps = client->Capabilities();
  REQUIRE(caps.ok());
  CHECK_FALSE(caps->hostname().empty());
  CHECK(caps->cores() > 0);
  bool saw_test_kind = false;
  for (const auto& k : caps->kinds()) {
    if (k.kind() == "test.pause") saw_test_kind = k.available() && k.allowed();
  }
  CHECK(saw_test_kind);
  CHECK_THAT(h.AuditText(),
             Catch::Contains("\"rpc\":\"Capabilities\"") && Catch::Contains("\"peer\":\"uid:"));
}

TEST_CASE(
    "mTLS: the runner certificate is accepted, while no certificate, another CA's and an "
    "expired one are refused and audited",
    "[agent]") {
  AgentHarness h;
  h.Start(/*tcp=*/true);
  REQUIRE(h.agent->tcp_port() > 0);
  {
    auto ok = h.TcpClient(h.pki.runner_cert, h.pki.runner_key)->Capabilities();
    INFO(ok.status().ToString());
    CHECK(ok.ok());
  }
  {
    auto none = h.TcpClient("", "")->Capabilities();
    CHECK(none.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK_THAT(std::string(none.status().message()), Catch::Contains("no client certificate"));
  }
  // Same subject, another CA.
  auto other_ca = agent::CreateCa("chaosdrill CA", absl::Now() + absl::Hours(24));
  REQUIRE(other_ca.ok());
  auto forged = agent::IssueCert(*other_ca, {.common_name = "chaosdrill-runner"});
  REQUIRE(forged.ok());
  REQUIRE(agent::WritePrivateFile(h.dir.path() + "/forged.crt", forged->cert_pem).ok());
  REQUIRE(agent::WritePrivateFile(h.dir.path() + "/forged.key", forged->key_pem).ok());
  {
    auto r =
        h.TcpClient(h.dir.path() + "/forged.crt", h.dir.path() + "/forged.key")->Capabilities();
    CHECK(r.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK_THAT(std::string(r.status().message()), Catch::Contains("unable to get local issuer"));
  }
  // Our CA, but expired.
  auto ca_cert = agent::ReadWholeFile(h.pki.ca_cert);
  auto ca_key = agent::ReadWholeFile(h.pki.ca_key);
  REQUIRE((ca_cert.ok() && ca_key.ok()));
  auto expired =
      agent::IssueCert({*ca_cert, *ca_key}, {.common_name = "chaosdrill-runner",
                                             .not_before = absl::Now() - absl::Hours(48),
                                             .not_after = absl::Now() - absl::Hours(24)});
  REQUIRE(expired.ok());
  REQUIRE(agent::WritePrivateFile(h.dir.path() + "/expired.crt", expired->cert_pem).ok());
  REQUIRE(agent::WritePrivateFile(h.dir.path() + "/expired.key", expired->key_pem).ok());
  {
    auto r =
        h.TcpClient(h.dir.path() + "/expired.crt", h.dir.path() + "/expired.key")->Capabilities();
    CHECK(r.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK_THAT(std::string(r.status().message()), Catch::Contains("expired"));
  }
  std::string audit = h.AuditText();
  CHECK_THAT(audit, Catch::Contains("no client certificate"));
  CHECK_THAT(audit, Catch::Contains("unable to get local issuer certificate"));
  CHECK_THAT(audit, Catch::Contains("certificate has expired"));
  CHECK_THAT(audit, Catch::Contains("CN=chaosdrill-runner,O=chaosdrill\",\"request\":{}"));
}

TEST_CASE(
    "injections aimed at PID 1, the agent, its parent, a non-allowlisted kind or "
    "interface, or the control interface are PermissionDenied naming the rule",
    "[agent]") {
  AgentHarness h;
  h.Start(/*tcp=*/true,
          "allowlist:\n  kinds: [\"test.*\", \"network.*\"]\n  processes: [\"*\"]\n"
          "  interfaces: [\"veth*\", \"l*\"]\n");
  auto client = h.UnixClient();
  struct Case {
    FaultSpec spec;
    const char* rule;
  };
  const Case cases[] = {
      {Pause(1), "safety.pid1"},
      {Pause(h.agent->pid()), "safety.agent"},
      {Pause(getpid()), "safety.agent_parent"},
      {{.kind = "process.kill", .params = {{"pid", "12345"}}}, "allowlist.kinds"},
      {{.kind = "network.netem", .params = {{"interface", "eth7"}}}, "allowlist.interfaces"},
      {{.kind = "network.netem", .params = {{"interface", "lo"}}}, "safety.control_interface"},
      {{.kind = "test.pause", .params = {{"pid", "5"}}, .duration = absl::Hours(3)},
       "limits.max_duration"},
  };
  for (const Case& c : cases) {
    auto r = client->Inject(c.spec, {.keep_alive = false});
    INFO(c.rule << ": " << r.status().ToString());
    CHECK(r.status().code() == absl::StatusCode::kPermissionDenied);
    CHECK_THAT(std::string(r.status().message()), Catch::Contains(c.rule));
  }
  CHECK_THAT(h.AuditText(), Catch::Contains("safety.pid1") && Catch::Contains("PERMISSION_DENIED"));
  CHECK(client->List()->faults_size() == 0);
}

TEST_CASE("a fault is reverted on request and its lease runs while KeepAlive renews it",
          "[agent]") {
  AgentHarness h;
  h.Start();
  auto sleeper = StartSleeper();
  auto client = h.UnixClient();
  auto r = client->Inject(Pause(sleeper->pid()), {.lease_ttl = absl::Milliseconds(600)});
  REQUIRE(r.ok());
  CHECK(ProcessState(sleeper->pid()) == 'T');
  CHECK(r->active_unix_ns() > 0);
  // Three TTLs later it is still applied: the KeepAlive stream renews it.
  absl::SleepFor(absl::Milliseconds(1800));
  CHECK(ProcessState(sleeper->pid()) == 'T');
  CHECK(client->renewals() >= 3);
  REQUIRE(client->Revert(r->fault_id()).ok());
  CHECK(ProcessState(sleeper->pid()) != 'T');
  CHECK(client->Revert(r->fault_id()).ok());  // idempotent
  auto list = client->List();
  REQUIRE(list.ok());
  REQUIRE(list->faults_size() == 1);
  CHECK(list->faults(0).state() == agent::v1::FAULT_STATE_REVERTED);
}

TEST_CASE("lease: a client SIGKILLed or SIGSTOPped loses its fault within TTL + 1 s", "[agent]") {
  AgentHarness h;
  h.Start();
  const int ttl_ms = 1000;
  for (int sig : {SIGKILL, SIGSTOP}) {
    DYNAMIC_SECTION("client gets " << strsignal(sig)) {
      auto sleeper = StartSleeper();
      Child client({BinaryPath("tests/agent/agent_test_server"), "client", "--socket",
                    h.agent->socket_path(), "--pid", std::to_string(sleeper->pid()), "--ttl-ms",
                    std::to_string(ttl_ms)},
                   /*pipe_stdout=*/true);
      std::string line = client.ReadLine(20'000);
      REQUIRE_THAT(line, Catch::StartsWith("fault "));
      REQUIRE(ProcessState(sleeper->pid()) == 'T');
      absl::SleepFor(absl::Milliseconds(2 * ttl_ms));  // renewed meanwhile
      REQUIRE(ProcessState(sleeper->pid()) == 'T');
      kill(client.pid(), sig);
      absl::Duration took = AwaitState(sleeper->pid(), false, absl::Seconds(10));
      INFO("reverted after " << absl::FormatDuration(took));
      CHECK(took <= absl::Milliseconds(ttl_ms + 1000));
      // The witness moves when the fault is undone; the agent then verifies, journals and
      // files it as expired: List says so a moment later (bounded poll).
      bool expired = false;
      auto lister = h.UnixClient();
      for (absl::Time end = absl::Now() + absl::Seconds(5); !expired && absl::Now() < end;) {
        auto list = lister->List();
        REQUIRE(list.ok());
        for (const auto& f : list->faults()) {
          if (line == "fault " + f.fault_id()) {
            expired = f.state() == agent::v1::FAULT_STATE_EXPIRED;
          }
        }
        if (!expired) absl::SleepFor(absl::Milliseconds(5));
      }
      CHECK(expired);
    }
  }
}

TEST_CASE("a fault's duration and the agent's hard maximum revert it regardless of leases",
          "[agent]") {
  AgentHarness h;
  h.Start(false, absl::StrCat(kTestAllowlist, "max_duration: 1500ms\n"));
  auto a = StartSleeper();
  auto b = StartSleeper();
  auto client = h.UnixClient();
  FaultSpec with_duration = Pause(a->pid());
  with_duration.duration = absl::Milliseconds(500);
  REQUIRE(client->Inject(with_duration).ok());
  REQUIRE(client->Inject(Pause(b->pid())).ok());  // lease renewed, no duration
  CHECK(AwaitState(a->pid(), false, absl::Seconds(5)) < absl::Seconds(2));
  CHECK(AwaitState(b->pid(), false, absl::Seconds(6)) < absl::Seconds(3));
}

TEST_CASE(
    "crash: the agent SIGKILLed with three faults active, then the next start replays the "
    "journal and the witnesses are back at baseline",
    "[agent]") {
  AgentHarness h;
  h.Start();
  std::vector<std::unique_ptr<Child>> sleepers;
  for (int i = 0; i < 3; ++i) sleepers.push_back(StartSleeper());
  {
    auto client = h.UnixClient();
    for (auto& s : sleepers) REQUIRE(client->Inject(Pause(s->pid())).ok());
    client->StopKeepAlive();
  }
  for (auto& s : sleepers) REQUIRE(ProcessState(s->pid()) == 'T');
  kill(h.agent->pid(), SIGKILL);
  (void)h.agent->Stop(absl::Seconds(5));
  for (auto& s : sleepers) CHECK(ProcessState(s->pid()) == 'T');  // nobody reverted yet
  h.Start();  // replays the journal before serving
  for (auto& s : sleepers) CHECK(ProcessState(s->pid()) != 'T');
  auto journal = injector::RevertJournal::Open(h.journal);
  REQUIRE(journal.ok());
  auto open = (*journal)->OpenEntries();
  REQUIRE(open.ok());
  CHECK(open->empty());
}

TEST_CASE("SIGTERM reverts every fault before the agent exits", "[agent]") {
  AgentHarness h;
  h.Start();
  auto s = StartSleeper();
  REQUIRE(h.UnixClient()->Inject(Pause(s->pid())).ok());
  REQUIRE(ProcessState(s->pid()) == 'T');
  CHECK(h.agent->Stop().ok());
  CHECK(ProcessState(s->pid()) != 'T');
}

TEST_CASE("halt reverts everything and blocks injections until resume", "[agent]") {
  AgentHarness h;
  h.Start();
  auto s = StartSleeper();
  auto client = h.UnixClient();
  REQUIRE(client->Inject(Pause(s->pid())).ok());
  auto halted = client->Halt("test");
  REQUIRE(halted.ok());
  CHECK(*halted == 1);
  CHECK(ProcessState(s->pid()) != 'T');
  auto refused = client->Inject(Pause(s->pid()));
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("halted"));
  CHECK(client->List()->halted());
  REQUIRE(client->Resume().ok());
  auto again = client->Inject(Pause(s->pid()));
  REQUIRE(again.ok());
  CHECK(ProcessState(s->pid()) == 'T');
  REQUIRE(client->Revert(again->fault_id()).ok());
}

TEST_CASE(
    "metrics: Prometheus text on the metrics port counts injections, reverts, failures, "
    "lease expiries and refusals",
    "[agent]") {
  AgentHarness h;
  h.Start(false,
          "lease_ttl: 10s\nmetrics_listen: \"127.0.0.1:0\"\n"
          "allowlist:\n  kinds: [\"test.*\"]\n  processes: [\"*\"]\n");
  REQUIRE(h.agent->metrics_port() > 0);
  auto metrics = [&h] { return HttpGet(h.agent->metrics_port(), "/metrics"); };
  auto s = StartSleeper();
  auto client = h.UnixClient();
  // Reverted on request.
  auto r = client->Inject(Pause(s->pid()));
  REQUIRE(r.ok());
  REQUIRE(client->Revert(r->fault_id()).ok());
  // Failed: the target is gone (a reaped child's pid), nothing applied.
  pid_t gone = 0;
  {
    auto dead = StartSleeper();
    gone = dead->pid();
  }
  auto failed = client->Inject(Pause(gone), {.keep_alive = false});
  INFO(failed.status().ToString());
  CHECK(failed.status().code() == absl::StatusCode::kNotFound);
  // Refused.
  CHECK_FALSE(client->Inject(Pause(1)).ok());
  std::string before = metrics();
  CHECK_THAT(before, Catch::StartsWith("HTTP/1.0 200 OK"));
  CHECK_THAT(before,
             Catch::Contains("chaosdrill_agent_faults_injected_total{kind=\"test.pause\"} 1\n"));
  CHECK_THAT(before,
             Catch::Contains("chaosdrill_agent_faults_reverted_total{kind=\"test.pause\"} 1\n"));
  CHECK_THAT(before,
             Catch::Contains("chaosdrill_agent_faults_failed_total{kind=\"test.pause\"} 1\n"));
  CHECK_THAT(before,
             Catch::Contains("chaosdrill_agent_lease_expiries_total{kind=\"test.pause\"} 0\n"));
  CHECK_THAT(before, Catch::Contains("chaosdrill_agent_faults_active{kind=\"test.pause\"} 0\n"));
  CHECK_THAT(before, Catch::Contains("chaosdrill_agent_refusals_total{rule=\"safety.pid1\"} 1\n"));
  // A lease left to lapse: expiry and revert counters move.
  auto lapsing =
      client->Inject(Pause(s->pid()), {.lease_ttl = absl::Milliseconds(300), .keep_alive = false});
  REQUIRE(lapsing.ok());
  CHECK_THAT(metrics(), Catch::Contains("chaosdrill_agent_faults_active{kind=\"test.pause\"} 1\n"));
  REQUIRE(AwaitState(s->pid(), false, absl::Seconds(10)) < absl::Seconds(10));
  std::string after;
  for (int i = 0; i < 200; ++i) {  // the counter moves right after the revert; bounded poll
    after = metrics();
    if (after.find("lease_expiries_total{kind=\"test.pause\"} 1") != std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  CHECK_THAT(after,
             Catch::Contains("chaosdrill_agent_lease_expiries_total{kind=\"test.pause\"} 1\n"));
  CHECK_THAT(after,
             Catch::Contains("chaosdrill_agent_faults_reverted_total{kind=\"test.pause\"} 2\n"));
  CHECK_THAT(after, Catch::Contains("chaosdrill_agent_faults_active{kind=\"test.pause\"} 0\n"));
  CHECK_THAT(HttpGet(h.agent->metrics_port(), "/debug"), Catch::StartsWith("HTTP/1.0 404"));
}

}  // namespace
}  // namespace chaosdrill::testing

namespace chaosdrill::testing {
namespace {

TEST_CASE(
    "interop: Debian's python3-grpcio calls Capabilities over mTLS, and without a "
    "certificate it is refused",
    "[agent]") {
  const bool have_grpcio =
      RunCommand({"/usr/bin/python3", "-c", "import grpc"}, 30'000).exit_code == 0;
  if (SkipUnless(have_grpcio, "needs /usr/bin/python3 with python3-grpcio")) return;
  AgentHarness h;
  h.Start(/*tcp=*/true);
  std::string target = absl::StrCat("localhost:", h.agent->tcp_port());
  std::string script = SourcePath("tests/agent/interop_capabilities.py");
  CommandResult ok = RunCommand(
      {"/usr/bin/python3", script, target, h.pki.ca_cert, h.pki.runner_cert, h.pki.runner_key});
  INFO(ok.out << ok.err);
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.out, Catch::StartsWith("ok "));
  CommandResult refused = RunCommand({"/usr/bin/python3", script, target, h.pki.ca_cert});
  INFO(refused.out << refused.err);
  CHECK(refused.exit_code == 3);
  CHECK_THAT(refused.out, Catch::Contains("UNAUTHENTICATED"));
}

}  // namespace
}  // namespace chaosdrill::testing

namespace chaosdrill::testing {
namespace {

// A network namespace with a veth pair d0/d1 inside it, deleted (with every qdisc in it)
// on scope exit.
class TestNetns {
 public:
  TestNetns() : name_(absl::StrCat("cdagent", getpid())) {
    RunCommand({"/usr/sbin/ip", "netns", "del", name_});
    ok_ = RunCommand({"/usr/sbin/ip", "netns", "add", name_}).exit_code == 0 &&
          RunCommand({"/usr/sbin/ip", "-n", name_, "link", "add", "d0", "type", "veth", "peer",
                      "name", "d1"})
                  .exit_code == 0 &&
          RunCommand({"/usr/sbin/ip", "-n", name_, "link", "set", "d0", "up"}).exit_code == 0;
  }
  ~TestNetns() { RunCommand({"/usr/sbin/ip", "netns", "del", name_}); }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  bool HasTbf() const {
    return RunCommand({"/usr/sbin/tc", "-n", name_, "qdisc", "show", "dev", "d0"})
               .out.find("tbf") != std::string::npos;
  }

 private:
  std::string name_;
  bool ok_ = false;
};

TEST_CASE(
    "lease, kernel witness: tbf in a test netns is gone within TTL + 1 s after its "
    "client is SIGKILLed or SIGSTOPped (tc)",
    "[agent][root][netns]") {
  if (SkipUnless(IsRoot(), "needs root")) return;
  if (SkipUnless(KernelHasQdisc("tbf"), "kernel lacks sch_tbf")) return;
  TestNetns ns;
  if (SkipUnless(ns.ok(), "cannot create a network namespace")) return;
  AgentHarness h;
  h.command_prefix = {"/usr/sbin/ip", "netns", "exec", ns.name()};
  h.Start();
  const int ttl_ms = 1000;
  for (int sig : {SIGKILL, SIGSTOP}) {
    Child client({BinaryPath("tests/agent/agent_test_server"), "client", "--socket",
                  h.agent->socket_path(), "--ttl-ms", std::to_string(ttl_ms), "--kind",
                  "network.bandwidth", "--param", "interface=d0", "--param", "rate=1mbit"},
                 /*pipe_stdout=*/true);
    std::string line = client.ReadLine(20'000);
    INFO(line);
    REQUIRE_THAT(line, Catch::StartsWith("fault "));
    REQUIRE(ns.HasTbf());
    absl::SleepFor(absl::Milliseconds(2 * ttl_ms));  // renewed meanwhile
    REQUIRE(ns.HasTbf());
    kill(client.pid(), sig);
    absl::Time start = absl::Now();
    while (ns.HasTbf() && absl::Now() - start < absl::Seconds(10)) {
      absl::SleepFor(absl::Milliseconds(20));  // polling tc: there is no event to await
    }
    absl::Duration took = absl::Now() - start;
    INFO(strsignal(sig) << ": tbf gone after " << absl::FormatDuration(took));
    CHECK_FALSE(ns.HasTbf());
    CHECK(took <= absl::Milliseconds(ttl_ms + 1000));
  }
}

}  // namespace
}  // namespace chaosdrill::testing
