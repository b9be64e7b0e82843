// `chaosdrill agent serve|init-pki|halt|resume|list`: the node agent (DESIGN §5) and the
// small admin commands that talk to it. Each is a thin layer over injector/agent/.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "injector/agent/agent_client.h"
#include "injector/agent/agent_config.h"
#include "injector/agent/agent_main.h"
#include "injector/agent/pki.h"
#include "injector/fault_registry.h"

namespace chaosdrill::cli {
namespace {

constexpr char kDefaultSocket[] = "/run/chaosdrill/agent.sock";

int Serve(int argc, char** argv) {
  CLI::App app{
      "Run the node agent: the only process that applies faults on this node.\n"
      "It listens on a Unix socket (mode 0600, peers checked by uid) and/or on TCP with\n"
      "mutual TLS only, checks every injection against the allowlist in its config,\n"
      "journals a revert record before applying anything, reverts faults whose lease\n"
      "lapses, replays its journal at start, and on SIGTERM/SIGINT reverts everything\n"
      "before exiting. See docs/agent.md.",
      argv[0]};
  std::string config_path;
  int ready_fd = -1;
  app.add_option("--config", config_path, "Agent config (YAML), see docs/agent.md")->required();
  app.add_option("--ready-fd", ready_fd,
                 "Write one 'ready ...' line to this fd once serving (used by the runner's "
                 "local agent)");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;
  absl::StatusOr<agent::AgentConfig> config = agent::LoadAgentConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "chaosdrill agent serve: %s\n", config.status().ToString().c_str());
    return kExitUsage;
  }
  absl::Status st = agent::ServeAgent(*config, injector::FaultRegistry::Global(),
                                      agent::ServeOptions{.ready_fd = ready_fd});
  if (!st.ok()) {
    std::fprintf(stderr, "chaosdrill agent serve: %s\n", st.ToString().c_str());
    return kExitInfra;
  }
  return kExitOk;
}

int InitPki(int argc, char** argv) {
  CLI::App app{
      "Create the PKI for the agent's mutual TLS, in-process with OpenSSL: a CA\n"
      "(ca.crt/ca.key), an agent server certificate (agent.crt/agent.key, with the SANs\n"
      "given) and a runner client certificate (runner.crt/runner.key). Files are 0600.\n"
      "Copy ca.crt + agent.* to each node, and ca.crt + runner.* to the runner; keep\n"
      "ca.key offline.",
      argv[0]};
  agent::InitPkiOptions opts;
  std::vector<std::string> sans;
  app.add_option("--out", opts.out_dir, "Directory to create (0700)")->required();
  app.add_option("--agent-san", sans,
                 "DNS name or IP the runner uses to reach the agent (repeatable; default "
                 "localhost and 127.0.0.1)");
  app.add_option("--days", opts.days, "Validity in days (default 365)");
  app.add_flag("--force", opts.overwrite, "Replace an existing CA in --out");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;
  if (!sans.empty()) opts.agent_sans = sans;
  absl::StatusOr<agent::PkiPaths> paths = agent::InitPki(opts);
  if (!paths.ok()) {
    std::fprintf(stderr, "chaosdrill agent init-pki: %s\n", paths.status().ToString().c_str());
    return paths.status().code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitInfra;
  }
  std::printf("wrote %s, %s (keep offline)\n      %s, %s (agent)\n      %s, %s (runner)\n",
              paths->ca_cert.c_str(), paths->ca_key.c_str(), paths->agent_cert.c_str(),
              paths->agent_key.c_str(), paths->runner_cert.c_str(), paths->runner_key.c_str());
  return kExitOk;
}

// Flags shared by halt/resume/list: where the agent is.
struct Target {
  std::string socket = kDefaultSocket;
  std::string tcp, ca, cert, key, server_name;
  void Add(CLI::App& app) {
    app.add_option("--socket", socket, "Agent Unix socket (default /run/chaosdrill/agent.sock)");
    app.add_option("--tcp", tcp, "Agent HOST:PORT over mutual TLS instead of the socket");
    app.add_option("--ca", ca, "CA certificate (with --tcp)");
    app.add_option("--cert", cert, "Client certificate (with --tcp)");
    app.add_option("--key", key, "Client key (with --tcp)");
    app.add_option("--server-name", server_name, "TLS name to expect (with --tcp)");
  }
  absl::StatusOr<std::unique_ptr<agent::AgentClient>> Connect() const {
    agent::AgentEndpoint ep;
    if (!tcp.empty()) {
      ep = agent::AgentEndpoint{.tcp_target = tcp,
                                .ca_file = ca,
                                .cert_file = cert,
                                .key_file = key,
                                .server_name = server_name};
    } else {
      ep.unix_path = socket;
    }
    return agent::AgentClient::Connect(ep);
  }
};

