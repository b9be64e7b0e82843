// The agent under test, and a lease-holding client, as one helper binary:
//   agent_test_server agent serve [--tls-allowed-subject S]... --config FILE [--ready-fd N]
//       ServeAgent() exactly as `chaosdrill agent serve`, with "test.pause" and
//       "testslow.inject" registered too; each --tls-allowed-subject is added to the
//       config's tls.allowed_subjects (LocalAgent writes the config's tls: section itself).
//   agent_test_server client --socket PATH --ttl-ms T [--kind K] [--pid P] [--param k=v]...
//       injects test.pause on P (or kind K with the params) through AgentClient
//       (KeepAlive running), prints
//       "fault ID" and then waits to be killed or stopped (the lease tests do both).
//   agent_test_server local-parent --journal FILE --pid P
//       the runner's side: starts a LocalAgent (this binary's serve mode) with that journal,
//       injects test.pause on P through it (lease 60 s, renewed), prints
//       "agent AGENT_PID fault ID" and waits to be killed: the agent must then revert and
//       exit on its own (PR_SET_PDEATHSIG), well before the lease would run out.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "injector/agent/agent_client.h"
#include "injector/agent/agent_config.h"
#include "injector/agent/agent_main.h"
#include "injector/agent/local_agent.h"
#include "injector/fault_registry.h"
#include "tests/agent/test_pause_fault.h"

namespace {

const char* Flag(int argc, char** argv, const char* name) {
  for (int i = 0; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return nullptr;
}

int Serve(int argc, char** argv) {
  const char* config_path = Flag(argc, argv, "--config");
  const char* ready = Flag(argc, argv, "--ready-fd");
  if (config_path == nullptr) return 2;
  auto config = chaosdrill::agent::LoadAgentConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 2;
  }
  for (int i = 0; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--tls-allowed-subject") == 0) {
      config->tls.allowed_subjects.push_back(argv[i + 1]);
    }
  }
  absl::Status st =
      chaosdrill::agent::ServeAgent(*config, chaosdrill::injector::FaultRegistry::Global(),
                                    {.ready_fd = ready ? std::atoi(ready) : -1});
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 4;
  }
  return 0;
}

int Client(int argc, char** argv) {
  const char* socket = Flag(argc, argv, "--socket");
  const char* ttl = Flag(argc, argv, "--ttl-ms");
  const char* kind = Flag(argc, argv, "--kind");
  if (socket == nullptr || ttl == nullptr) return 2;
  chaosdrill::FaultSpec spec{.kind = kind ? kind : "test.pause"};
  for (int i = 0; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--pid") == 0) spec.params["pid"] = argv[i + 1];
    if (std::strcmp(argv[i], "--param") == 0) {
      std::string kv = argv[i + 1];
      size_t eq = kv.find('=');
      if (eq != std::string::npos) spec.params[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  auto client = chaosdrill::agent::AgentClient::Connect({.unix_path = socket});
  if (!client.ok()) return 3;
  auto r = (*client)->Inject(spec, {.lease_ttl = absl::Milliseconds(std::atoi(ttl))});
  if (!r.ok()) {
    std::printf("error %s\n", r.status().ToString().c_str());
    std::fflush(stdout);
    return 4;
  }
  std::printf("fault %s\n", r->fault_id().c_str());
  std::fflush(stdout);
  for (;;) ::pause();
}

int LocalParent(int argc, char** argv) {
  const char* journal = Flag(argc, argv, "--journal");
  const char* pid = Flag(argc, argv, "--pid");
  if (journal == nullptr || pid == nullptr) return 2;
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return 2;
  self[n] = '\0';
  chaosdrill::agent::LocalAgentOptions options;
  options.command = {self, "agent", "serve"};
  options.journal = journal;
  options.extra_config =
      "lease_ttl: 10s\nallowlist:\n  kinds: [\"test.*\"]\n  processes: [\"sleep\"]\n";
  auto agent = chaosdrill::agent::LocalAgent::Start(options);
  if (!agent.ok()) {
    std::printf("error %s\n", agent.status().ToString().c_str());
    std::fflush(stdout);
    return 3;
  }
  auto client = (*agent)->Connect();
  if (!client.ok()) return 3;
  chaosdrill::FaultSpec spec{.kind = "test.pause", .params = {{"pid", pid}}};
  auto r = (*client)->Inject(spec, {.lease_ttl = absl::Seconds(60)});
  if (!r.ok()) {
    std::printf("error %s\n", r.status().ToString().c_str());
    std::fflush(stdout);
    return 4;
  }
  std::printf("agent %d fault %s\n", static_cast<int>((*agent)->pid()), r->fault_id().c_str());
  std::fflush(stdout);
  for (;;) ::pause();
}

}  // namespace

int main(int argc, char** argv) {
  chaosdrill::injector::RegisterBuiltinFaults();
  chaosdrill::testing::RegisterTestPauseFault();
  if (argc >= 3 && std::strcmp(argv[1], "agent") == 0 && std::strcmp(argv[2], "serve") == 0) {
    return Serve(argc, argv);
  }
  if (argc >= 2 && std::strcmp(argv[1], "client") == 0) return Client(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "local-parent") == 0) return LocalParent(argc, argv);
  std::fprintf(stderr, "usage: agent_test_server agent serve --config F | client ...\n");
  return 2;
}
