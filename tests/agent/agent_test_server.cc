// The agent under test, and a lease-holding client, as one helper binary:
//   agent_test_server agent serve --config FILE [--ready-fd N]
//       ServeAgent() exactly as `chaosdrill agent serve`, with "test.pause" registered too.
//   agent_test_server client --socket PATH --ttl-ms T [--kind K] [--pid P] [--param k=v]...
//       injects test.pause on P (or kind K with the params) through AgentClient
//       (KeepAlive running), prints
//       "fault ID" and then waits to be killed or stopped (the lease tests do both).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "injector/agent/agent_client.h"
#include "injector/agent/agent_config.h"
#include "injector/agent/agent_main.h"
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

}  // namespace

int main(int argc, char** argv) {
  chaosdrill::injector::RegisterBuiltinFaults();
  chaosdrill::testing::RegisterTestPauseFault();
  if (argc >= 3 && std::strcmp(argv[1], "agent") == 0 && std::strcmp(argv[2], "serve") == 0) {
    return Serve(argc, argv);
  }
  if (argc >= 2 && std::strcmp(argv[1], "client") == 0) return Client(argc, argv);
  std::fprintf(stderr, "usage: agent_test_server agent serve --config F | client ...\n");
  return 2;
}
