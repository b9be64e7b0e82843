// agent_rpc: what the agent itself costs. Starts an agent child exactly as the runner does
// (LocalAgent), listening on loopback TCP with mutual TLS (PKI made in-process), and
// measures:
//   - Inject+Revert round trips over mTLS (p50, p99, max), with a no-op fault kind
//     ("bench.noop") so the numbers are the agent's overhead: RPC, TLS, allowlist, lease
//     table, and the journal (one fdatasync per pair: the "apply" line; the unchanged
//     "update" is skipped, "reverted" rides on the next fsync) — not a kernel fault;
//   - the agent's idle RSS and CPU (5 s with one client holding a KeepAlive stream), RSS
//     split into anonymous and file-backed pages and, from smaps_rollup, how much of it is
//     shared with other processes;
//   - the load average before and after (other work on the same cores skews the tails).
// Goals (issue 4): p50 <= 1 ms, idle RSS <= 15 MiB.
//
//   agent_rpc [--iterations N] [--journal-dir DIR]
//   (agent_rpc agent serve --config F --ready-fd N is the agent child)
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "injector/agent/agent_client.h"
#include "injector/agent/agent_config.h"
#include "injector/agent/agent_main.h"
#include "injector/agent/local_agent.h"
#include "injector/agent/pki.h"
#include "injector/fault_registry.h"

