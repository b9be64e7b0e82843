#include "scenarios/scenario_validator.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/quantity.h"
#include "scenarios/did_you_mean.h"

namespace chaosdrill::scenarios {
namespace {

std::string D(absl::Duration d) { return DurationToString(d); }

class Checker {
 public:
  Checker(const Scenario& sc, ValidationErrors& errors) : sc_(sc), errors_(errors) {}

  void Run() {
    CheckAgents();
    CheckFaults();
    CheckProbes();
    CheckLoadAndThresholds();
    CheckSlo();
  }

 private:
  // Adds an error at `path` (or at `fallback` when `path` was not written) unless any of
  // `depends_on` already has one.
  void Error(const std::string& path, std::string message, const std::string& fallback = "") {
    SourceLocation loc = sc_.LocationOf(path);
    if (!loc.known() && !fallback.empty()) loc = sc_.LocationOf(fallback);
    errors_.Add(loc, path, std::move(message));
  }
  bool Bad(std::initializer_list<std::string> paths) const {
    for (const std::string& p : paths) {
      if (errors_.TouchesError(p)) return true;
    }
    return false;
  }

  void CheckAgents() {
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < sc_.agents.size(); ++i) {
      const Agent& a = sc_.agents[i];
      std::string path = absl::StrCat("agents[", i, "]");
      if (Bad({path})) continue;
      if (a.name == kLocalAgentName) {
        Error(path + ".name",
              "\"local\" is the runner's private agent, present without being listed; expected "
              "another name for a remote agent");
      } else if (auto [it, inserted] = seen.emplace(a.name, i); !inserted) {
        Error(path + ".name", absl::StrCat("expected unique agent names, found \"", a.name,
                                           "\" again (first in "
                                           "agents[",
                                           it->second, "])"));
      }
      if (!absl::StartsWith(a.address, "unix:") && !a.tls) {
        Error(path + ".tls",
              absl::StrCat("agents over TCP use mutual TLS (DESIGN §5); expected tls {ca, cert, "
                           "key} for ",
                           a.address, ", found none"),
              path);
      }
    }
  }

  std::vector<std::string> AgentNames() const {
    std::vector<std::string> names = {std::string(kLocalAgentName)};
    for (const Agent& a : sc_.agents) names.push_back(a.name);
    return names;
  }

  size_t CountMatching(const std::map<std::string, std::string>& selector) const {
    size_t n = 0;
    for (const Agent& a : sc_.agents) {
      bool match = true;
      for (const auto& [k, v] : selector) {
        auto it = a.labels.find(k);
        match = match && it != a.labels.end() && it->second == v;
      }
      n += match ? 1 : 0;
    }
    return n;
  }

  void CheckFaults() {
    std::map<std::string, size_t> seen;
    const bool phases_ok = !Bad({"phases.baseline", "phases.observe"});
    const absl::Duration end = sc_.phases.End();
    for (size_t i = 0; i < sc_.faults.size(); ++i) {
      const ScenarioFault& f = sc_.faults[i];
      const std::string path = absl::StrCat("faults[", i, "]");
      if (!Bad({path + ".name"}) && !f.name.empty()) {
        if (auto [it, inserted] = seen.emplace(f.name, i); !inserted) {
          Error(path + ".name", absl::StrCat("expected unique fault names, found \"", f.name,
                                             "\" again (first in faults[", it->second, "])"));
        }
      }
      if (phases_ok && !Bad({path + ".at"})) {
        if (f.at < sc_.phases.baseline) {
          Error(path + ".at", absl::StrCat("expected at >= ", D(sc_.phases.baseline),
                                           " (faults start after the baseline phase, which must be "
                                           "fault-free), found ",
                                           D(f.at)));
        } else if (f.at >= end) {
          Error(path + ".at", absl::StrCat("expected at before the observe window ends at ", D(end),
                                           " (baseline ", D(sc_.phases.baseline), " + observe ",
                                           D(sc_.phases.observe), "), found ", D(f.at)));
        } else if (f.spec.duration && !Bad({path + ".duration"}) && f.at + *f.spec.duration > end) {
          Error(path + ".duration",
                absl::StrCat("the fault would end at ", D(f.at + *f.spec.duration), " (at ",
                             D(f.at), " + duration ", D(*f.spec.duration),
                             "), after the observe window ends at ", D(end), " (baseline ",
                             D(sc_.phases.baseline), " + observe ", D(sc_.phases.observe),
                             "); expected at + duration <= ", D(end)));
        }
      }
      if (!Bad({path + ".target"})) CheckFaultTarget(f, path + ".target");
      if (!Bad({path})) CheckNetworkFault(f, path);  // once the fault itself reads right
    }
    CheckOverlappingReplicaFaults();
  }

