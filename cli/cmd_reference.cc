// `chaosdrill reference`: the reference inference service (DESIGN §6). `replica` and
// `gateway` run one server process each (the supervisor starts them); `up`, `down` and
// `status` manage the whole service in a directory through reference::ReferenceService.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "reference/gateway.h"
#include "reference/replica.h"
#include "reference/supervisor.h"
#include "reference/topology.h"

namespace chaosdrill::cli {
namespace {

using reference::ReferenceService;
using reference::ReferenceServiceOptions;
using reference::Topology;

constexpr char kDefaultDir[] = "/tmp/chaosdrill-reference";

bool ProcessAlive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

// The process group of `pid` from /proc (-1 if gone).
pid_t ProcessGroup(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(in, line)) return -1;
  size_t close_paren = line.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(line.substr(close_paren + 2), ' ');
  // fields: state ppid pgrp ...
  if (fields.size() < 3) return -1;
  return static_cast<pid_t>(std::atoi(fields[2].c_str()));
}

void PrintTopology(const Topology& t) {
  std::printf("reference service in %s (supervisor pid %d, %s)\n", t.dir.c_str(), t.supervisor_pid,
              ProcessAlive(t.supervisor_pid) ? "running" : "not running");
  std::printf("gateway: %s   metrics: %s   replication: %s\n",
              t.gateway.empty() ? "-" : t.gateway.c_str(),
              t.metrics.empty() ? "-" : t.metrics.c_str(), t.replication.c_str());
  std::printf("%-15s %8s  %-21s %-6s %s\n", "ROLE", "PID", "ADDRESS", "ALIVE", "RESTARTS");
  for (const auto& [role, r] : t.roles) {
    if (!r.upstream.empty()) {
      std::printf("%-15s %8s  %-21s %-6s -> %s\n", role.c_str(), "-", r.address.c_str(),
                  r.alive ? "yes" : "no", r.upstream.c_str());
      continue;
    }
    bool alive = r.pid > 0 && ProcessAlive(r.pid);
    std::printf("%-15s %8d  %-21s %-6s %d%s\n", role.c_str(), r.pid, r.address.c_str(),
                alive ? "yes" : "no", r.restarts,
                r.interface.empty()
                    ? ""
                    : absl::StrCat("  link ", r.interface, " (", r.interface_address, ")").c_str());
  }
}

// Blocks SIGTERM, SIGINT and SIGHUP in this thread (and so in the supervisor thread it
// starts); sigwait takes them.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int Up(ReferenceServiceOptions options, bool foreground) {
  if (mkdir(options.dir.c_str(), 0755) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "chaosdrill reference up: creating %s: %s\n", options.dir.c_str(),
                 std::strerror(errno));
    return kExitInfra;
  }
  if (auto t = Topology::Load(reference::TopologyPath(options.dir));
      t.ok() && t->running && ProcessAlive(t->supervisor_pid)) {
    std::fprintf(stderr,
                 "chaosdrill reference up: a reference service already runs in %s (supervisor "
                 "pid %d); stop it with 'chaosdrill reference down --dir %s'\n",
                 options.dir.c_str(), t->supervisor_pid, options.dir.c_str());
    return kExitUsage;
  }
  const std::string topology_path = reference::TopologyPath(options.dir);
  if (foreground) {
    sigset_t set = BlockStopSignals();
    auto svc = ReferenceService::Start(options);
    if (!svc.ok()) {
      std::fprintf(stderr, "chaosdrill reference up: %s\n", svc.status().ToString().c_str());
      return kExitInfra;
    }
    std::printf("gateway %s\ntopology %s\n", (*svc)->topology().gateway.c_str(),
                topology_path.c_str());
    std::fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    (void)(*svc)->Stop();
    return kExitOk;
  }

  // Daemon: the child starts a new session, runs the supervisor with its output in
  // DIR/supervisor.log, and reports readiness (or the error) through a pipe.
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    std::perror("chaosdrill reference up: pipe");
    return kExitInfra;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("chaosdrill reference up: fork");
    return kExitInfra;
  }
  if (pid == 0) {
    close(fds[0]);
    setsid();
    const std::string log = options.dir + "/supervisor.log";
    int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null_fd = open("/dev/null", O_RDONLY);
    if (log_fd >= 0) {
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
      close(log_fd);
    }
    if (null_fd >= 0) {
      dup2(null_fd, STDIN_FILENO);
      close(null_fd);
    }
    sigset_t set = BlockStopSignals();
    auto svc = ReferenceService::Start(options);
    std::string msg = svc.ok() ? absl::StrCat("OK ", (*svc)->topology().gateway, "\n")
                               : absl::StrCat("ERR ", svc.status().ToString(), "\n");
    (void)!write(fds[1], msg.data(), msg.size());
    close(fds[1]);
    if (!svc.ok()) _exit(kExitInfra);
    int sig = 0;
    sigwait(&set, &sig);
    (void)(*svc)->Stop();
    _exit(kExitOk);
  }
  close(fds[1]);
  std::string msg;
  char buf[512];
  const int timeout_ms =
      static_cast<int>(absl::ToInt64Milliseconds(options.ready_timeout)) + 30'000;
  pollfd pfd{fds[0], POLLIN, 0};
  while (poll(&pfd, 1, timeout_ms) > 0) {
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (msg.rfind("OK ", 0) != 0) {
    std::fprintf(stderr, "chaosdrill reference up: %s (supervisor log: %s/supervisor.log)\n",
                 msg.empty() ? "the supervisor did not report readiness" : msg.substr(4).c_str(),
                 options.dir.c_str());
    if (msg.empty()) kill(pid, SIGTERM);
    return kExitInfra;
  }
  std::string gateway = msg.substr(3);
  if (!gateway.empty() && gateway.back() == '\n') gateway.pop_back();
  std::printf(
      "gateway %s\ntopology %s\nsupervisor pid %d (stop with: chaosdrill reference down "
      "--dir %s)\n",
      gateway.empty() ? "-" : gateway.c_str(), topology_path.c_str(), pid, options.dir.c_str());
  return kExitOk;
}

