#include "runner/fault_driver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/quantity.h"
#include "common/status.h"

namespace chaosdrill::runner {
namespace {

// A free port on 127.0.0.1 for the gateway route. The port is released before the proxy
// binds it; on a loopback test machine nothing else races for it.
absl::StatusOr<int> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("finding a free port: socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    absl::Status s = ErrnoStatus("finding a free port: bind 127.0.0.1:0");
    close(fd);
    return s;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// Roles of one family ("replica", "sentinel") present in the topology, by index.
std::vector<std::string> FamilyRoles(const reference::Topology& topology,
                                     absl::string_view family) {
  std::vector<std::pair<int, std::string>> found;
  for (const auto& [name, info] : topology.roles) {
    if (!absl::StartsWith(name, absl::StrCat(family, "["))) continue;
    found.emplace_back(std::atoi(name.c_str() + family.size() + 1), name);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

size_t PickCount(const scenarios::FaultTarget& target, size_t matched) {
  if (target.count) return std::min<size_t>(*target.count, matched);
  if (target.percent) {
    return std::min<size_t>(matched,
                            static_cast<size_t>(std::ceil(*target.percent * matched / 100)));
  }
  return matched;
}

}  // namespace

FaultDriver::FaultDriver(Clock& clock, int64_t origin_ns, absl::Duration lease_ttl)
    : clock_(clock), origin_ns_(origin_ns), lease_ttl_(lease_ttl) {}

FaultDriver::~FaultDriver() {
  if (absl::Status s = RevertAll(); !s.ok()) LogError("drill", s.message());
}

void FaultDriver::AddAgent(DriverAgent agent) {
  agent.client->StartKeepAlive(lease_ttl_);
  agents_.push_back(std::make_unique<DriverAgent>(std::move(agent)));
}

std::vector<DriverAgent*> FaultDriver::AgentsFor(const scenarios::FaultTarget& target) const {
  std::vector<DriverAgent*> out;
  if (target.agent) {
    for (const auto& a : agents_) {
      if (a->name == *target.agent) out.push_back(a.get());
    }
    return out;
  }
  if (!target.selector.empty()) {
    for (const auto& a : agents_) {
      bool all = std::all_of(target.selector.begin(), target.selector.end(), [&](const auto& kv) {
        auto it = a->labels.find(kv.first);
        return it != a->labels.end() && it->second == kv.second;
      });
      if (all) out.push_back(a.get());
    }
    out.resize(PickCount(target, out.size()));
    return out;
  }
  for (const auto& a : agents_) {
    if (a->name == scenarios::kLocalAgentName) return {a.get()};
  }
  if (!agents_.empty()) out.push_back(agents_.front().get());
  return out;
}

absl::StatusOr<std::vector<FaultDriver::Resolved>> FaultDriver::Resolve(
    const scenarios::ScenarioFault& fault) const {
  const std::string context = absl::StrCat("fault ", fault.name, " (", fault.spec.kind, ")");
  std::vector<DriverAgent*> agents = AgentsFor(fault.target);
  if (agents.empty()) {
    return absl::NotFoundError(absl::StrCat(context, ": no agent matches its target"));
  }
  std::vector<Resolved> out;
  if (!fault.target.role) {
    for (DriverAgent* a : agents) {
      out.push_back({a, fault.spec, absl::StrCat("agent ", a->name)});
    }
    return out;
  }
  if (!topology_) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": target.role needs target.reference (the reference service)"));
  }
  const reference::Topology topology = topology_();
  const scenarios::Role& role = *fault.target.role;
  const absl::string_view kind = fault.spec.kind;
  DriverAgent* agent = agents.front();  // the reference service runs next to the local agent