  // network.* faults aimed at the reference service act on a replica's own link: each
  // replica in its own network namespace (target.reference.network: netns), the runner
  // filling `interface` with the host side of the replica's veth from the topology.
  void CheckNetworkFault(const ScenarioFault& f, const std::string& path) {
    const ReferenceTarget* ref = sc_.target.reference();
    if (!absl::StartsWith(f.spec.kind, "network.") || !f.target.role || ref == nullptr ||
        Bad({path + ".target.role"})) {
      return;
    }
    const std::string role = f.target.role->ToString();
    if (f.target.role->kind != Role::Kind::kReplica) {
      Error(path + ".target.role",
            absl::StrCat("network faults on the reference service go on a replica's own link; "
                         "expected role replica[i] or replica (with count or percent), found \"",
                         role, "\""));
      return;
    }
    if (f.spec.params.count("interface") > 0) {
      std::string at = path + ".interface";
      if (!sc_.LocationOf(at).known()) at = path + ".params.interface";
      Error(at, absl::StrCat("a fault aimed at ", role,
                             " acts on the replica's own link, which the runner takes from the "
                             "topology; expected no interface here (or target.agent with an "
                             "interface of your own)"));
      return;
    }
    if (ref->network != Network::kNetns && !Bad({"target.reference.network"})) {
      Error(path + ".target.role",
            absl::StrCat(f.spec.kind, " on ", role,
                         " needs each replica on a link of its own; expected "
                         "target.reference.network: netns (root), found ",
                         NetworkName(ref->network),
                         " (every replica shares the loopback interface there)"));
    }
  }

  // The replicas a fault hits, by index, as the runner picks them (the first `count` of a
  // family); empty when it does not target replicas.
  std::vector<int> ReplicasHit(const ScenarioFault& f, int replicas) const {
    std::vector<int> out;
    if (!f.target.role || f.target.role->kind != Role::Kind::kReplica) return out;
    if (f.target.role->index) return {*f.target.role->index};
    int hit = f.target.count     ? *f.target.count
              : f.target.percent ? static_cast<int>(std::ceil(*f.target.percent * replicas / 100.0))
                                 : replicas;
    for (int i = 0; i < std::min(hit, replicas); ++i) out.push_back(i);
    return out;
  }

  // Blast radius across faults (DESIGN §5): faults on replicas that are active at the same
  // time must not hit more than half of them together, unless the fault that brings the
  // count over half says allow_majority. A fault is active from `at` for its duration;
  // without one, until the end of the drill, except an instantaneous process.kill, which
  // counts for 1 s (the reference supervisor's first restart delay: the replica stays down
  // at least that long).
  void CheckOverlappingReplicaFaults() {
    const ReferenceTarget* ref = sc_.target.reference();
    if (ref == nullptr || Bad({"target.reference.replicas", "phases.baseline", "phases.observe"}))
      return;
    struct Active {
      size_t index;
      absl::Duration from, to;
      std::vector<int> hit;
    };
    std::vector<Active> active;
    for (size_t i = 0; i < sc_.faults.size(); ++i) {
      const ScenarioFault& f = sc_.faults[i];
      const std::string path = absl::StrCat("faults[", i, "]");
      if (Bad({path})) continue;
      std::vector<int> hit = ReplicasHit(f, ref->replicas);
      if (hit.empty()) continue;
      absl::Duration to = f.spec.duration                 ? f.at + *f.spec.duration
                          : f.spec.kind == "process.kill" ? f.at + absl::Seconds(1)
                                                          : sc_.phases.End();
      active.push_back({i, f.at, to, std::move(hit)});
    }
    for (const Active& a : active) {
      const ScenarioFault& f = sc_.faults[a.index];
      if (f.allow_majority || 2 * static_cast<int>(a.hit.size()) > ref->replicas) continue;
      // Everything active when `a` starts, `a` included; `a` is the one that starts last
      // (a tie goes to the later fault in the list).
      std::set<int> together(a.hit.begin(), a.hit.end());
      std::vector<std::string> with;
      for (const Active& b : active) {
        if (b.index == a.index) continue;
        bool started_before = b.from < a.from || (b.from == a.from && b.index < a.index);
        if (!started_before || b.to <= a.from) continue;
        together.insert(b.hit.begin(), b.hit.end());
        with.push_back(sc_.faults[b.index].name);
      }
      if (2 * static_cast<int>(together.size()) > ref->replicas) {
        Error(
            absl::StrCat("faults[", a.index, "]"),
            absl::StrCat("together with ", absl::StrJoin(with, ", "), ", fault \"", f.name,
                         "\" would hit ", together.size(), " of ", ref->replicas,
                         " replicas at once from ", D(a.from),
                         ", more than half (blast radius); expected overlapping faults to hit "
                         "at most ",
                         ref->replicas / 2, ", or allow_majority: true on this fault to mean it"));
      }
    }
  }