int Down(const std::string& dir, int timeout_s) {
  auto t = Topology::Load(reference::TopologyPath(dir));
  if (!t.ok()) {
    std::fprintf(stderr, "chaosdrill reference down: %s\n", t.status().ToString().c_str());
    return kExitUsage;
  }
  if (ProcessAlive(t->supervisor_pid)) {
    kill(t->supervisor_pid, SIGTERM);
    const absl::Time deadline = absl::Now() + absl::Seconds(timeout_s);
    while (ProcessAlive(t->supervisor_pid) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (ProcessAlive(t->supervisor_pid)) {
      std::fprintf(stderr, "supervisor %d did not stop in %ds; killing it\n", t->supervisor_pid,
                   timeout_s);
      kill(t->supervisor_pid, SIGKILL);
    }
  }
  // Whatever survived (a supervisor killed with SIGKILL cannot clean up; PDEATHSIG
  // should have taken its children, this is the backstop): each child led its own group.
  int killed = 0;
  for (const auto& [role, r] : t->roles) {
    if (r.pid > 0 && ProcessAlive(r.pid) && ProcessGroup(r.pid) == r.pid) {
      kill(-r.pid, SIGKILL);
      ++killed;
    }
  }
  std::printf("reference service in %s stopped%s\n", dir.c_str(),
              killed ? absl::StrCat(" (", killed, " leftover processes killed)").c_str() : "");
  return kExitOk;
}

int Status(const std::string& dir, bool json) {
  auto t = Topology::Load(reference::TopologyPath(dir));
  if (!t.ok()) {
    std::fprintf(stderr, "chaosdrill reference status: %s\n", t.status().ToString().c_str());
    return kExitUsage;
  }
  t->running = t->running && ProcessAlive(t->supervisor_pid);
  for (auto& [role, r] : t->roles) {
    // store.link is a proxy its opener owns, not a process: it is as alive as the service.
    r.alive = r.upstream.empty() ? r.pid > 0 && ProcessAlive(r.pid) : r.alive && t->running;
  }
  if (json) {
    std::cout << t->ToJson().dump(2) << "\n";
  } else {
    PrintTopology(*t);
  }
  return t->running ? kExitOk : kExitInfra;
}

std::vector<std::string> SplitList(const std::string& s) {
  return absl::StrSplit(s, ',', absl::SkipEmpty());
}

}  // namespace