  if (absl::StartsWith(kind, "proxy.") && role.kind == scenarios::Role::Kind::kStoreLink) {
    // The link in front of the current primary (the replica replicates through it).
    auto it = topology.roles.find("store.link");
    if (it == topology.roles.end() || it->second.address.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(context, ": the reference service runs no store.link"));
    }
    FaultSpec spec = fault.spec;
    spec.params["listen"] = it->second.address;
    spec.params["upstream"] = it->second.upstream;
    return std::vector<Resolved>{
        {agent, spec,
         absl::StrCat("store.link ", it->second.address, " -> ", it->second.upstream)}};
  }
  if (absl::StartsWith(kind, "proxy.")) {
    if (role.kind != scenarios::Role::Kind::kGateway) {
      return absl::InvalidArgumentError(
          absl::StrCat(context,
                       ": proxy faults on the reference service go in front of the gateway "
                       "(target.role: gateway), not ",
                       role.ToString()));
    }
    if (route_listen_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(context, ": no gateway route is running"));
    }
    FaultSpec spec = fault.spec;
    spec.params["listen"] = route_listen_;
    spec.params["upstream"] = topology.gateway;
    return std::vector<Resolved>{{agent, spec, absl::StrCat("gateway via ", route_listen_)}};
  }
  // reference.degrade targets the replica process too (its admin socket comes from its
  // command line), so the agent's process allowlist and hard rules apply to it.
  // network.* faults act on a replica's own link (network netns): the host side of its veth.
  const bool network = absl::StartsWith(kind, "network.");
  if (!absl::StartsWith(kind, "process.") && kind != "reference.degrade" && !network) {
    // Node-level kinds (stress.*, gpu.*) act on the node the role runs on: the local one.
    return std::vector<Resolved>{{agent, fault.spec, absl::StrCat("node of ", role.ToString())}};
  }
  if (network && role.kind != scenarios::Role::Kind::kReplica) {
    return absl::InvalidArgumentError(
        absl::StrCat(context,
                     ": network faults on the reference service go on a replica's own link (role "
                     "replica[i]), not ",
                     role.ToString()));
  }

  std::vector<std::string> roles;
  if (role.is_family()) {
    std::string family = role.kind == scenarios::Role::Kind::kReplica ? "replica" : "sentinel";
    std::vector<std::string> all = FamilyRoles(topology, family);
    roles.assign(all.begin(), all.begin() + PickCount(fault.target, all.size()));
    if (family == "replica" && roles.size() * 2 > all.size() && !fault.allow_majority) {
      return absl::FailedPreconditionError(absl::StrCat(
          context, ": would hit ", roles.size(), " of ", all.size(),
          " replicas (more than half); set allow_majority: true if that is the drill"));
    }
  } else {
    roles.push_back(role.ToString());
  }
  for (const std::string& name : roles) {
    auto it = topology.roles.find(name);
    if (network) {
      // The link stays while the replica restarts: no need for it to be running.
      if (it == topology.roles.end()) {
        return absl::NotFoundError(
            absl::StrCat(context, ": role ", name, " is not in the topology"));
      }
      if (it->second.interface.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat(context, ": ", name,
                         " has no link of its own (the reference service "
                         "runs with network ",
                         topology.network, "); set target.reference.network: netns"));
      }
      FaultSpec spec = fault.spec;
      spec.params["interface"] = it->second.interface;
      out.push_back(
          {agent, spec,
           absl::StrCat(name, " link ", it->second.interface, " (", it->second.address, ")")});
      continue;
    }
    if (it == topology.roles.end() || it->second.pid <= 0) {
      return absl::NotFoundError(absl::StrCat(context, ": role ", name, " is not running"));
    }
    FaultSpec spec = fault.spec;
    spec.params["pid"] = absl::StrCat(it->second.pid);
    out.push_back({agent, spec, absl::StrCat(name, " (pid ", it->second.pid, ")")});
  }
  return out;
}

