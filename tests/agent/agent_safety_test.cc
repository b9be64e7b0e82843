// More of the agent's safety rules (DESIGN §5) against the agent running as a child: every
// allowlist refusal through the real API and audit log, unix peers of another uid, allowed
// client subjects, lease ownership and the TTL cap, the reaper not waiting on a long fault
// operation, the runner's local agent outliving its parent, and a crash with real kernel
// faults in a test network namespace.
#include <fcntl.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "chaosdrill/agent/v1/agent.grpc.pb.h"
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

absl::Duration AwaitState(pid_t pid, bool stopped, absl::Duration limit) {
  absl::Time start = absl::Now();
  while (absl::Now() - start < limit) {
    char s = ProcessState(pid);
    if ((s == 'T') == stopped) return absl::Now() - start;
    absl::SleepFor(absl::Milliseconds(5));  // polling /proc: there is no event to await
  }
  return absl::InfiniteDuration();
}

std::string Rule(const absl::Status& st) {
  // "agent Inject KIND: RULE: message" -> RULE
  std::string m(st.message());
  size_t colon = m.find(": ");
  if (colon == std::string::npos) return m;
  std::string rest = m.substr(colon + 2);
  return rest.substr(0, rest.find(':'));
}

TEST_CASE(
    "refusals: cgroups, gpu_devices, max_cpu_cores, max_memory_fraction, max_gpu_fraction "
    "and process patterns are PermissionDenied naming the rule, and audited",
    "[agent]") {
  AgentHarness h;
  h.Start(false,
          "allowlist:\n"
          "  kinds: [\"test.*\", \"stress.*\", \"gpu.*\", \"process.*\", \"network.*\"]\n"
          "  processes: [\"redis-server\"]\n"
          "  cgroups: [\"/chaos/*\"]\n"
          "  interfaces: [\"veth*\"]\n"
          "  gpu_devices: [1]\n"
          "  max_cpu_cores: 2\n"
          "  max_memory_fraction: 0.5\n"
          "  max_gpu_fraction: 0.5\n");
  auto sleeper = StartSleeper();
  auto client = h.UnixClient();
  struct Case {
    FaultSpec spec;
    const char* rule;
    const char* detail;
  };
  const Case cases[] = {
      {{.kind = "stress.cpu", .params = {{"cgroup", "/sys/fs/cgroup/system.slice"}}},
       "allowlist.cgroups",
       "cgroup /system.slice"},
      {{.kind = "gpu.compute_burn", .params = {{"sm_fraction", "0.1"}}},
       "allowlist.gpu_devices",
       "GPU device 0 (the default)"},
      {{.kind = "gpu.memory_pressure", .params = {{"device", "3"}, {"fraction", "0.1"}}},
       "allowlist.gpu_devices",
       "GPU device 3"},
      {{.kind = "stress.cpu", .params = {{"cores", "3"}}}, "allowlist.max_cpu_cores", "3 cores"},
      {{.kind = "stress.memory", .params = {{"size", "90%"}}},
       "allowlist.max_memory_fraction",
       "size=90%"},
      {{.kind = "gpu.memory_pressure", .params = {{"device", "1"}, {"fraction", "0.9"}}},
       "allowlist.max_gpu_fraction",
       "fraction=0.9"},
      {{.kind = "gpu.compute_burn", .params = {{"device", "1"}}},
       "allowlist.max_gpu_fraction",
       "sm_fraction=1"},  // the kind's default
      {{.kind = "process.pause", .params = {{"cmdline", "sleep"}}},
       "allowlist.processes",
       "cmdline=\"sleep\""},
      {Pause(sleeper->pid()), "allowlist.processes", "matches no allowed pattern"},
      {{.kind = "network.partition", .params = {{"ports", "9"}}},
       "allowlist.interfaces",
       "without an interface"},
  };
  for (const Case& c : cases) {
    auto r = client->Inject(c.spec, {.keep_alive = false});
    INFO(c.spec.kind << " -> " << r.status().ToString());
    CHECK(r.status().code() == absl::StatusCode::kPermissionDenied);
    CHECK(Rule(r.status()) == c.rule);
    CHECK_THAT(std::string(r.status().message()), Catch::Contains(c.detail));
    CHECK(h.AuditLines({"\"rpc\":\"Inject\"", c.spec.kind, "PERMISSION_DENIED", c.rule}).size() >=
          1);
  }
  // A GPU size in bytes: this node cannot say the device's memory (no driver, or a device
  // that does not answer), so the share is unknown and bytes are refused.
  auto bytes =
      client->Inject({.kind = "gpu.memory_pressure", .params = {{"device", "1"}, {"size", "1GiB"}}},
                     {.keep_alive = false});
  INFO(bytes.status().ToString());
  if (bytes.status().code() == absl::StatusCode::kPermissionDenied) {
    CHECK(Rule(bytes.status()) == "allowlist.max_gpu_fraction");
  } else {
    // A real device 1 with a known size: 1 GiB is under half of it, so the policy passes and
    // the fault kind itself answers (it may fail, but not with the policy's refusal).
    CHECK_THAT(std::string(bytes.status().message()),
               !Catch::Contains("allowlist.max_gpu_fraction"));
  }
  CHECK(ProcessState(sleeper->pid()) != 'T');
  auto list = client->List();
  REQUIRE(list.ok());
  for (const auto& f : list->faults()) CHECK(f.state() != agent::v1::FAULT_STATE_ACTIVE);
}