  void CheckFaultTarget(const ScenarioFault& f, const std::string& path) {
    const FaultTarget& t = f.target;
    const bool target_ok = !Bad({"target"});
    const ReferenceTarget* ref = sc_.target.reference();
    if (t.role) {
      const std::string rpath = path + ".role";
      if (target_ok && ref == nullptr) {
        Error(rpath,
              absl::StrCat("roles name parts of the reference service, but target is an "
                           "endpoint; expected target.agent or target.selector, found role \"",
                           t.role->ToString(), "\""));
        return;
      }
      if (ref == nullptr || Bad({"target.reference.replicas"})) return;
      if (absl::Status s = CheckRoleExists(*t.role, ref->replicas); !s.ok()) {
        Error(rpath, std::string(s.message()));
        return;
      }
      // Proxy faults act on a proxy the runner holds: the gateway route or the store's
      // replication link; the link is nothing else (no process).
      const bool proxy = absl::StartsWith(f.spec.kind, "proxy.");
      const bool proxied =
          t.role->kind == Role::Kind::kGateway || t.role->kind == Role::Kind::kStoreLink;
      if (proxy != proxied && (proxy || t.role->kind == Role::Kind::kStoreLink)) {
        Error(rpath, proxy ? absl::StrCat("proxy faults go on the gateway route or the store's "
                                          "replication link; expected role gateway or "
                                          "store.link, found \"",
                                          t.role->ToString(), "\"")
                           : absl::StrCat("store.link is the replication link (a proxy): only "
                                          "proxy.* faults act on it, found kind ",
                                          f.spec.kind));
        return;
      }
      if (!t.role->is_family() && (t.count || t.percent)) {
        Error(path + (t.count ? ".count" : ".percent"),
              absl::StrCat("count and percent choose among several matches, but role \"",
                           t.role->ToString(),
                           "\" is one process; expected a family (replica, sentinel) or no "
                           "count/percent"));
        return;
      }
      int family = t.role->kind == Role::Kind::kReplica ? ref->replicas : kReferenceSentinels;
      if (t.role->is_family() && t.count && *t.count > family) {
        Error(path + ".count",
              absl::StrCat("expected a count of at most ", family, " (the reference service has ",
                           family, " ", t.role->ToString(), "s), found ", *t.count));
        return;
      }
      if (t.role->kind == Role::Kind::kReplica && !f.allow_majority) {
        int hit = 1;
        if (t.role->is_family()) {
          hit = t.count     ? *t.count
                : t.percent ? static_cast<int>(std::ceil(*t.percent * ref->replicas / 100.0))
                            : ref->replicas;
        }
        if (2 * hit > ref->replicas) {
          Error(path, absl::StrCat("the fault would hit ", hit, " of ", ref->replicas,
                                   " replicas, more than half (blast radius); expected at most ",
                                   ref->replicas / 2, ", or allow_majority: true to mean it"));
        }
      }
      return;
    }
    if (t.agent) {
      std::vector<std::string> names = AgentNames();
      bool found = false;
      for (const std::string& n : names) found = found || n == *t.agent;
      if (!found && !Bad({"agents"})) {
        Error(path + ".agent",
              absl::StrCat("no agent named \"", *t.agent, "\";", DidYouMean(*t.agent, names),
                           " expected one of: ", absl::StrJoin(names, ", ")));
        return;
      }
      if (t.count || t.percent) {
        Error(path + (t.count ? ".count" : ".percent"),
              "count and percent choose among several matches, but target.agent names one "
              "agent; expected target.selector to pick among agents");
      }
      return;
    }
    if (!t.selector.empty() && !Bad({"agents"})) {
      size_t matched = CountMatching(t.selector);
      if (matched == 0) {
        std::vector<std::string> wanted;
        for (const auto& [k, v] : t.selector) wanted.push_back(absl::StrCat(k, "=", v));
        Error(path + ".selector",
              absl::StrCat("no agent has the labels ", absl::StrJoin(wanted, ", "),
                           "; expected a selector that matches at least one entry of agents"));
        return;
      }
      if (t.count && static_cast<size_t>(*t.count) > matched) {
        Error(path + ".count", absl::StrCat("expected a count of at most ", matched,
                                            " (agents matching the selector), found ", *t.count));
      }
    }
  }

