// Applies a scenario's faults through agents (DESIGN §5: always through the Agent API,
// local or remote, one code path). Resolves each fault's target — a reference role to a
// pid, a proxy route or (network.* on a replica) the replica's own link, an agent name
// or label selector to agent clients — injects with a lease kept alive by each client's
// KeepAlive stream, and reverts on schedule, on abort, on signal and on any error. Not
// thread-safe: the drill's main thread drives it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "injector/agent/agent_client.h"
#include "reference/topology.h"
#include "reports/run_record.h"
#include "scenarios/scenario.h"

namespace chaosdrill::runner {

// A connected agent, by scenario name ("local" for the private child).
struct DriverAgent {
  std::string name;
  std::map<std::string, std::string> labels;
  bool same_host = false;  // its CLOCK_MONOTONIC is ours (the local agent)
  std::unique_ptr<agent::AgentClient> client;
};

// One injection on one agent, part of a scenario fault (a family target makes several).
struct AppliedFault {
  std::string scenario_fault;
  DriverAgent* agent = nullptr;
  std::string fault_id;
  std::string description;
};

class FaultDriver {
 public:
  FaultDriver(Clock& clock, int64_t origin_ns, absl::Duration lease_ttl);
  ~FaultDriver();  // RevertAll()

  void AddAgent(DriverAgent agent);
  // Drill time zero moves once the target is up (starting it is not part of the drill).
  void SetOrigin(int64_t origin_ns) { origin_ns_ = origin_ns; }
  // For reference targets: roles resolve through the topology this returns, asked afresh
  // at every resolution (after a restart or a failover, pids and the store primary change).
  void SetTopologySource(std::function<reference::Topology()> source) {
    topology_ = std::move(source);
  }

  // The specs a scenario fault becomes after target resolution, with the agents they go
  // to. InvalidArgument/NotFound naming the fault when a target cannot be resolved.
  struct Resolved {
    DriverAgent* agent;
    FaultSpec spec;
    std::string target;  // human-readable
  };
  absl::StatusOr<std::vector<Resolved>> Resolve(const scenarios::ScenarioFault& fault) const;

  // Injects every resolved part; on a partial failure reverts the parts already applied.
  // Fills `event` (injected_ns from the agent's confirmation, target, error).
  absl::Status Inject(const scenarios::ScenarioFault& fault, reports::FaultEvent& event);
  // Reverts every part of a scenario fault; records reverted_ns. Idempotent.
  absl::Status Revert(const std::string& scenario_fault, reports::FaultEvent& event);
  // Reverts everything still applied (abort, signal, end of drill). Returns the first error.
  absl::Status RevertAll();
  // Halts the private local agent (reverts whatever it still holds, refuses new faults):
  // what Ctrl-C does to its drill, after RevertAll. Remote agents are shared and are not
  // halted. OK when there is no local agent.
  absl::Status HaltLocal(const std::string& reason);
  // Runs Capabilities on every agent and checks that each fault's kind is available
  // there (`--dry-run` and the start of every drill).
  absl::Status Preflight(const scenarios::Scenario& scenario) const;

  // A proxy route in front of the gateway, held for the whole drill when the scenario has
  // proxy faults on the gateway: load goes to the route's listen address, faults compose
  // on it. Returns the address clients should use.
  absl::StatusOr<std::string> StartGatewayRoute(const std::string& gateway_address);
  // The reference service's replication link (ReferenceServiceOptions::open_store_link):
  // a pass-through proxy `listen` -> `upstream` on the local agent (proxy.latency 0), held
  // for the whole drill like the gateway route, so proxy faults on role store.link compose
  // on it. Called from the thread that starts the reference service while the drill's
  // thread only waits for it.
  absl::Status OpenStoreLink(const std::string& listen, const std::string& upstream);

  size_t active() const { return applied_.size(); }

 private:
  int64_t Now() const { return clock_.NowNanos() - origin_ns_; }
  std::vector<DriverAgent*> AgentsFor(const scenarios::FaultTarget& target) const;

  Clock& clock_;
  int64_t origin_ns_;
  const absl::Duration lease_ttl_;
  std::vector<std::unique_ptr<DriverAgent>> agents_;
  std::function<reference::Topology()> topology_;  // empty: no reference target
  std::string route_listen_;                       // empty: no gateway route
  std::string route_id_;                           // the route's fault id on the local agent
  std::vector<std::string> link_ids_;              // store.link proxies on the local agent
  std::vector<AppliedFault> applied_;
};

}  // namespace chaosdrill::runner