// In a forked child (async-signal-safe calls only): become uid/gid 65534, connect to the
// agent's socket, send an HTTP/2 preface and see what comes back. Exit codes: 10 connect
// refused by the kernel, 0 the agent closed the connection, 20 gRPC answered.
int ProbeAsNobody(const std::string& socket_path) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(2);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) _exit(10);
    static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    (void)!send(fd, kPreface, sizeof(kPreface) - 1, MSG_NOSIGNAL);
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10'000) <= 0) _exit(30);
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    _exit(n > 0 ? 20 : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_CASE(
    "unix peers: another uid cannot connect to the 0600 socket, and when it can reach it the "
    "agent refuses it by SO_PEERCRED (safety.peer_uid, audited)",
    "[agent][root]") {
  if (SkipUnless(IsRoot(), "needs root to drop to uid 65534 in a child")) return;
  AgentHarness h;
  h.Start();
  const std::string& path = h.agent->socket_path();
  CHECK(ProbeAsNobody(path) == 10);  // the kernel: no write permission on the socket
  // Open the file permissions up, as a careless admin might: the peer check still holds.
  REQUIRE(chmod(h.agent->dir().c_str(), 0711) == 0);
  REQUIRE(chmod(path.c_str(), 0666) == 0);
  CHECK(ProbeAsNobody(path) == 0);  // accepted by the kernel, closed by the agent
  auto refused =
      h.AuditLines({"\"rpc\":\"connect\"", "uid:65534", "safety.peer_uid", "PERMISSION_DENIED"});
  CHECK(refused.size() == 1);
  // The same probe as root gets an HTTP/2 answer: the probe tells the two apart.
  pid_t pid = fork();
  if (pid == 0) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path.c_str(), path.size());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) _exit(10);
    static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    (void)!send(fd, kPreface, sizeof(kPreface) - 1, MSG_NOSIGNAL);
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10'000) <= 0) _exit(30);
    char buf[64];
    _exit(read(fd, buf, sizeof(buf)) > 0 ? 20 : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WEXITSTATUS(status) == 20);
  // A uid listed in unix_allowed_uids gets a 0666 socket (0600 would keep it out) and is
  // served.
  AgentHarness allowed;
  allowed.Start(false, absl::StrCat(kTestAllowlist, "unix_allowed_uids: [65534]\n"));
  struct stat st {};
  REQUIRE(stat(allowed.agent->socket_path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0666);
  REQUIRE(chmod(allowed.agent->dir().c_str(), 0711) == 0);  // LocalAgent's mkdtemp dir
  CHECK(ProbeAsNobody(allowed.agent->socket_path()) == 20);
  CHECK(allowed.AuditLines({"uid:65534", "safety.peer_uid"}).empty());
  // A client pointed at a socket that is not there is told so.
  auto gone = AgentClient::Connect({.unix_path = h.dir.path() + "/nothing.sock"});
  REQUIRE(gone.ok());
  (*gone)->set_rpc_timeout(absl::Seconds(5));
  auto list = (*gone)->List();
  CHECK(list.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(list.status().message()), Catch::Contains("is the agent running?"));
}

