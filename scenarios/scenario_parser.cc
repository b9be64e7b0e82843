#include "scenarios/scenario_parser.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "scenarios/did_you_mean.h"

namespace chaosdrill::scenarios {

const std::vector<std::string> kRoleResolvedParams = {"pid",    "exe",      "cmdline",   "cgroup",
                                                      "listen", "upstream", "interface", "device"};
const std::vector<std::string> kFaultFields = {"name",   "kind",           "at",    "duration",
                                               "target", "allow_majority", "params"};

namespace {

constexpr absl::Duration kMaxLatency = absl::Minutes(5);
constexpr double kMaxLoadRate = 100'000;  // per second; one runner, one machine
constexpr double kMaxWriteRate = 10'000;
constexpr uint64_t kMaxPayload = 1024 * 1024;

const std::vector<std::string> kRootFields = {
    "apiVersion", "kind",   "metadata", "target", "agents", "load",  "writes", "steady_state",
    "phases",     "faults", "probes",   "abort",  "slo",    "guard", "report"};

bool IsName(absl::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') return false;
  }
  return s.front() != '-' && s.back() != '-';
}

// A name in the DNS-label style used for metadata.name, faults, agents and probes.
std::optional<std::string> ReadName(FieldReader& r, const YamlNode* node, const std::string& path) {
  constexpr absl::string_view kExpected =
      "a name of lowercase letters, digits and '-' (at most 63 characters, e.g. kill-replica)";
  auto s = r.Scalar(node, path, kExpected);
  if (!s) return std::nullopt;
  if (!IsName(*s)) {
    r.Error(node, path, absl::StrCat("expected ", kExpected, ", found ", node->Describe()));
    return std::nullopt;
  }
  return s;
}

// "host:port" or "[v6]:port"; with allow_unix also "unix:/path".
std::optional<std::string> ReadAddress(FieldReader& r, const YamlNode* node,
                                       const std::string& path, bool allow_unix) {
  std::string expected = allow_unix ? "an address host:port or unix:/path/to/socket"
                                    : "an address host:port (e.g. 127.0.0.1:8001)";
  auto s = r.NonEmptyString(node, path, expected);
  if (!s) return std::nullopt;
  if (allow_unix && absl::StartsWith(*s, "unix:")) {
    if (s->size() > 5 && (*s)[5] == '/') return s;
    r.Error(node, path,
            absl::StrCat("expected an absolute socket path after unix:, found ", node->Describe()));
    return std::nullopt;
  }
  size_t colon = s->rfind(':');
  bool ok = colon != std::string::npos && colon > 0;
  if (ok) {
    absl::string_view host = absl::string_view(*s).substr(0, colon);
    if (host.front() == '[')
      ok = host.back() == ']' && host.size() > 2;
    else
      ok = host.find(':') == absl::string_view::npos;  // bare IPv6 needs brackets
    int port = 0;
    ok = ok && absl::SimpleAtoi(absl::string_view(*s).substr(colon + 1), &port) && port >= 1 &&
         port <= 65535;
  }
  if (!ok) {
    r.Error(node, path,
            absl::StrCat("expected ", expected, " with a port from 1 to 65535, found ",
                         node->Describe()));
    return std::nullopt;
  }
  return s;
}

std::optional<TlsFiles> ReadTls(FieldReader& r, const YamlNode* node, const std::string& path,
                                bool endpoint) {
  std::vector<std::string> known = {"ca", "cert", "key"};
  if (endpoint) known.push_back("server_name");
  auto f = r.Mapping(node, path, known, "tls");
  if (!f) return std::nullopt;
  TlsFiles tls;
  bool ok = true;
  auto file = [&](absl::string_view name, std::string& out) {
    if (const YamlNode* n = f->Get(name)) {
      if (auto s = r.NonEmptyString(n, f->PathOf(name), "a file path")) {
        out = *s;
      } else {
        ok = false;
      }
    }
  };
  file("ca", tls.ca);
  file("cert", tls.cert);
  file("key", tls.key);
  file("server_name", tls.server_name);
  if (!ok) return std::nullopt;
  if (endpoint) {
    if (tls.cert.empty() != tls.key.empty()) {
      r.Error(node, f->PathOf(tls.cert.empty() ? "cert" : "key"),
              "client certificate and key go together; expected both cert and key, or neither");
      return std::nullopt;
    }
  } else {
    // Agents always use mutual TLS over TCP (DESIGN §5).
    for (const char* name : {"ca", "cert", "key"}) {
      if (!f->Has(name)) {
        r.Error(node, f->PathOf(name),
                "required field is missing; agents use mutual TLS, expected ca, cert and key "
                "file paths");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
  }
  return tls;
}

std::map<std::string, std::string> ReadLabels(FieldReader& r, const YamlNode* node,
                                              const std::string& path, absl::string_view what) {
  std::map<std::string, std::string> out;
  auto f = r.OpenMapping(node, path, what);
  if (!f) return out;
  for (const auto& [k, v] : f->values) {
    if (auto s = r.NonEmptyString(v, f->PathOf(k), "a label value (a string)")) out[k] = *s;
  }
  return out;
}

Metadata ReadMetadata(FieldReader& r, const YamlNode* node) {
  Metadata m;
  auto f = r.Mapping(node, "metadata", {"name", "description", "tags"}, "metadata");
  if (!f) return m;
  if (const YamlNode* n = r.Require(*f, "name", "a name such as replica-kill")) {
    if (auto s = ReadName(r, n, f->PathOf("name"))) m.name = *s;
  }
  if (const YamlNode* n = f->Get("description")) {
    if (auto s = r.Scalar(n, f->PathOf("description"), "a string")) m.description = *s;
  }
  if (const YamlNode* n = f->Get("tags")) {
    if (auto t = r.StringList(n, f->PathOf("tags"), "tags")) m.tags = *t;
  }
  return m;
}

ReferenceTarget ReadReference(FieldReader& r, const YamlNode* node, const std::string& path) {
  ReferenceTarget ref;
  auto f = r.Mapping(node, path, {"replicas", "replication", "device", "network", "model"},
                     "target.reference");
  if (!f) return ref;
  if (const YamlNode* n = f->Get("replicas")) {
    if (auto v = r.Int(n, f->PathOf("replicas"), 1, 64)) ref.replicas = static_cast<int>(*v);
  }
  if (const YamlNode* n = f->Get("replication")) {
    if (auto v = r.Enum(n, f->PathOf("replication"), {"async", "sync"})) {
      ref.replication = *v == "sync" ? Replication::kSync : Replication::kAsync;
    }
  }
  if (const YamlNode* n = f->Get("device")) {
    if (auto v = r.Enum(n, f->PathOf("device"), {"cpu", "cuda"})) {
      ref.device = *v == "cuda" ? Device::kCuda : Device::kCpu;
    }
  }
  if (const YamlNode* n = f->Get("network")) {
    if (auto v = r.Enum(n, f->PathOf("network"), {"loopback", "netns"})) {
      ref.network = *v == "netns" ? Network::kNetns : Network::kLoopback;
    }
  }
  if (const YamlNode* n = f->Get("model")) {
    std::string mpath = f->PathOf("model");
    if (auto m = r.Mapping(n, mpath, {"name", "width", "depth", "batch"}, "model options")) {
      if (const YamlNode* x = m->Get("name")) {
        if (auto v = r.Enum(x, m->PathOf("name"), {"tiny-mlp"})) ref.model.name = *v;
      }
      if (const YamlNode* x = m->Get("width")) {
        if (auto v = r.Int(x, m->PathOf("width"), 1, 65536)) ref.model.width = *v;
      }
      if (const YamlNode* x = m->Get("depth")) {
        if (auto v = r.Int(x, m->PathOf("depth"), 1, 64)) ref.model.depth = *v;
      }
      if (const YamlNode* x = m->Get("batch")) {
        if (auto v = r.Int(x, m->PathOf("batch"), 1, 1024)) ref.model.batch = *v;
      }
    }
  }
  return ref;
}

EndpointTarget ReadEndpoint(FieldReader& r, const YamlNode* node, const std::string& path) {
  EndpointTarget ep;
  auto f = r.Mapping(node, path, {"protocol", "address", "model", "tls"}, "target.endpoint");
  if (!f) return ep;
  if (const YamlNode* n = f->Get("protocol")) {
    if (auto v = r.Enum(n, f->PathOf("protocol"), {"oip-grpc"})) ep.protocol = *v;
  }
  if (const YamlNode* n = r.Require(*f, "address", "an address host:port (e.g. 10.0.0.5:8001)")) {
    if (auto v = ReadAddress(r, n, f->PathOf("address"), /*allow_unix=*/false)) ep.address = *v;
  }
  if (const YamlNode* n = r.Require(*f, "model", "the served model's name (a string)")) {
    if (auto v = r.NonEmptyString(n, f->PathOf("model"), "a model name")) ep.model = *v;
  }
  if (const YamlNode* n = f->Get("tls")) ep.tls = ReadTls(r, n, f->PathOf("tls"), true);
  return ep;
}

Target ReadTarget(FieldReader& r, const YamlNode* node) {
  Target t;
  auto f = r.Mapping(node, "target", {"reference", "endpoint"}, "target");
  if (!f) return t;
  const YamlNode* ref = f->Get("reference");
  const YamlNode* ep = f->Get("endpoint");
  if (ref != nullptr && ep != nullptr) {
    r.Error(ep, "target.endpoint",
            "expected exactly one of target.reference or target.endpoint, found both");
    return t;
  }
  if (ref == nullptr && ep == nullptr) {
    r.Error(node, "target",
            "expected exactly one of reference (the built-in reference service) or endpoint "
            "(an existing OIP gRPC service), found neither");
    return t;
  }
  if (ref != nullptr) {
    t.service = ReadReference(r, ref, "target.reference");
  } else {
    t.service = ReadEndpoint(r, ep, "target.endpoint");
  }
  return t;
}

std::vector<Agent> ReadAgents(FieldReader& r, const YamlNode* node) {
  std::vector<Agent> agents;
  auto items = r.List(node, "agents", "a list of agents");
  if (!items) return agents;
  for (size_t i = 0; i < items->size(); ++i) {
    std::string path = IndexPath("agents", i);
    Agent a;
    a.location = (*items)[i]->location;
    auto f = r.Mapping((*items)[i], path, {"name", "address", "tls", "labels"}, "an agent");
    if (!f) {
      agents.push_back(std::move(a));  // keeps agents[i] aligned with the file
      continue;
    }
    if (const YamlNode* n = r.Require(*f, "name", "the agent's name (e.g. node-a)")) {
      if (auto v = ReadName(r, n, f->PathOf("name"))) a.name = *v;
    }
    if (const YamlNode* n =
            r.Require(*f, "address", "the agent's address host:port or unix:/path")) {
      if (auto v = ReadAddress(r, n, f->PathOf("address"), /*allow_unix=*/true)) a.address = *v;
    }
    if (const YamlNode* n = f->Get("tls")) a.tls = ReadTls(r, n, f->PathOf("tls"), false);
    if (const YamlNode* n = f->Get("labels")) {
      a.labels = ReadLabels(r, n, f->PathOf("labels"), "labels");
    }
    agents.push_back(std::move(a));
  }
  return agents;
}

Load ReadLoad(FieldReader& r, const YamlNode* node) {
  Load l;
  auto f = r.Mapping(
      node, "load",
      {"rate", "arrival", "connections", "timeout", "golden_every", "good_latency", "seed"},
      "load");
  if (!f) return l;
  if (const YamlNode* n = r.Require(*f, "rate", "requests per second, e.g. 200/s")) {
    if (auto v = r.Rate(n, f->PathOf("rate"), kMaxLoadRate)) l.rate = *v;
  }
  if (const YamlNode* n = f->Get("arrival")) {
    if (auto v = r.Enum(n, f->PathOf("arrival"), {"constant", "poisson"})) {
      l.arrival = *v == "poisson" ? Arrival::kPoisson : Arrival::kConstant;
    }
  }
  if (const YamlNode* n = f->Get("connections")) {
    if (auto v = r.Int(n, f->PathOf("connections"), 1, 1024)) l.connections = *v;
  }
  if (const YamlNode* n = f->Get("timeout")) {
    if (auto v = r.Duration(n, f->PathOf("timeout"), false, kMaxLatency)) l.timeout = *v;
  }
  if (const YamlNode* n = f->Get("golden_every")) {
    if (auto v = r.Int(n, f->PathOf("golden_every"), 0, 1'000'000)) l.golden_every = *v;
  }
  if (const YamlNode* n = f->Get("good_latency")) {
    l.good_latency = r.Duration(n, f->PathOf("good_latency"), false, kMaxLatency);
  }
  if (const YamlNode* n = f->Get("seed")) {
    if (auto v = r.Int(n, f->PathOf("seed"), 0, INT64_MAX)) l.seed = static_cast<uint64_t>(*v);
  }
  return l;
}

std::optional<Writes> ReadWrites(FieldReader& r, const YamlNode* node) {
  auto f = r.Mapping(node, "writes", {"rate", "sessions", "payload_size"}, "writes");
  if (!f) return std::nullopt;
  Writes w;
  if (const YamlNode* n = r.Require(*f, "rate", "writes per second, e.g. 50/s")) {
    if (auto v = r.Rate(n, f->PathOf("rate"), kMaxWriteRate)) w.rate = *v;
  }
  if (const YamlNode* n = f->Get("sessions")) {
    if (auto v = r.Int(n, f->PathOf("sessions"), 1, 10'000)) w.sessions = *v;
  }
  if (const YamlNode* n = f->Get("payload_size")) {
    if (auto v = r.Size(n, f->PathOf("payload_size"), 1, kMaxPayload)) w.payload_size = *v;
  }
  return w;
}

SteadyState ReadSteadyState(FieldReader& r, const YamlNode* node) {
  SteadyState s;
  auto f = r.Mapping(node, "steady_state", {"success_ratio", "p50", "p99"}, "steady_state");
  if (!f) return s;
  if (const YamlNode* n = f->Get("success_ratio")) {
    if (auto v = r.Ratio(n, f->PathOf("success_ratio"), 0, true)) s.success_ratio = *v;
  }
  if (const YamlNode* n = f->Get("p50")) {
    s.p50 = r.Duration(n, f->PathOf("p50"), false, kMaxLatency);
  }
  if (const YamlNode* n = f->Get("p99")) {
    s.p99 = r.Duration(n, f->PathOf("p99"), false, kMaxLatency);
  }
  return s;
}

Phases ReadPhases(FieldReader& r, const YamlNode* node) {
  Phases p;
  auto f = r.Mapping(node, "phases", {"baseline", "observe", "hold", "recovery_ratio"}, "phases");
  if (!f) return p;
  if (const YamlNode* n = f->Get("baseline")) {
    if (auto v = r.Duration(n, f->PathOf("baseline"), false, absl::Hours(1))) p.baseline = *v;
  }
  if (const YamlNode* n = f->Get("observe")) {
    if (auto v = r.Duration(n, f->PathOf("observe"), false, absl::Hours(24))) p.observe = *v;
  }
  if (const YamlNode* n = f->Get("hold")) {
    if (auto v = r.Duration(n, f->PathOf("hold"), false, absl::Hours(1))) p.hold = *v;
  }
  if (const YamlNode* n = f->Get("recovery_ratio")) {
    if (auto v = r.Ratio(n, f->PathOf("recovery_ratio"), 0, true)) p.recovery_ratio = *v;
  }
  return p;
}

FaultTarget ReadFaultTarget(FieldReader& r, const YamlNode* node, const std::string& path) {
  FaultTarget t;
  auto f =
      r.Mapping(node, path, {"role", "agent", "selector", "count", "percent"}, "a fault target");
  if (!f) return t;
  int chosen = f->Has("role") + f->Has("agent") + f->Has("selector");
  if (chosen != 1) {
    r.Error(node, path,
            absl::StrCat("expected exactly one of role (a part of the reference service), agent "
                         "(an agent's name) or selector (agent labels), found ",
                         chosen == 0 ? "none" : "several"));
  }
  if (const YamlNode* n = f->Get("role")) {
    if (auto s = r.Scalar(n, f->PathOf("role"), "a role such as replica[0]")) {
      absl::StatusOr<Role> role = ParseRole(*s);
      if (role.ok()) {
        t.role = *role;
      } else {
        r.Error(n, f->PathOf("role"), std::string(role.status().message()));
      }
    }
  }
  if (const YamlNode* n = f->Get("agent")) {
    if (auto s = r.NonEmptyString(n, f->PathOf("agent"), "an agent's name")) t.agent = *s;
  }
  if (const YamlNode* n = f->Get("selector")) {
    t.selector = ReadLabels(r, n, f->PathOf("selector"), "a label selector");
    if (n->is_map() && t.selector.empty() && !r.errors().TouchesError(f->PathOf("selector"))) {
      r.Error(n, f->PathOf("selector"),
              "expected at least one label to match (e.g. {zone: a}), found an empty selector");
    }
  }
  if (f->Has("count") && f->Has("percent")) {
    r.Error(f->Get("percent"), f->PathOf("percent"),
            "expected either count or percent, found both");
  } else if (const YamlNode* n = f->Get("count")) {
    if (auto v = r.Int(n, f->PathOf("count"), 1, 10'000)) t.count = *v;
  } else if (const YamlNode* n = f->Get("percent")) {
    t.percent = r.Percent(n, f->PathOf("percent"));
  }
  return t;
}

bool IsListType(ParamType t) {
  return t == ParamType::kStringList || t == ParamType::kCidrList || t == ParamType::kPortList;
}

std::vector<std::string> KindNames(const FaultCatalog& catalog) {
  std::vector<std::string> names;
  for (const FaultKindInfo& k : catalog) names.push_back(k.kind);
  std::sort(names.begin(), names.end());
  return names;
}

std::string ParamNames(const FaultKindInfo& kind) {
  std::vector<std::string> names;
  for (const ParamSpec& p : kind.params) {
    bool clashes =
        std::find(kFaultFields.begin(), kFaultFields.end(), p.name) != kFaultFields.end();
    names.push_back(clashes ? absl::StrCat(p.name, " (under params:)") : p.name);
  }
  return names.empty() ? "none" : absl::StrJoin(names, ", ");
}

// The parameter value as the FaultSpec carries it: a scalar as written, a list of scalars
// joined with commas for list-typed parameters.
std::optional<std::string> ParamValue(FieldReader& r, const ParamSpec& spec, const YamlNode* node,
                                      const std::string& path) {
  r.Record(path, node);
  if (node->is_scalar()) return node->value;
  if (node->is_sequence() && IsListType(spec.type)) {
    std::vector<std::string> parts;
    for (size_t i = 0; i < node->items.size(); ++i) {
      auto s = r.NonEmptyString(node->items[i], IndexPath(path, i),
                                absl::StrCat("a ", ParamTypeName(spec.type), " item"));
      if (!s) return std::nullopt;
      parts.push_back(*s);
    }
    if (parts.empty()) {
      r.Error(node, path,
              absl::StrCat("expected a ", ParamTypeName(spec.type), ", found an empty list"));
      return std::nullopt;
    }
    return absl::StrJoin(parts, ",");
  }
  r.Error(node, path,
          absl::StrCat("expected a ", ParamTypeName(spec.type),
                       IsListType(spec.type) ? " (a value or a list)" : " (a single value)",
                       ", found ", node->Describe()));
  return std::nullopt;
}

// Always returns an entry (default-valued where unreadable) so faults[i] in the Scenario
// is faults[i] in the file.
ScenarioFault ReadFault(FieldReader& r, const YamlNode* node, const std::string& path,
                        const FaultCatalog& catalog) {
  ScenarioFault fault;
  fault.location = node->location;
  auto f = r.OpenMapping(node, path, "a fault");
  if (!f) return fault;
  if (const YamlNode* n = r.Require(*f, "name", "the fault's name (e.g. kill-replica)")) {
    if (auto v = ReadName(r, n, f->PathOf("name"))) fault.name = *v;
  }
  const FaultKindInfo* kind = nullptr;
  const std::vector<std::string> kinds = KindNames(catalog);
  if (const YamlNode* n = r.Require(*f, "kind", "a fault kind (see `chaosdrill faults`)")) {
    if (auto v = r.NonEmptyString(n, f->PathOf("kind"), "a fault kind")) {
      for (const FaultKindInfo& k : catalog) {
        if (k.kind == *v) kind = &k;
      }
      if (kind == nullptr) {
        std::string suggestion = DidYouMean(*v, kinds);
        r.Error(
            n, f->PathOf("kind"),
            absl::StrCat(
                "unknown fault kind ", n->Describe(), suggestion.empty() ? "" : ";", suggestion,
                " (known kinds: ",
                kinds.empty() ? "none registered in this build" : absl::StrJoin(kinds, ", "), ")"));
      } else {
        fault.spec.kind = *v;
      }
    }
  }
  if (const YamlNode* n = r.Require(*f, "at", "when to inject, from drill start (e.g. 15s)")) {
    if (auto v = r.Duration(n, f->PathOf("at"), true, absl::Hours(24))) fault.at = *v;
  }
  if (const YamlNode* n = f->Get("duration")) {
    if (kind != nullptr && !kind->takes_duration) {
      r.Record(f->PathOf("duration"), n);
      r.Error(n, f->PathOf("duration"),
              absl::StrCat(kind->kind,
                           " is instantaneous and takes no duration; expected no "
                           "duration field, found ",
                           n->Describe()));
    } else {
      fault.spec.duration = r.Duration(n, f->PathOf("duration"), false, absl::Hours(24));
    }
  }
  if (const YamlNode* n = r.Require(*f, "target",
                                    "where to inject: {role: ...}, {agent: ...} or "
                                    "{selector: ...}")) {
    fault.target = ReadFaultTarget(r, n, f->PathOf("target"));
  }
  if (const YamlNode* n = f->Get("allow_majority")) {
    if (auto v = r.Bool(n, f->PathOf("allow_majority"))) fault.allow_majority = *v;
  }
  // Everything else is a parameter of the kind, inline or under `params:` (the way to
  // give a parameter whose name is also a fault field, such as proxy.reset's target).
  struct Param {
    const YamlNode* key;
    const YamlNode* value;
    std::string path;
  };
  std::vector<Param> params;
  for (const auto& [key, value] : node->entries) {
    if (!key->is_scalar()) continue;  // reported by OpenMapping
    const std::string& name = key->value;
    if (std::find(kFaultFields.begin(), kFaultFields.end(), name) != kFaultFields.end()) continue;
    if (f->Get(name) != value) continue;  // a duplicate, already reported
    params.push_back({key, value, f->PathOf(name)});
  }
  if (const YamlNode* n = f->Get("params")) {
    if (auto m = r.OpenMapping(n, f->PathOf("params"), "fault parameters")) {
      for (const auto& [key, value] : n->entries) {
        if (!key->is_scalar() || m->Get(key->value) != value) continue;
        if (f->Has(key->value) &&
            std::find(kFaultFields.begin(), kFaultFields.end(), key->value) == kFaultFields.end()) {
          r.Error(key, m->PathOf(key->value),
                  absl::StrCat("parameter \"", key->value,
                               "\" is given twice, inline and under params; expected it once"));
          continue;
        }
        params.push_back({key, value, m->PathOf(key->value)});
      }
    }
  }
  std::set<std::string> given;
  std::vector<std::string> candidates = kFaultFields;
  if (kind != nullptr) {
    for (const ParamSpec& p : kind->params) candidates.push_back(p.name);
  }
  for (const Param& p : params) {
    const std::string& name = p.key->value;
    given.insert(name);
    if (kind == nullptr) {
      r.Record(p.path, p.value);  // cannot be checked without a known kind
      continue;
    }
    const ParamSpec* spec = kind->Find(name);
    if (spec == nullptr) {
      std::string suggestion = DidYouMean(name, candidates);
      r.Error(p.key, p.path,
              absl::StrCat("unknown parameter \"", name, "\" for ", kind->kind,
                           suggestion.empty() ? "" : ";", suggestion, " (parameters of ",
                           kind->kind, ": ", ParamNames(*kind),
                           "; fault fields: ", absl::StrJoin(kFaultFields, ", "), ")"));
      continue;
    }
    std::optional<std::string> v = ParamValue(r, *spec, p.value, p.path);
    if (!v) continue;
    if (absl::Status st = ValidateParamValue(*spec, *v); !st.ok()) {
      r.Error(p.value, p.path, absl::StrCat(spec->name, " of ", kind->kind, ": ", st.message()));
      continue;
    }
    fault.spec.params[name] = *v;
  }
  if (kind != nullptr) {
    // When the target could not be read, don't guess which parameters it would supply.
    bool by_role = fault.target.role.has_value() || r.errors().TouchesError(f->PathOf("target"));
    for (const ParamSpec& p : kind->params) {
      if (!p.required || given.count(p.name) > 0) continue;
      if (p.name == "duration") {
        if (!f->Has("duration")) {
          r.Error(node, f->PathOf("duration"),
                  absl::StrCat("required field is missing; ", kind->kind,
                               " needs a duration (e.g. 30s)"));
        }
        continue;
      }
      if (by_role && std::find(kRoleResolvedParams.begin(), kRoleResolvedParams.end(), p.name) !=
                         kRoleResolvedParams.end()) {
        continue;  // the runner derives it from the role
      }
      r.Error(node, f->PathOf(p.name),
              absl::StrCat("required parameter of ", kind->kind, " is missing; expected a ",
                           ParamTypeName(p.type), p.doc.empty() ? "" : ": ", p.doc));
    }
  }
  return fault;
}

// A Prometheus base URL: "http://host[:port][/prefix]". The probes' HTTP client speaks
// plain HTTP/1.1 only (runner/prometheus_client.h), so https is refused here rather than
// failing at drill time.
std::optional<std::string> ReadHttpUrl(FieldReader& r, const YamlNode* node,
                                       const std::string& path) {
  constexpr absl::string_view kExpected = "an http:// URL (e.g. http://127.0.0.1:9090)";
  auto v = r.NonEmptyString(node, path, kExpected);
  if (!v) return std::nullopt;
  auto fail = [&](absl::string_view why) {
    r.Error(node, path, absl::StrCat(why, "; expected ", kExpected, ", found ", node->Describe()));
    return std::nullopt;
  };
  if (absl::StartsWith(*v, "https://")) {
    return fail("https is not supported (the probe speaks plain HTTP to Prometheus)");
  }
  if (!absl::StartsWith(*v, "http://")) return fail("not an http:// URL");
  absl::string_view rest = absl::string_view(*v).substr(7);
  if (rest.find_first_of("?#@ ") != absl::string_view::npos) {
    return fail("a base URL has no query, fragment, user info or spaces");
  }
  absl::string_view authority = rest.substr(0, rest.find('/'));
  absl::string_view host = authority;
  absl::string_view port;
  if (absl::StartsWith(authority, "[")) {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) return fail("unclosed [ in the host");
    host = authority.substr(0, close + 1);
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return fail("junk after the ] of the host");
    if (!after.empty()) port = after.substr(1);
  } else if (size_t colon = authority.rfind(':'); colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return fail("a : with no port");
  }
  if (host.empty() || (host.find(':') != absl::string_view::npos && host.front() != '[')) {
    return fail("no host (IPv6 hosts go in brackets)");
  }
  int p = 80;
  if (!port.empty() && (!absl::SimpleAtoi(port, &p) || p < 1 || p > 65535)) {
    return fail("the port must be 1..65535");
  }
  return v;
}

std::vector<Probe> ReadProbes(FieldReader& r, const YamlNode* node) {
  std::vector<Probe> probes;
  auto items = r.List(node, "probes", "a list of probes");
  if (!items) return probes;
  for (size_t i = 0; i < items->size(); ++i) {
    std::string path = IndexPath("probes", i);
    const YamlNode* item = (*items)[i];
    Probe p;
    p.location = item->location;
    auto f = r.Mapping(item, path,
                       {"name", "every", "timeout", "prometheus", "golden", "ready", "alert"},
                       "a probe");
    if (!f) {
      probes.push_back(std::move(p));  // keeps probes[i] aligned with the file
      continue;
    }
    if (const YamlNode* n = r.Require(*f, "name", "the probe's name (e.g. gateway-errors)")) {
      if (auto v = ReadName(r, n, f->PathOf("name"))) p.name = *v;
    }
    if (const YamlNode* n = f->Get("every")) {
      if (auto v = r.Duration(n, f->PathOf("every"), false, absl::Hours(1))) p.every = *v;
    }
    if (const YamlNode* n = f->Get("timeout")) {
      if (auto v = r.Duration(n, f->PathOf("timeout"), false, kMaxLatency)) p.timeout = *v;
    } else {
      p.timeout = std::min(p.timeout, p.every);  // a sample ends before the next is due
    }
    int kinds = f->Has("prometheus") + f->Has("golden") + f->Has("ready") + f->Has("alert");
    if (kinds != 1) {
      r.Error(item, path,
              absl::StrCat(
                  "expected exactly one probe kind: prometheus, golden, ready or alert; found ",
                  kinds == 0 ? "none" : "several"));
      probes.push_back(std::move(p));
      continue;
    }
    if (const YamlNode* n = f->Get("prometheus")) {
      std::string ppath = f->PathOf("prometheus");
      if (auto m = r.Mapping(n, ppath, {"url", "query", "below", "above"}, "a prometheus probe")) {
        PrometheusProbe prom;
        if (const YamlNode* x =
                r.Require(*m, "url", "the Prometheus base URL (http://host:9090)")) {
          if (auto v = ReadHttpUrl(r, x, m->PathOf("url"))) prom.url = *v;
        }
        if (const YamlNode* x = r.Require(*m, "query", "a PromQL expression")) {
          if (auto v = r.NonEmptyString(x, m->PathOf("query"), "a PromQL expression")) {
            prom.query = *v;
          }
        }
        if (const YamlNode* x = m->Get("below")) prom.below = r.Number(x, m->PathOf("below"));
        if (const YamlNode* x = m->Get("above")) prom.above = r.Number(x, m->PathOf("above"));
        if (!m->Has("below") && !m->Has("above")) {
          r.Error(n, ppath,
                  "expected a threshold: below (healthy while the value is below it) or above");
        }
        p.check = prom;
      }
    } else if (const YamlNode* n = f->Get("alert")) {
      std::string apath = f->PathOf("alert");
      if (auto m = r.Mapping(n, apath, {"url", "name", "within", "faults"}, "an alert probe")) {
        AlertProbe alert;
        if (const YamlNode* x =
                r.Require(*m, "url", "the Prometheus base URL (http://host:9090)")) {
          if (auto v = ReadHttpUrl(r, x, m->PathOf("url"))) alert.url = *v;
        }
        if (const YamlNode* x =
                r.Require(*m, "name", "the alert's name, as in its alerting rule")) {
          if (auto v = r.NonEmptyString(x, m->PathOf("name"), "an alert name (e.g. ReplicaDown)")) {
            alert.alert = *v;
          }
        }
        if (const YamlNode* x = r.Require(*m, "within",
                                          "how soon after each fault it must fire "
                                          "(e.g. 30s)")) {
          if (auto v = r.Duration(x, m->PathOf("within"), false, absl::Hours(1))) {
            alert.within = *v;
          }
        }
        if (const YamlNode* x = m->Get("faults")) {
          if (auto list = r.List(x, m->PathOf("faults"), "a list of fault names")) {
            for (size_t k = 0; k < list->size(); ++k) {
              if (auto v = ReadName(r, (*list)[k], IndexPath(m->PathOf("faults"), k))) {
                alert.faults.push_back(*v);
              }
            }
          }
        }
        p.check = alert;
      }
    } else if (const YamlNode* n = f->Get("golden")) {
      r.Mapping(n, f->PathOf("golden"), {}, "a golden probe ({})");
      p.check = GoldenProbe{};
    } else if (const YamlNode* n = f->Get("ready")) {
      r.Mapping(n, f->PathOf("ready"), {}, "a ready probe ({})");
      p.check = ReadyProbe{};
    }
    probes.push_back(std::move(p));
  }
  return probes;
}

std::vector<AbortCondition> ReadAbort(FieldReader& r, const YamlNode* node) {
  std::vector<AbortCondition> out;
  auto items = r.List(node, "abort", "a list of abort conditions");
  if (!items) return out;
  for (size_t i = 0; i < items->size(); ++i) {
    std::string path = IndexPath("abort", i);
    const YamlNode* item = (*items)[i];
    AbortCondition a;
    a.location = item->location;
    auto f =
        r.Mapping(item, path, {"success_ratio_below", "p99_above", "for"}, "an abort condition");
    if (!f) {
      out.push_back(a);
      continue;
    }
    if (const YamlNode* n = f->Get("success_ratio_below")) {
      a.success_ratio_below = r.Ratio(n, f->PathOf("success_ratio_below"), 0, true);
    }
    if (const YamlNode* n = f->Get("p99_above")) {
      a.p99_above = r.Duration(n, f->PathOf("p99_above"), false, kMaxLatency);
    }
    if (const YamlNode* n = f->Get("for")) {
      if (auto v = r.Duration(n, f->PathOf("for"), false, absl::Hours(1))) a.for_duration = *v;
    }
    if (!f->Has("success_ratio_below") && !f->Has("p99_above")) {
      r.Error(item, path,
              "expected a condition: success_ratio_below (e.g. 0.5) or p99_above (e.g. 2s)");
    }
    out.push_back(a);
  }
  return out;
}

Slo ReadSlo(FieldReader& r, const YamlNode* node) {
  Slo s;
  auto f = r.Mapping(node, "slo", {"rto", "rpo", "availability", "p99", "error_budget"}, "slo");
  if (!f) return s;
  if (const YamlNode* n = f->Get("rto")) {
    s.rto = r.Duration(n, f->PathOf("rto"), false, absl::Hours(1));
  }
  if (const YamlNode* n = f->Get("rpo")) {
    s.rpo = r.Int(n, f->PathOf("rpo"), 0, 1'000'000'000);
  }
  if (const YamlNode* n = f->Get("availability")) {
    s.availability = r.Ratio(n, f->PathOf("availability"), 0, true);
  }
  if (const YamlNode* n = f->Get("p99"))
    s.p99 = r.Duration(n, f->PathOf("p99"), false, kMaxLatency);
  if (const YamlNode* n = f->Get("error_budget")) {
    std::string path = f->PathOf("error_budget");
    if (auto m = r.Mapping(n, path, {"objective", "window", "max_consumed"}, "error_budget")) {
      ErrorBudget b;
      bool ok = true;
      if (const YamlNode* x = r.Require(*m, "objective",
                                        "the long-term availability objective, "
                                        "e.g. 0.999")) {
        auto v = r.Ratio(x, m->PathOf("objective"), 0, true);
        if (v && *v >= 1) {
          r.Error(x, m->PathOf("objective"),
                  absl::StrCat("expected an objective below 1 (a 100% objective has no error "
                               "budget), found ",
                               x->Describe()));
          v.reset();
        }
        if (v)
          b.objective = *v;
        else
          ok = false;
      } else {
        ok = false;
      }
      if (const YamlNode* x = m->Get("window")) {
        if (auto v = r.Duration(x, m->PathOf("window"), false, absl::Hours(24 * 366))) {
          b.window = *v;
        } else {
          ok = false;
        }
      }
      if (const YamlNode* x = r.Require(*m, "max_consumed",
                                        "the share of the budget this drill "
                                        "may burn, e.g. 5%")) {
        if (auto v = r.Ratio(x, m->PathOf("max_consumed"), 0, true))
          b.max_consumed = *v;
        else
          ok = false;
      } else {
        ok = false;
      }
      if (ok) s.error_budget = b;
    }
  }
  return s;
}

std::optional<int> ParseClock(absl::string_view s) {
  int h = 0, m = 0;
  if (s.size() != 5 || s[2] != ':' || !absl::SimpleAtoi(s.substr(0, 2), &h) ||
      !absl::SimpleAtoi(s.substr(3, 2), &m) || !absl::ascii_isdigit(s[0]) ||
      !absl::ascii_isdigit(s[3]) || h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0)) {
    return std::nullopt;
  }
  return h * 60 + m;
}

std::optional<Guard> ReadGuard(FieldReader& r, const YamlNode* node) {
  auto f = r.Mapping(node, "guard", {"window", "days", "timezone"}, "guard");
  if (!f) return std::nullopt;
  Guard g;
  bool ok = true;
  if (const YamlNode* n = r.Require(*f, "window", "a time window HH:MM-HH:MM (e.g. 09:00-17:00)")) {
    constexpr absl::string_view kExpected = "a time window HH:MM-HH:MM (e.g. 09:00-17:00)";
    if (auto v = r.Scalar(n, f->PathOf("window"), kExpected)) {
      std::vector<absl::string_view> parts = absl::StrSplit(*v, '-');
      std::optional<int> start, end;
      if (parts.size() == 2) {
        start = ParseClock(absl::StripAsciiWhitespace(parts[0]));
        end = ParseClock(absl::StripAsciiWhitespace(parts[1]));
      }
      if (!start || !end || *start == *end) {
        r.Error(n, f->PathOf("window"),
                absl::StrCat("expected ", kExpected, " with different start and end, found ",
                             n->Describe()));
        ok = false;
      } else {
        g.start_minute = *start;
        g.end_minute = *end;
      }
    } else {
      ok = false;
    }
  } else {
    ok = false;
  }
  if (const YamlNode* n = f->Get("days")) {
    static const std::vector<std::string> kDays = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    if (auto items = r.List(n, f->PathOf("days"), "a list of days (mon..sun)")) {
      for (size_t i = 0; i < items->size(); ++i) {
        std::string dpath = IndexPath(f->PathOf("days"), i);
        if (auto v = r.Enum((*items)[i], dpath, kDays)) {
          auto day =
              static_cast<Weekday>(std::find(kDays.begin(), kDays.end(), *v) - kDays.begin());
          if (std::find(g.days.begin(), g.days.end(), day) != g.days.end()) {
            r.Error((*items)[i], dpath,
                    absl::StrCat("expected each day once, found \"", *v, "\" again"));
            ok = false;
          }
          g.days.push_back(day);
        } else {
          ok = false;
        }
      }
    }
  }
  if (const YamlNode* n = f->Get("timezone")) {
    if (auto v =
            r.NonEmptyString(n, f->PathOf("timezone"), "an IANA time zone (e.g. Europe/Berlin)")) {
      absl::TimeZone tz;
      if (absl::LoadTimeZone(*v, &tz)) {
        g.timezone = *v;
      } else {
        r.Error(n, f->PathOf("timezone"),
                absl::StrCat("expected an IANA time zone (e.g. UTC, Europe/Berlin), found ",
                             n->Describe(), " which this machine's zoneinfo does not know"));
        ok = false;
      }
    }
  }
  if (!ok) return std::nullopt;
  return g;
}

ReportOptions ReadReport(FieldReader& r, const YamlNode* node) {
  ReportOptions rep;
  auto f = r.Mapping(node, "report", {"formats", "dir"}, "report");
  if (!f) return rep;
  if (const YamlNode* n = f->Get("formats")) {
    static const std::vector<std::string> kFormats = {"json", "html", "junit", "markdown"};
    if (auto items = r.List(n, f->PathOf("formats"), "a list of report formats")) {
      std::vector<ReportFormat> formats;
      bool ok = true;
      for (size_t i = 0; i < items->size(); ++i) {
        std::string fpath = IndexPath(f->PathOf("formats"), i);
        if (auto v = r.Enum((*items)[i], fpath, kFormats)) {
          auto fmt = static_cast<ReportFormat>(std::find(kFormats.begin(), kFormats.end(), *v) -
                                               kFormats.begin());
          if (std::find(formats.begin(), formats.end(), fmt) != formats.end()) {
            r.Error((*items)[i], fpath,
                    absl::StrCat("expected each format once, found \"", *v, "\" again"));
            ok = false;
          }
          formats.push_back(fmt);
        } else {
          ok = false;
        }
      }
      if (items->empty()) {
        r.Error(n, f->PathOf("formats"),
                "expected at least one of json, html, junit, markdown, found an empty list");
      } else if (ok) {
        rep.formats = formats;
      }
    }
  }
  if (const YamlNode* n = f->Get("dir")) {
    if (auto v = r.NonEmptyString(n, f->PathOf("dir"), "a directory path")) rep.dir = *v;
  }
  return rep;
}

}  // namespace

Scenario ParseScenarioTree(const YamlNode& root, const FaultCatalog& catalog, FieldReader& r) {
  Scenario sc;
  auto f = r.Mapping(&root, "", kRootFields, "a scenario");
  if (!f) return sc;
  if (const YamlNode* n = r.Require(*f, "apiVersion", "chaosdrill/v1")) {
    if (auto v = r.Scalar(n, "apiVersion", "chaosdrill/v1")) {
      if (*v == kApiVersion) {
        sc.api_version = *v;
      } else {
        r.Error(n, "apiVersion",
                absl::StrCat("expected chaosdrill/v1 (the only schema version this build "
                             "reads), found ",
                             n->Describe()));
      }
    }
  }
  if (const YamlNode* n = r.Require(*f, "kind", "Scenario")) {
    if (auto v = r.Scalar(n, "kind", "Scenario"); v && *v != kKind) {
      r.Error(n, "kind", absl::StrCat("expected Scenario, found ", n->Describe()));
    }
  }
  if (const YamlNode* n = r.Require(*f, "metadata", "a mapping with at least a name")) {
    sc.metadata = ReadMetadata(r, n);
  }
  if (const YamlNode* n =
          r.Require(*f, "target", "{reference: {...}} or {endpoint: {address: ..., model: ...}}")) {
    sc.target = ReadTarget(r, n);
  }
  if (const YamlNode* n = f->Get("agents")) sc.agents = ReadAgents(r, n);
  if (const YamlNode* n =
          r.Require(*f, "load", "a mapping with at least rate (e.g. {rate: 200/s})")) {
    sc.load = ReadLoad(r, n);
  }
  if (const YamlNode* n = f->Get("writes")) sc.writes = ReadWrites(r, n);
  if (const YamlNode* n = f->Get("steady_state")) sc.steady_state = ReadSteadyState(r, n);
  if (const YamlNode* n = f->Get("phases")) sc.phases = ReadPhases(r, n);
  if (const YamlNode* n = f->Get("faults")) {
    if (auto items = r.List(n, "faults", "a list of faults")) {
      for (size_t i = 0; i < items->size(); ++i) {
        sc.faults.push_back(ReadFault(r, (*items)[i], IndexPath("faults", i), catalog));
      }
    }
  }
  if (const YamlNode* n = f->Get("probes")) sc.probes = ReadProbes(r, n);
  if (const YamlNode* n = f->Get("abort")) sc.abort = ReadAbort(r, n);
  if (const YamlNode* n = f->Get("slo")) sc.slo = ReadSlo(r, n);
  if (const YamlNode* n = f->Get("guard")) sc.guard = ReadGuard(r, n);
  if (const YamlNode* n = f->Get("report")) sc.report = ReadReport(r, n);
  return sc;
}

}  // namespace chaosdrill::scenarios