absl::Status FaultDriver::Inject(const scenarios::ScenarioFault& fault,
                                 reports::FaultEvent& event) {
  event.name = fault.name;
  event.kind = fault.spec.kind;
  if (fault.spec.duration) event.duration_ns = absl::ToInt64Nanoseconds(*fault.spec.duration);
  auto resolved = Resolve(fault);
  if (!resolved.ok()) {
    event.inject_failed = true;
    event.error = std::string(resolved.status().message());
    return resolved.status();
  }
  std::vector<std::string> targets;
  for (const Resolved& r : *resolved) targets.push_back(r.target);
  event.target = absl::StrJoin(targets, ", ");

  agent::InjectOptions options{.lease_ttl = lease_ttl_,
                               .note = absl::StrCat("chaosdrill drill fault ", fault.name)};
  if (fault.spec.duration) options.max_duration = *fault.spec.duration + absl::Seconds(30);
  size_t first_new = applied_.size();
  std::optional<int64_t> earliest;
  for (const Resolved& r : *resolved) {
    const int64_t before = Now();
    auto response = r.agent->client->Inject(r.spec, options);
    const int64_t after = Now();
    if (!response.ok()) {
      event.inject_failed = true;
      event.error = absl::StrCat("agent ", r.agent->name, ": ", response.status().message());
      // Nothing of a fault stays half-applied.
      for (size_t i = applied_.size(); i-- > first_new;) {
        (void)applied_[i].agent->client->Revert(applied_[i].fault_id);
        applied_.erase(applied_.begin() + static_cast<long>(i));
      }
      return Annotate(response.status(), absl::StrCat("injecting fault ", fault.name));
    }
    // The local agent shares our CLOCK_MONOTONIC: use its confirmation time, bounded by
    // the call. A remote agent's clock is not ours: the call's return is the bound we have.
    int64_t active = after;
    if (r.agent->same_host) {
      active = std::clamp<int64_t>(response->active_monotonic_ns() - origin_ns_, before, after);
    }
    earliest = std::min(earliest.value_or(active), active);
    applied_.push_back(AppliedFault{.scenario_fault = fault.name,
                                    .agent = r.agent,
                                    .fault_id = response->fault_id(),
                                    .description = response->description()});
  }
  event.injected_ns = *earliest;
  return absl::OkStatus();
}

absl::Status FaultDriver::Revert(const std::string& scenario_fault, reports::FaultEvent& event) {
  absl::Status first;
  for (size_t i = applied_.size(); i-- > 0;) {
    if (applied_[i].scenario_fault != scenario_fault) continue;
    auto response = applied_[i].agent->client->Revert(applied_[i].fault_id);
    // NotFound: the agent already reverted it (its duration ran out first).
    if (!response.ok() && response.status().code() != absl::StatusCode::kNotFound) {
      if (first.ok())
        first = Annotate(response.status(), absl::StrCat("reverting ", scenario_fault));
      continue;
    }
    event.reverted_ns = Now();
    applied_.erase(applied_.begin() + static_cast<long>(i));
  }
  return first;
}

absl::Status FaultDriver::RevertAll() {
  absl::Status first;
  for (size_t i = applied_.size(); i-- > 0;) {
    auto response = applied_[i].agent->client->Revert(applied_[i].fault_id);
    if (!response.ok() && response.status().code() != absl::StatusCode::kNotFound && first.ok()) {
      first = Annotate(response.status(), absl::StrCat("reverting ", applied_[i].scenario_fault));
    }
  }
  applied_.clear();
  if (!route_id_.empty()) {
    for (const auto& a : agents_) {
      if (a->name != scenarios::kLocalAgentName) continue;
      auto response = a->client->Revert(route_id_);
      if (!response.ok() && response.status().code() != absl::StatusCode::kNotFound && first.ok()) {
        first = Annotate(response.status(), "removing the gateway route");
      }
    }
    route_id_.clear();
  }
  for (const std::string& id : link_ids_) {
    for (const auto& a : agents_) {
      if (a->name != scenarios::kLocalAgentName) continue;
      auto response = a->client->Revert(id);
      if (!response.ok() && response.status().code() != absl::StatusCode::kNotFound && first.ok()) {
        first = Annotate(response.status(), "removing the store.link proxy");
      }
    }
  }
  link_ids_.clear();
  return first;
}