// A second client certificate from the agent's own CA, for another principal.
std::pair<std::string, std::string> OtherClientCert(const AgentHarness& h, const std::string& cn) {
  auto ca_cert = agent::ReadWholeFile(h.pki.ca_cert);
  auto ca_key = agent::ReadWholeFile(h.pki.ca_key);
  REQUIRE((ca_cert.ok() && ca_key.ok()));
  auto other = agent::IssueCert({*ca_cert, *ca_key}, {.common_name = cn});
  REQUIRE(other.ok());
  std::string crt = h.dir.path() + "/" + cn + ".crt";
  std::string key = h.dir.path() + "/" + cn + ".key";
  REQUIRE(agent::WritePrivateFile(crt, other->cert_pem).ok());
  REQUIRE(agent::WritePrivateFile(key, other->key_pem).ok());
  return {crt, key};
}

TEST_CASE(
    "tls.allowed_subjects: a certificate from the CA with another subject is refused "
    "and audited",
    "[agent]") {
  AgentHarness h;
  h.serve_flags = {"--tls-allowed-subject", "CN=chaosdrill-runner"};
  h.Start(/*tcp=*/true);
  auto ok = h.TcpClient(h.pki.runner_cert, h.pki.runner_key)->Capabilities();
  INFO(ok.status().ToString());
  CHECK(ok.ok());
  auto [crt, key] = OtherClientCert(h, "intruder");
  auto refused = h.TcpClient(crt, key)->Capabilities();
  INFO(refused.status().ToString());
  CHECK(refused.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(Rule(refused.status()) == "tls.allowed_subjects");
  CHECK(h.AuditLines({"\"rpc\":\"Capabilities\"", "PERMISSION_DENIED", "tls.allowed_subjects",
                      "CN=intruder"})
            .size() == 1);
}

TEST_CASE(
    "leases: a client renews and reverts only its own faults, and Halt and Resume are "
    "accepted only from the local socket",
    "[agent]") {
  AgentHarness h;
  h.Start(/*tcp=*/true, absl::StrCat(kTestAllowlist, "max_lease_ttl: 60s\n"));
  auto sleeper = StartSleeper();
  auto owner = h.TcpClient(h.pki.runner_cert, h.pki.runner_key);
  auto r = owner->Inject(Pause(sleeper->pid()), {.lease_ttl = absl::Seconds(3)});
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  auto [crt, key] = OtherClientCert(h, "other-runner");
  auto other = h.TcpClient(crt, key);
  // Revert someone else's fault: refused, the fault stays.
  auto stolen = other->Revert(r->fault_id());
  INFO(stolen.status().ToString());
  CHECK(stolen.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(Rule(stolen.status()) == "leases.owner");
  CHECK(ProcessState(sleeper->pid()) == 'T');
  // The local socket's root is another principal too.
  CHECK(Rule(h.UnixClient()->Revert(r->fault_id()).status()) == "leases.owner");
  // Renew someone else's session (its id is in List): nothing renewed.
  auto list = other->List();
  REQUIRE(list.ok());
  REQUIRE(list->faults_size() == 1);
  std::string session = list->faults(0).session_id();
  {
    grpc::SslCredentialsOptions opts;
    opts.pem_root_certs = *agent::ReadWholeFile(h.pki.ca_cert);
    opts.pem_cert_chain = *agent::ReadWholeFile(crt);
    opts.pem_private_key = *agent::ReadWholeFile(key);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", h.agent->tcp_port()),
                                       grpc::SslCredentials(opts));
    auto stub = agent::v1::Agent::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = stub->KeepAlive(&ctx);
    agent::v1::KeepAliveRequest req;
    req.set_session_id(session);
    agent::v1::KeepAliveResponse resp;
    REQUIRE(stream->Write(req));
    REQUIRE(stream->Read(&resp));
    CHECK(resp.active_fault_ids_size() == 0);
    stream->WritesDone();
    (void)stream->Finish();
  }
  // Halt and Resume over TCP: refused, named.
  auto halt = owner->Halt("from tcp");
  CHECK(halt.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(Rule(halt.status()) == "admin.local_socket");
  CHECK(Rule(owner->Resume()) == "admin.local_socket");
  CHECK(ProcessState(sleeper->pid()) == 'T');
  // The owner reverts it.
  REQUIRE(owner->Revert(r->fault_id()).ok());
  CHECK(ProcessState(sleeper->pid()) != 'T');
  // Halt from the local socket reverts every client's faults.
  auto again = owner->Inject(Pause(sleeper->pid()), {.lease_ttl = absl::Seconds(3)});
  REQUIRE(again.ok());
  auto halted = h.UnixClient()->Halt("operator");
  REQUIRE(halted.ok());
  CHECK(*halted == 1);
  CHECK(ProcessState(sleeper->pid()) != 'T');
  REQUIRE(h.UnixClient()->Resume().ok());
  CHECK(h.AuditLines({"\"rpc\":\"Revert\"", "CN=other-runner", "leases.owner"}).size() == 1);
  CHECK(h.AuditLines({"\"rpc\":\"Halt\"", "admin.local_socket"}).size() == 1);
}

TEST_CASE("leases: a requested TTL is capped to max_lease_ttl", "[agent]") {
  AgentHarness h;
  h.Start(false,
          "lease_ttl: 1s\nmax_lease_ttl: 1500ms\n"
          "allowlist:\n  kinds: [\"test.*\"]\n  processes: [\"sleep\"]\n");
  auto sleeper = StartSleeper();
  auto client = h.UnixClient();
  auto r =
      client->Inject(Pause(sleeper->pid()), {.lease_ttl = absl::Hours(1), .keep_alive = false});
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  auto list = client->List();
  REQUIRE(list.ok());
  REQUIRE(list->faults_size() == 1);
  CHECK(list->faults(0).lease_ttl_ms() == 1500);
  absl::Duration took = AwaitState(sleeper->pid(), false, absl::Seconds(10));
  INFO("reverted after " << absl::FormatDuration(took) << " (asked for 1 h, capped to 1.5 s)");
  CHECK(took <= absl::Milliseconds(1500 + 1000));
  CHECK(h.AuditLines({"\"rpc\":\"Inject\"", "\"lease_ttl_granted_ms\":1500"}).size() == 1);
  // A default above the cap is a config error.
  auto bad = agent::ParseAgentConfig(
      "listen: {unix: /tmp/x.sock}\nlease_ttl: 2m\nmax_lease_ttl: 1m\n", "agent.yaml");
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("agent.yaml:2: lease_ttl"));
}

TEST_CASE(
    "leases: a lapsed lease is reverted within TTL + 1 s while another kind's injection "
    "takes 4 s, and List answers meanwhile",
    "[agent]") {
  AgentHarness h;
  h.Start();
  auto sleeper = StartSleeper();
  auto client = h.UnixClient();
  auto r = client->Inject(Pause(sleeper->pid()),
                          {.lease_ttl = absl::Milliseconds(800), .keep_alive = false});
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  absl::Time start = absl::Now();
  std::thread slow([&h] {
    auto c = h.UnixClient();
    auto s =
        c->Inject({.kind = "testslow.inject", .params = {{"ms", "4000"}}}, {.keep_alive = false});
    CHECK(s.ok());
  });
  absl::SleepFor(absl::Milliseconds(100));  // let the slow injection start (it logs)
  absl::Time list_start = absl::Now();
  auto list = h.UnixClient()->List();
  absl::Duration list_took = absl::Now() - list_start;
  CHECK(list.ok());
  (void)AwaitState(sleeper->pid(), false, absl::Seconds(10));
  absl::Duration took = absl::Now() - start;  // since the fault was applied (upper bound)
  slow.join();
  INFO("List took " << absl::FormatDuration(list_took) << "; the lapsed 800 ms lease was "
                    << "reverted " << absl::FormatDuration(took) << " after Inject returned; "
                    << "the slow injection ended after "
                    << absl::FormatDuration(absl::Now() - start));
  CHECK(took <= absl::Milliseconds(800 + 1000));  // not after the 4 s injection
  CHECK(list_took < absl::Seconds(3));            // did not wait for it either
}

TEST_CASE(
    "local agent: when the runner process is SIGKILLed, its agent child reverts the faults "
    "and exits (PR_SET_PDEATHSIG), well before their leases run out",
    "[agent]") {
  TempDir dir;
  std::string journal = dir.path() + "/journal";
  auto sleeper = StartSleeper();
  Child parent({BinaryPath("tests/agent/agent_test_server"), "local-parent", "--journal", journal,
                "--pid", std::to_string(sleeper->pid())},
               /*pipe_stdout=*/true);
  std::string line = parent.ReadLine(30'000);
  INFO(line);
  REQUIRE_THAT(line, Catch::StartsWith("agent "));
  pid_t agent_pid = std::atoi(line.c_str() + 6);
  REQUIRE(agent_pid > 0);
  REQUIRE(ProcessState(sleeper->pid()) == 'T');
  REQUIRE(ProcessState(agent_pid) != '?');
  absl::Time killed = absl::Now();
  parent.Kill();  // SIGKILL and reap: no chance to revert anything itself
  absl::Duration reverted = AwaitState(sleeper->pid(), false, absl::Seconds(30));
  absl::Duration exited = absl::InfiniteDuration();
  while (absl::Now() - killed < absl::Seconds(30)) {
    char s = ProcessState(agent_pid);  // '?' gone, 'Z' exited and not yet reaped by init
    if (s == '?' || s == 'Z') {
      exited = absl::Now() - killed;
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));  // no event for another process's exit
  }
  INFO("fault reverted " << absl::FormatDuration(reverted) << ", agent exited "
                         << absl::FormatDuration(exited) << " after the parent's SIGKILL");
  CHECK(reverted < absl::Seconds(30));  // the lease was 60 s: this is the death signal
  CHECK(exited < absl::Seconds(30));
  auto j = injector::RevertJournal::Open(journal);
  REQUIRE(j.ok());
  auto open = (*j)->OpenEntries();
  REQUIRE(open.ok());
  CHECK(open->empty());
}

}  // namespace
}  // namespace chaosdrill::testing