  void CheckProbes() {
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < sc_.probes.size(); ++i) {
      const std::string path = absl::StrCat("probes[", i, "].name");
      if (Bad({path}) || sc_.probes[i].name.empty()) continue;
      if (auto [it, inserted] = seen.emplace(sc_.probes[i].name, i); !inserted) {
        Error(path, absl::StrCat("expected unique probe names, found \"", sc_.probes[i].name,
                                 "\" again (first in probes[", it->second, "])"));
      }
      if (sc_.probes[i].timeout > sc_.probes[i].every &&
          !Bad({absl::StrCat("probes[", i, "].timeout"), absl::StrCat("probes[", i, "].every")}) &&
          sc_.LocationOf(absl::StrCat("probes[", i, "].timeout")).known()) {
        Error(absl::StrCat("probes[", i, "].timeout"),
              absl::StrCat("expected a timeout no longer than every (", D(sc_.probes[i].every),
                           "), found ", D(sc_.probes[i].timeout)));
      }
      CheckProbeKind(sc_.probes[i], absl::StrCat("probes[", i, "]"));
    }
  }

  void CheckProbeKind(const Probe& probe, const std::string& path) {
    if (std::holds_alternative<GoldenProbe>(probe.check) && !Bad({"target"}) &&
        !sc_.target.is_reference()) {
      Error(path + ".golden",
            "a golden probe compares answers with the reference model's golden output, and an "
            "endpoint has no golden answer the runner knows; expected target.reference, or a "
            "ready or prometheus probe for an endpoint",
            path);
    }
    if (const auto* prom = std::get_if<PrometheusProbe>(&probe.check)) {
      if (prom->below && prom->above && *prom->above >= *prom->below) {
        Error(path + ".prometheus.above",
              absl::StrCat("healthy while above ", *prom->above, " and below ", *prom->below,
                           " can never hold; expected above < below"));
      }
    }
    if (const auto* alert = std::get_if<AlertProbe>(&probe.check)) {
      const std::string apath = path + ".alert";
      if (sc_.faults.empty() && !Bad({"faults"})) {
        Error(apath,
              "an alert probe measures how soon the alert fires after each fault, and this "
              "scenario has no faults; expected a faults list, or a prometheus probe on ALERTS",
              path);
        return;
      }
      std::vector<std::string> names;
      for (const ScenarioFault& f : sc_.faults) names.push_back(f.name);
      std::map<std::string, size_t> seen;
      for (size_t k = 0; k < alert->faults.size(); ++k) {
        const std::string fpath = absl::StrCat(apath, ".faults[", k, "]");
        const std::string& name = alert->faults[k];
        if (auto [it, inserted] = seen.emplace(name, k); !inserted) {
          Error(fpath, absl::StrCat("expected each fault once, found \"", name,
                                    "\" again (first in ", apath, ".faults[", it->second, "])"));
        } else if (sc_.FindFault(name) == nullptr && !Bad({"faults"})) {
          Error(fpath, absl::StrCat("no fault named \"", name, "\";", DidYouMean(name, names),
                                    " expected one of: ", absl::StrJoin(names, ", ")));
        }
      }
    }
  }

  void CheckLoadAndThresholds() {
    const Load& l = sc_.load;
    if (l.good_latency && !Bad({"load.good_latency", "load.timeout"}) &&
        *l.good_latency > l.timeout) {
      Error(
          "load.good_latency",
          absl::StrCat("expected good_latency no longer than load.timeout (", D(l.timeout),
                       "): a request that slow has already timed out; found ", D(*l.good_latency)));
    }
    const SteadyState& s = sc_.steady_state;
    if (s.p50 && s.p99 && !Bad({"steady_state.p50", "steady_state.p99"}) && *s.p50 > *s.p99) {
      Error("steady_state.p50",
            absl::StrCat("expected p50 no larger than p99 (", D(*s.p99), "), found ", D(*s.p50)));
    }
    const Phases& p = sc_.phases;
    if (!Bad({"phases.hold", "phases.observe"}) && p.hold >= p.observe) {
      Error("phases.hold",
            absl::StrCat("expected hold shorter than observe (", D(p.observe),
                         "): recovery is confirmed by hold good seconds inside observe; found ",
                         D(p.hold)),
            "phases");
    }
  }

  void CheckSlo() {
    if (sc_.slo.rpo && !sc_.writes && !Bad({"writes", "slo.rpo"})) {
      Error("slo.rpo",
            "an RPO is measured on acknowledged session writes, and this scenario makes none; "
            "expected a writes section (e.g. writes: {rate: 50/s})");
    }
  }

  const Scenario& sc_;
  ValidationErrors& errors_;
};

}  // namespace

void ValidateScenario(const Scenario& scenario, ValidationErrors& errors) {
  Checker(scenario, errors).Run();
}

}  // namespace chaosdrill::scenarios
