#include "injector/agent/agent_main.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "injector/agent/agent_metrics.h"
#include "injector/agent/agent_server.h"
#include "injector/agent/audit_log.h"
#include "injector/agent/lease_manager.h"
#include "injector/agent/metrics_http_server.h"
#include "injector/agent/target_policy.h"
#include "injector/journal.h"

namespace chaosdrill::agent {

absl::Status ServeAgent(const AgentConfig& config, const injector::FaultRegistry& registry,
                        const ServeOptions& options) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
    return ErrnoStatus("blocking SIGTERM/SIGINT");
  }

  std::string journal_path =
      config.journal.empty() ? injector::RevertJournal::DefaultPath() : config.journal;
  ASSIGN_OR_RETURN(std::unique_ptr<injector::RevertJournal> journal,
                   injector::RevertJournal::Open(journal_path));
  // Open faults whose holder (a previous agent, `chaosdrill inject`) is dead are reverted;
  // a live holder reverts its own.
  ASSIGN_OR_RETURN(std::vector<injector::ReplayOutcome> replayed,
                   journal->Replay(registry, /*include_live_holders=*/false));
  for (const auto& r : replayed) {
    if (r.status.ok()) {
      LogWarn("agent", absl::StrCat("journal replay: reverted ", r.id, " (", r.kind,
                                    ") left by a previous agent"));
    } else {
      LogError("agent", absl::StrCat("journal replay: could not revert ", r.id, " (", r.kind,
                                     "): ", r.status.ToString()));
    }
  }

  ASSIGN_OR_RETURN(std::unique_ptr<AuditLog> audit, AuditLog::Open(config.audit_log));
  AgentMetrics metrics;
  GpuFacts gpus;  // probed on first use (Capabilities, a GPU size to judge)
  TargetPolicy policy(config.allowlist, NodeFacts::Current(config.tcp_listen), config.max_duration,
                      &registry, &gpus);
  LeaseManager leases(journal.get(), &registry, &metrics,
                      LeaseOptions{.default_ttl = config.lease_ttl,
                                   .max_ttl = config.max_lease_ttl,
                                   .max_duration = config.max_duration});
  leases.StartReaper();
  ASSIGN_OR_RETURN(std::unique_ptr<AgentServer> server,
                   AgentServer::Start(config, AgentServerDeps{.leases = &leases,
                                                              .audit = audit.get(),
                                                              .metrics = &metrics,
                                                              .policy = &policy,
                                                              .registry = &registry,
                                                              .gpus = &gpus}));
  std::unique_ptr<MetricsHttpServer> metrics_server;
  if (!config.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(metrics_server, MetricsHttpServer::Start(config.metrics_listen, &metrics));
  }
  LogInfo("agent", absl::StrCat("serving", config.tcp_listen.empty() ? "" : " tcp ",
                                config.tcp_listen, " (port ", server->tcp_port(), ")",
                                config.unix_listen.empty() ? "" : " unix:", config.unix_listen,
                                "; journal ", journal_path));
  if (options.ready_fd >= 0) {
    std::string line =
        absl::StrCat("ready tcp_port=", server->tcp_port(),
                     " metrics_port=", metrics_server ? metrics_server->port() : 0, "\n");
    (void)!::write(options.ready_fd, line.data(), line.size());
    ::close(options.ready_fd);
  }

  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  LogWarn("agent", absl::StrCat("received ", strsignal(sig), ": reverting every fault"));
  leases.Halt();  // refuse new faults while we stop
  server->Shutdown();
  if (metrics_server) metrics_server->Stop();
  leases.RevertAll(FaultState::kReverted);
  if (absl::Status st = journal->Sync(); !st.ok()) LogWarn("agent", st.ToString());
  if (size_t left = leases.active_count(); left > 0) {
    return absl::InternalError(absl::StrCat(left,
                                            " fault(s) could not be reverted; they stay "
                                            "in the journal ",
                                            journal_path, " for `chaosdrill revert`"));
  }
  return absl::OkStatus();
}

}  // namespace chaosdrill::agent