namespace chaosdrill::testing {
namespace {

// A network namespace with a veth pair d0/d1 inside it, deleted (with every qdisc and
// nftables table in it) on scope exit.
class CrashNetns {
 public:
  CrashNetns() : name_(absl::StrCat("cdcrash", getpid())) {
    RunCommand({"/usr/sbin/ip", "netns", "del", name_});
    ok_ = RunCommand({"/usr/sbin/ip", "netns", "add", name_}).exit_code == 0 &&
          RunCommand({"/usr/sbin/ip", "-n", name_, "link", "add", "d0", "type", "veth", "peer",
                      "name", "d1"})
                  .exit_code == 0 &&
          RunCommand({"/usr/sbin/ip", "-n", name_, "link", "set", "d0", "up"}).exit_code == 0 &&
          RunCommand({"/usr/sbin/ip", "-n", name_, "link", "set", "d1", "up"}).exit_code == 0;
  }
  ~CrashNetns() { RunCommand({"/usr/sbin/ip", "netns", "del", name_}); }
  CrashNetns(const CrashNetns&) = delete;
  CrashNetns& operator=(const CrashNetns&) = delete;
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  std::string Qdiscs() const {
    return RunCommand({"/usr/sbin/tc", "-n", name_, "-j", "qdisc", "show", "dev", "d0"}).out;
  }
  CommandResult Ruleset() const {
    return RunCommand(
        {"/usr/sbin/ip", "netns", "exec", name_, "/usr/sbin/nft", "-j", "list", "ruleset"});
  }