absl::Status FaultDriver::HaltLocal(const std::string& reason) {
  for (const auto& a : agents_) {
    if (a->name != scenarios::kLocalAgentName) continue;
    auto halted = a->client->Halt(reason);
    if (!halted.ok()) return Annotate(halted.status(), "halting the local agent");
  }
  return absl::OkStatus();
}

absl::Status FaultDriver::Preflight(const scenarios::Scenario& scenario) const {
  std::map<const DriverAgent*, agent::v1::CapabilitiesResponse> caps;
  for (const auto& a : agents_) {
    auto c = a->client->Capabilities();
    if (!c.ok()) return Annotate(c.status(), absl::StrCat("agent ", a->name));
    if (c->halted()) {
      return absl::FailedPreconditionError(
          absl::StrCat("agent ", a->name, " is halted (chaosdrill agent resume)"));
    }
    caps[a.get()] = *c;
  }
  for (const scenarios::ScenarioFault& f : scenario.faults) {
    for (DriverAgent* a : AgentsFor(f.target)) {
      const auto& kinds = caps[a].kinds();
      auto it = std::find_if(kinds.begin(), kinds.end(),
                             [&](const auto& k) { return k.kind() == f.spec.kind; });
      if (it == kinds.end()) {
        return absl::FailedPreconditionError(absl::StrCat("fault ", f.name, ": agent ", a->name,
                                                          " does not know kind ", f.spec.kind));
      }
      if (!it->allowed()) {
        return absl::PermissionDeniedError(absl::StrCat(
            "fault ", f.name, ": agent ", a->name, "'s allowlist does not permit ", f.spec.kind));
      }
      if (!it->available()) {
        return absl::FailedPreconditionError(absl::StrCat("fault ", f.name, ": ", f.spec.kind,
                                                          " cannot run on agent ", a->name, ": ",
                                                          it->reason(), " (fix: ", it->fix(), ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FaultDriver::StartGatewayRoute(const std::string& gateway_address) {
  DriverAgent* local = nullptr;
  for (const auto& a : agents_) {
    if (a->name == scenarios::kLocalAgentName) local = a.get();
  }
  if (local == nullptr)
    return absl::FailedPreconditionError("the gateway route needs the local agent");
  ASSIGN_OR_RETURN(int port, FreeLoopbackPort());
  std::string listen = absl::StrCat("127.0.0.1:", port);
  FaultSpec spec{.kind = "proxy.latency",
                 .params = {{"listen", listen}, {"upstream", gateway_address}, {"latency", "0ms"}}};
  auto response = local->client->Inject(
      spec, {.lease_ttl = lease_ttl_, .note = "chaosdrill drill: route in front of the gateway"});
  if (!response.ok()) return Annotate(response.status(), "starting the gateway route");
  route_listen_ = listen;
  route_id_ = response->fault_id();
  return listen;
}

absl::Status FaultDriver::OpenStoreLink(const std::string& listen, const std::string& upstream) {
  DriverAgent* local = nullptr;
  for (const auto& a : agents_) {
    if (a->name == scenarios::kLocalAgentName) local = a.get();
  }
  if (local == nullptr) return absl::FailedPreconditionError("store.link needs the local agent");
  FaultSpec spec{.kind = "proxy.latency",
                 .params = {{"listen", listen}, {"upstream", upstream}, {"latency", "0ms"}}};
  auto response = local->client->Inject(
      spec, {.lease_ttl = lease_ttl_,
             .note = absl::StrCat("chaosdrill drill: store.link ", listen, " -> ", upstream)});
  if (!response.ok()) {
    return Annotate(response.status(),
                    absl::StrCat("opening store.link ", listen, " -> ", upstream));
  }
  link_ids_.push_back(response->fault_id());
  return absl::OkStatus();
}

}  // namespace chaosdrill::runner