namespace {

using chaosdrill::FaultKindInfo;
using chaosdrill::FaultSpec;
namespace injector = chaosdrill::injector;
namespace agent = chaosdrill::agent;

class NoopFault : public injector::Fault {
 public:
  absl::Status Inject() override { return absl::OkStatus(); }
  absl::Status Revert() override { return absl::OkStatus(); }
  nlohmann::json RevertRecord() const override { return nlohmann::json::object(); }
  std::string Describe() const override { return "bench.noop"; }
};

class NoopFactory : public injector::FaultFactory {
 public:
  const FaultKindInfo& info() const override {
    static const FaultKindInfo info{.kind = "bench.noop", .summary = "does nothing"};
    return info;
  }
  injector::PreflightResult Preflight() const override { return {.available = true}; }
  absl::StatusOr<injector::FaultPtr> Create(const FaultSpec&) const override {
    return injector::FaultPtr(new NoopFault());
  }
  absl::Status RevertFromRecord(const nlohmann::json&) const override { return absl::OkStatus(); }
};

const char* Flag(int argc, char** argv, const char* name) {
  for (int i = 0; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return nullptr;
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

long StatusKb(pid_t pid, const char* key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
  }
  return -1;
}

double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; i <= 15; ++i) {
    rest >> field;
    if (i == 14) utime = std::stoul(field);
    if (i == 15) stime = std::stoul(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// A "Key:  N kB" line of /proc/PID/smaps_rollup, in kB (-1 when absent).
long RollupKb(pid_t pid, const char* key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/smaps_rollup"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
  }
  return -1;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

int Bench(int argc, char** argv) {
  int iterations =
      Flag(argc, argv, "--iterations") ? std::atoi(Flag(argc, argv, "--iterations")) : 2000;
  char tmpl[] = "/tmp/agent-rpc-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 4;
  std::string dir = tmpl;
  std::string journal_dir =
      Flag(argc, argv, "--journal-dir") ? Flag(argc, argv, "--journal-dir") : dir;
  auto pki = agent::InitPki({.out_dir = dir + "/pki"});
  if (!pki.ok()) {
    std::fprintf(stderr, "%s\n", pki.status().ToString().c_str());
    return 4;
  }
  agent::LocalAgentOptions opts;
  opts.command = {SelfExe(), "agent", "serve"};
  opts.extra_config = "allowlist:\n  kinds: [\"bench.*\"]\n";
  opts.journal = journal_dir + "/agent-rpc.journal";
  opts.tcp_listen = "127.0.0.1:0";
  opts.tls_ca = pki->ca_cert;
  opts.tls_cert = pki->agent_cert;
  opts.tls_key = pki->agent_key;
  auto local = agent::LocalAgent::Start(opts);
  if (!local.ok()) {
    std::fprintf(stderr, "%s\n", local.status().ToString().c_str());
    return 4;
  }
  auto client =
      agent::AgentClient::Connect({.tcp_target = absl::StrCat("127.0.0.1:", (*local)->tcp_port()),
                                   .ca_file = pki->ca_cert,
                                   .cert_file = pki->runner_cert,
                                   .key_file = pki->runner_key});
  if (!client.ok()) return 4;
  FaultSpec spec{.kind = "bench.noop"};
  std::string load_before = LoadAverage();
  std::vector<double> rtt_ms;
  for (int i = 0; i < iterations + 50; ++i) {
    absl::Time start = absl::Now();
    auto r = (*client)->Inject(spec, {.lease_ttl = absl::Seconds(10)});
    if (!r.ok() || !(*client)->Revert(r->fault_id()).ok()) {
      std::fprintf(stderr, "round trip failed: %s\n", r.status().ToString().c_str());
      return 4;
    }
    if (i >= 50) rtt_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));  // warm-up
  }
  pid_t pid = (*local)->pid();
  absl::SleepFor(absl::Seconds(1));
  double cpu0 = CpuSeconds(pid);
  absl::SleepFor(absl::Seconds(5));
  double cpu1 = CpuSeconds(pid);
  long rss_kb = StatusKb(pid, "VmRSS:");
  long hwm_kb = StatusKb(pid, "VmHWM:");
  long anon_kb = StatusKb(pid, "RssAnon:");
  long file_kb = StatusKb(pid, "RssFile:");
  long shmem_kb = StatusKb(pid, "RssShmem:");
  long pss_kb = RollupKb(pid, "Pss:");
  long shared_kb = RollupKb(pid, "Shared_Clean:") + RollupKb(pid, "Shared_Dirty:");
  long private_kb = RollupKb(pid, "Private_Clean:") + RollupKb(pid, "Private_Dirty:");
  std::printf("agent_rpc: %d Inject+Revert round trips over mTLS on loopback (bench.noop)\n",
              iterations);
  std::printf("  round trip p50 %.3f ms   p99 %.3f ms   max %.3f ms   (goal p50 <= 1 ms)\n",
              Percentile(rtt_ms, 0.50), Percentile(rtt_ms, 0.99), Percentile(rtt_ms, 1.0));
  auto mib = [](long kb) { return static_cast<double>(kb) / 1024.0; };
  std::printf(
      "  idle agent: RSS %.1f MiB (peak %.1f MiB, goal <= 15 MiB) = RssAnon %.1f MiB + "
      "RssFile %.1f MiB + RssShmem %.1f MiB\n"
      "              of which private %.1f MiB, shared with other processes %.1f MiB; "
      "PSS %.1f MiB\n"
      "              CPU %.2f%% of one core over 5 s with a KeepAlive stream open\n",
      mib(rss_kb), mib(hwm_kb), mib(anon_kb), mib(file_kb), mib(shmem_kb), mib(private_kb),
      mib(shared_kb), mib(pss_kb), (cpu1 - cpu0) / 5.0 * 100.0);
  std::printf("  load average (1/5/15 min): before %s, after %s\n", load_before.c_str(),
              LoadAverage().c_str());
  std::printf("  journal: %s\n", opts.journal.c_str());
  client->reset();
  (void)(*local)->Stop();
  local->reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  injector::RegisterBuiltinFaults();
  injector::FaultRegistry::Global().Add(std::make_unique<NoopFactory>());
  if (argc >= 3 && std::strcmp(argv[1], "agent") == 0 && std::strcmp(argv[2], "serve") == 0) {
    auto config = agent::LoadAgentConfig(Flag(argc, argv, "--config"));
    if (!config.ok()) return 2;
    const char* ready = Flag(argc, argv, "--ready-fd");
    absl::Status st = agent::ServeAgent(*config, injector::FaultRegistry::Global(),
                                        {.ready_fd = ready ? std::atoi(ready) : -1});
    return st.ok() ? 0 : 4;
  }
  return Bench(argc, argv);
}