 private:
  std::string name_;
  bool ok_ = false;
};

TEST_CASE(
    "crash, kernel witnesses: the agent SIGKILLed with tbf, an nftables partition and a "
    "process.pause active, then the next start leaves tc, nft and /proc at baseline",
    "[agent][root][netns]") {
  if (SkipUnless(IsRoot(), "needs root")) return;
  if (SkipUnless(KernelHasQdisc("tbf"), "kernel lacks sch_tbf")) return;
  CrashNetns ns;
  if (SkipUnless(ns.ok(), "cannot create a network namespace")) return;
  CommandResult nft = ns.Ruleset();
  if (SkipUnless(nft.exit_code == 0, "nft cannot list the ruleset (no nf_tables?)")) return;
  const std::string qdiscs0 = ns.Qdiscs();
  const std::string ruleset0 = nft.out;
  auto sleeper = StartSleeper();
  for (int i = 0; i < 500 && ProcessState(sleeper->pid()) != 'S'; ++i) {
    absl::SleepFor(absl::Milliseconds(2));  // until it sleeps in nanosleep: its baseline
  }
  const char state0 = ProcessState(sleeper->pid());
  REQUIRE(state0 == 'S');
  AgentHarness h;
  h.command_prefix = {"/usr/sbin/ip", "netns", "exec", ns.name()};
  const std::string allowlist =
      "allowlist:\n  kinds: [\"network.*\", \"process.*\"]\n  processes: [\"sleep\"]\n"
      "  interfaces: [\"d0\"]\n";
  h.Start(false, allowlist);
  {
    auto client = h.UnixClient();
    auto tbf = client->Inject(
        {.kind = "network.bandwidth", .params = {{"interface", "d0"}, {"rate", "1mbit"}}});
    INFO(tbf.status().ToString());
    REQUIRE(tbf.ok());
    auto partition = client->Inject(
        {.kind = "network.partition", .params = {{"interface", "d0"}, {"ports", "9"}}});
    INFO(partition.status().ToString());
    REQUIRE(partition.ok());
    auto pause = client->Inject(
        {.kind = "process.pause",
         .params = {{"pid", std::to_string(sleeper->pid())}, {"watchdog", "false"}}});
    INFO(pause.status().ToString());
    REQUIRE(pause.ok());
    client->StopKeepAlive();
  }
  REQUIRE(ns.Qdiscs() != qdiscs0);
  REQUIRE(ns.Ruleset().out != ruleset0);
  REQUIRE(ProcessState(sleeper->pid()) == 'T');
  kill(h.agent->pid(), SIGKILL);
  (void)h.agent->Stop(absl::Seconds(5));
  // Nobody reverted anything yet (the pause's own watchdog is off: the journal must do it).
  CHECK(ns.Qdiscs().find("tbf") != std::string::npos);
  CHECK(ns.Ruleset().out.find("chaosdrill") != std::string::npos);
  const char after_crash = ProcessState(sleeper->pid());
  CHECK(after_crash == 'T');
  h.Start(false, allowlist);  // replays the journal before serving
  std::string qdiscs1 = ns.Qdiscs();
  std::string ruleset1 = ns.Ruleset().out;
  INFO("tc before: " << qdiscs0 << "\ntc after: " << qdiscs1 << "\nnft before: " << ruleset0
                     << "\nnft after: " << ruleset1
                     << "\nsleeper after the crash: " << after_crash);
  CHECK(qdiscs1 == qdiscs0);
  CHECK(ruleset1 == ruleset0);
  CHECK(ProcessState(sleeper->pid()) == state0);
  auto j = injector::RevertJournal::Open(h.journal);
  REQUIRE(j.ok());
  CHECK((*j)->OpenEntries()->empty());
}

}  // namespace
}  // namespace chaosdrill::testing