int ReferenceCommand(int argc, char** argv) {
  CLI::App app{
      "The reference inference service drills run against by default: N replicas of a\n"
      "tiny MLP behind a health-checking gateway (Open Inference Protocol v2 over gRPC),\n"
      "and a Redis session store (primary, replica, three sentinels) for RPO.\n"
      "'up' starts it all on free loopback ports, restarts crashed parts with backoff and\n"
      "keeps DIR/topology.json current; 'down' stops it; 'status' shows it.",
      argv[0]};
  app.require_subcommand(1);

  // replica
  reference::ReplicaOptions ro;
  CLI::App* replica = app.add_subcommand("replica", "Serve the model (one replica process)");
  replica->add_option("--listen", ro.listen, "host:port (port 0: any free port)")
      ->capture_default_str();
  replica->add_option("--model", ro.model, "Model name")->capture_default_str();
  replica->add_option("--device", ro.device, "cpu or cuda")->capture_default_str();
  replica->add_option("--width", ro.width, "Layer width")->capture_default_str();
  replica->add_option("--depth", ro.depth, "Number of layers")->capture_default_str();
  replica->add_option("--seed", ro.seed, "Weight seed")->capture_default_str();
  replica->add_option("--degrade", ro.degrade, "none|wrong-answers|errors|slow");
  replica->add_option("--slow-delay-ms", ro.slow_delay_ms, "Added latency in slow mode")
      ->capture_default_str();
  replica->add_option("--admin-socket", ro.admin_socket, "Unix socket for run-time control");
  replica->add_option("--ready-file", ro.ready_file, "Written with the address once ready");
  replica->add_option("--threads", ro.threads, "Inference worker threads")->capture_default_str();
  replica
      ->add_option("--max-queue", ro.max_queue,
                   "Inferences that may wait for a worker; beyond it RESOURCE_EXHAUSTED")
      ->capture_default_str();
  replica->footer(
      "GPU faults (gpu.cuda_errors): start a --device cuda replica with the CUDA fault\n"
      "interposer preloaded and a control file path. While `chaosdrill inject\n"
      "gpu.cuda_errors --set control=PATH ...` holds the fault, the replica's cudaMalloc,\n"
      "cudaMemcpy and kernel launches fail as configured (its inferences answer an error\n"
      "and the gateway's probes see it):\n"
      "  LD_PRELOAD=/path/to/libchaosdrill_cuda_fault.so \\\n"
      "  CHAOSDRILL_CUDA_FAULT_CONTROL=/run/chaosdrill/replica0.ctl \\\n"
      "    chaosdrill reference replica --device cuda --listen 127.0.0.1:8001\n"
      "The library is installed next to the chaosdrill binary (build/ in a build tree).\n"
      "The replica links libcudart dynamically, which the interposer needs.\n"
      "See docs/faults.md (gpu.cuda_errors) and docs/reference-inference.md.");

  // gateway
  reference::GatewayOptions go;
  std::string replicas_csv, store_csv;
  bool no_deep_probe = false;
  CLI::App* gateway = app.add_subcommand("gateway", "Serve the front door (one gateway process)");
  gateway->add_option("--listen", go.listen, "host:port")->capture_default_str();
  gateway->add_option("--replicas", replicas_csv, "Comma-separated replica addresses")->required();
  gateway->add_option("--store", store_csv, "Comma-separated Redis sentinel addresses");
  gateway->add_option("--master-name", go.store_master_name, "Sentinel master name")
      ->capture_default_str();
  gateway->add_option("--replication", go.replication, "async|sync")->capture_default_str();
  gateway->add_option("--metrics-listen", go.metrics_listen, "host:port for /metrics");
  gateway->add_option("--ready-file", go.ready_file, "Written with the address once ready");
  gateway->add_option("--threads", go.threads, "gRPC server threads")->capture_default_str();
  gateway->add_flag("--no-deep-probe", no_deep_probe, "Health-check with ServerReady only");
  gateway
      ->add_option("--panic-threshold", go.panic_threshold_percent,
                   "Percent of replicas in rotation below which ejections are ignored and "
                   "every replica passing health checks is routed to (0: off)")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  gateway->add_option("--width", go.model_width, "Served model's width (deep probe golden pair)")
      ->capture_default_str();
  gateway->add_option("--depth", go.model_depth, "Served model's depth")->capture_default_str();
  gateway->add_option("--seed", go.model_seed, "Served model's weight seed")->capture_default_str();

  // up
  ReferenceServiceOptions so;
  so.dir = kDefaultDir;
  bool foreground = false;
  int ready_timeout_s = 60;
  CLI::App* up = app.add_subcommand("up", "Start the whole service in DIR");
  up->add_option("--replicas", so.replicas, "Replicas behind the gateway")->capture_default_str();
  up->add_option("--replication", so.replication, "Session store: async|sync")
      ->check(CLI::IsMember({"async", "sync"}))
      ->capture_default_str();
  up->add_option("--device", so.device, "cpu|cuda")->capture_default_str();
  up->add_option("--network", so.network,
                 "loopback, or netns: each replica in its own network namespace on its own veth "
                 "link (root)")
      ->check(CLI::IsMember({"loopback", "netns"}))
      ->capture_default_str();
  up->add_option("--width", so.width, "Model layer width")->capture_default_str();
  up->add_option("--depth", so.depth, "Model depth")->capture_default_str();
  up->add_option("--dir", so.dir, "State directory (configs, logs, topology.json)")
      ->capture_default_str();
  up->add_option("--ready-timeout", ready_timeout_s, "Seconds to wait for readiness")
      ->capture_default_str();
  up->add_flag("--foreground", foreground, "Supervise in this process until SIGTERM/SIGINT");

  // down / status
  std::string dir = kDefaultDir;
  int down_timeout_s = 30;
  bool json = false;
  CLI::App* down = app.add_subcommand("down", "Stop the service in DIR; leaves no process");
  down->add_option("--dir", dir, "State directory")->capture_default_str();
  down->add_option("--timeout", down_timeout_s, "Seconds before SIGKILL")->capture_default_str();
  CLI::App* status = app.add_subcommand("status", "Show roles, pids, addresses and liveness");
  status->add_option("--dir", dir, "State directory")->capture_default_str();
  status->add_flag("--json", json, "Print the topology as JSON");

  if (auto rc = ParseArgs(app, argc, argv)) return *rc;

  if (replica->parsed()) {
    absl::Status st = reference::RunReplica(ro);
    if (!st.ok()) {
      std::fprintf(stderr, "chaosdrill reference replica: %s\n", st.ToString().c_str());
      return kExitInfra;
    }
    return kExitOk;
  }
  if (gateway->parsed()) {
    go.replicas = SplitList(replicas_csv);
    go.store_sentinels = SplitList(store_csv);
    go.deep_probe = !no_deep_probe;
    absl::Status st = reference::RunGateway(go);
    if (!st.ok()) {
      std::fprintf(stderr, "chaosdrill reference gateway: %s\n", st.ToString().c_str());
      return kExitInfra;
    }
    return kExitOk;
  }
  if (up->parsed()) {
    so.ready_timeout = absl::Seconds(ready_timeout_s);
    return Up(so, foreground);
  }
  if (down->parsed()) return Down(dir, down_timeout_s);
  return Status(dir, json);
}

}  // namespace chaosdrill::cli