int Fail(const char* what, const absl::Status& st) {
  std::fprintf(stderr, "chaosdrill agent %s: %s\n", what, st.ToString().c_str());
  return kExitInfra;
}

int Halt(int argc, char** argv) {
  CLI::App app{
      "Halt the agent: revert every fault it holds and refuse new ones until\n"
      "`chaosdrill agent resume`. The big red button.",
      argv[0]};
  Target t;
  t.Add(app);
  std::string reason = "chaosdrill agent halt";
  app.add_option("--reason", reason, "Recorded in the audit log");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;
  auto client = t.Connect();
  if (!client.ok()) return Fail("halt", client.status());
  auto n = (*client)->Halt(reason);
  if (!n.ok()) return Fail("halt", n.status());
  std::printf("halted: %u fault(s) reverted; new injections refused until resume\n", *n);
  return kExitOk;
}

int Resume(int argc, char** argv) {
  CLI::App app{"Lift a halt: the agent accepts injections again.", argv[0]};
  Target t;
  t.Add(app);
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;
  auto client = t.Connect();
  if (!client.ok()) return Fail("resume", client.status());
  if (absl::Status st = (*client)->Resume(); !st.ok()) return Fail("resume", st);
  std::printf("resumed\n");
  return kExitOk;
}

const char* StateName(agent::v1::FaultState s) {
  switch (s) {
    case agent::v1::FAULT_STATE_ACTIVE:
      return "active";
    case agent::v1::FAULT_STATE_REVERTED:
      return "reverted";
    case agent::v1::FAULT_STATE_EXPIRED:
      return "expired";
    case agent::v1::FAULT_STATE_ENDED:
      return "ended";
    case agent::v1::FAULT_STATE_REVERT_FAILED:
      return "REVERT-FAILED";
    default:
      return "?";
  }
}

int List(int argc, char** argv) {
  CLI::App app{"List the faults the agent holds (and recently ended ones).", argv[0]};
  Target t;
  t.Add(app);
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;
  auto client = t.Connect();
  if (!client.ok()) return Fail("list", client.status());
  auto list = (*client)->List();
  if (!list.ok()) return Fail("list", list.status());
  std::printf("agent %s\n", list->halted() ? "HALTED (injections refused)" : "accepting faults");
  std::printf("%-40s %-14s %-20s %s\n", "FAULT", "STATE", "STARTED (UTC)", "DESCRIPTION");
  for (const auto& f : list->faults()) {
    std::string started = absl::FormatTime(
        "%Y-%m-%d %H:%M:%S", absl::FromUnixNanos(f.active_unix_ns()), absl::UTCTimeZone());
    std::printf("%-40s %-14s %-20s %s%s%s\n", f.fault_id().c_str(), StateName(f.state()),
                started.c_str(), f.description().c_str(),
                f.error().empty() ? "" : " error: ", f.error().c_str());
  }
  return kExitOk;
}

struct Sub {
  const char* name;
  const char* summary;
  Handler handler;
};
constexpr Sub kSubs[] = {
    {"serve", "Run the agent (--config FILE)", &Serve},
    {"init-pki", "Create CA, agent and runner certificates (--out DIR)", &InitPki},
    {"halt", "Revert everything and refuse new faults until resume", &Halt},
    {"resume", "Accept faults again after a halt", &Resume},
    {"list", "List the agent's faults", &List},
};

}  // namespace

int AgentCommand(int argc, char** argv) {
  if (argc >= 2) {
    for (const Sub& s : kSubs) {
      if (std::strcmp(argv[1], s.name) == 0) {
        std::string name = absl::StrCat(argv[0], " ", s.name);
        argv[1] = name.data();
        return s.handler(argc - 1, argv + 1);
      }
    }
  }
  bool help = argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
  std::FILE* out = help ? stdout : stderr;
  std::fprintf(out,
               "chaosdrill agent: the node agent that applies faults, and its admin commands.\n\n"
               "Usage: chaosdrill agent SUBCOMMAND [ARGS...]\n\nSubcommands:\n");
  for (const Sub& s : kSubs) std::fprintf(out, "  %-9s %s\n", s.name, s.summary);
  if (!help && argc >= 2) std::fprintf(stderr, "\nunknown subcommand '%s'\n", argv[1]);
  return help ? kExitOk : kExitUsage;
}

}  // namespace chaosdrill::cli
