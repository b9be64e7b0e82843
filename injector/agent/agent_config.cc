#include "injector/agent/agent_config.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "common/quantity.h"
#include "common/status.h"
#include "injector/agent/pki.h"

namespace chaosdrill::agent {
namespace {

// Error naming file:line and the field.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  absl::Status Error(const YAML::Node& node, absl::string_view field, absl::string_view msg) {
    int line = node.IsDefined() ? node.Mark().line + 1 : 0;
    return absl::InvalidArgumentError(line > 0
                                          ? absl::StrCat(source_, ":", line, ": ", field, ": ", msg)
                                          : absl::StrCat(source_, ": ", field, ": ", msg));
  }

  absl::Status Keys(const YAML::Node& map, absl::string_view field,
                    const std::set<std::string>& known) {
    if (!map.IsMap()) return Error(map, field, "expected a mapping");
    for (const auto& kv : map) {
      std::string key = kv.first.as<std::string>();
      if (known.count(key) == 0) {
        std::string list;
        for (const auto& k : known) absl::StrAppend(&list, list.empty() ? "" : ", ", k);
        return Error(kv.first, field.empty() ? key : absl::StrCat(field, ".", key),
                     absl::StrCat("unknown key (known: ", list, ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status String(const YAML::Node& node, absl::string_view field, std::string* out) {
    if (!node) return absl::OkStatus();
    if (!node.IsScalar()) return Error(node, field, "expected a string");
    *out = node.as<std::string>();
    return absl::OkStatus();
  }

  absl::Status Strings(const YAML::Node& node, absl::string_view field,
                       std::vector<std::string>* out) {
    if (!node) return absl::OkStatus();
    if (node.IsScalar()) {
      out->push_back(node.as<std::string>());
      return absl::OkStatus();
    }
    if (!node.IsSequence()) return Error(node, field, "expected a list of strings");
    for (const auto& item : node) {
      if (!item.IsScalar()) return Error(item, field, "expected a string");
      out->push_back(item.as<std::string>());
    }
    return absl::OkStatus();
  }

  absl::Status Int(const YAML::Node& node, absl::string_view field, int64_t* out) {
    try {
      *out = node.as<int64_t>();
    } catch (const YAML::Exception&) {
      return Error(node, field, "expected an integer");
    }
    if (*out < 0) return Error(node, field, "expected a non-negative integer");
    return absl::OkStatus();
  }

  absl::Status Fraction(const YAML::Node& node, absl::string_view field,
                        std::optional<double>* out) {
    if (!node) return absl::OkStatus();
    if (!node.IsScalar()) return Error(node, field, "expected a fraction like 0.5 or 50%");
    std::string text = node.as<std::string>();
    auto ratio = ParseRatio(text);
    if (!ratio.ok()) return Error(node, field, ratio.status().message());
    *out = *ratio;
    return absl::OkStatus();
  }

  absl::Status Duration(const YAML::Node& node, absl::string_view field, absl::Duration* out) {
    if (!node) return absl::OkStatus();
    if (!node.IsScalar()) return Error(node, field, "expected a duration like 10s");
    auto d = ParseDuration(node.as<std::string>());
    if (!d.ok()) return Error(node, field, d.status().message());
    if (*d <= absl::ZeroDuration()) return Error(node, field, "must be positive");
    *out = *d;
    return absl::OkStatus();
  }

 private:
  std::string source_;
};

absl::Status ParseAllowlist(Reader& r, const YAML::Node& node, Allowlist* a) {
  if (!node) return absl::OkStatus();
  if (absl::Status st =
          r.Keys(node, "allowlist",
                 {"kinds", "interfaces", "processes", "cgroups", "gpu_devices", "max_cpu_cores",
                  "max_memory_fraction", "max_gpu_fraction", "protected_targets"});
      !st.ok()) {
    return st;
  }
  RETURN_IF_ERROR(r.Strings(node["kinds"], "allowlist.kinds", &a->kinds));
  RETURN_IF_ERROR(r.Strings(node["interfaces"], "allowlist.interfaces", &a->interfaces));
  RETURN_IF_ERROR(r.Strings(node["processes"], "allowlist.processes", &a->processes));
  RETURN_IF_ERROR(r.Strings(node["cgroups"], "allowlist.cgroups", &a->cgroups));
  if (const YAML::Node gpus = node["gpu_devices"]) {
    if (!gpus.IsSequence()) return r.Error(gpus, "allowlist.gpu_devices", "expected a list");
    for (const auto& item : gpus) {
      int64_t v = 0;
      RETURN_IF_ERROR(r.Int(item, "allowlist.gpu_devices", &v));
      a->gpu_devices.push_back(static_cast<int>(v));
    }
  }
  if (const YAML::Node cores = node["max_cpu_cores"]) {
    int64_t v = 0;
    RETURN_IF_ERROR(r.Int(cores, "allowlist.max_cpu_cores", &v));
    a->max_cpu_cores = v;
  }
  RETURN_IF_ERROR(r.Fraction(node["max_memory_fraction"], "allowlist.max_memory_fraction",
                             &a->max_memory_fraction));
  RETURN_IF_ERROR(
      r.Fraction(node["max_gpu_fraction"], "allowlist.max_gpu_fraction", &a->max_gpu_fraction));
  RETURN_IF_ERROR(
      r.Strings(node["protected_targets"], "allowlist.protected_targets", &a->protected_targets));
  static const std::set<std::string> kProtected = {"pid1", "agent", "agent_parent",
                                                   "control_interface"};
  for (const auto& t : a->protected_targets) {
    if (kProtected.count(t) == 0) {
      return r.Error(node["protected_targets"], "allowlist.protected_targets",
                     absl::StrCat("unknown target \"", t,
                                  "\" (known: pid1, agent, agent_parent, control_interface)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AgentConfig> Parse(const YAML::Node& root, const std::string& source) {
  Reader r(source);
  AgentConfig c;
  c.source = source;
  if (!root || root.IsNull()) return absl::InvalidArgumentError(source + ": empty config");
  RETURN_IF_ERROR(r.Keys(root, "",
                         {"listen", "tls", "journal", "audit_log", "lease_ttl", "max_lease_ttl",
                          "max_duration", "metrics_listen", "unix_allowed_uids", "allowlist"}));
  if (const YAML::Node listen = root["listen"]) {
    RETURN_IF_ERROR(r.Keys(listen, "listen", {"tcp", "unix"}));
    RETURN_IF_ERROR(r.String(listen["tcp"], "listen.tcp", &c.tcp_listen));
    RETURN_IF_ERROR(r.String(listen["unix"], "listen.unix", &c.unix_listen));
    if (!c.unix_listen.empty() && c.unix_listen.rfind("unix:", 0) == 0) {
      c.unix_listen = c.unix_listen.substr(5);
    }
  }
  if (c.tcp_listen.empty() && c.unix_listen.empty()) {
    return r.Error(root["listen"], "listen", "needs tcp: HOST:PORT and/or unix: PATH");
  }
  if (const YAML::Node tls = root["tls"]) {
    RETURN_IF_ERROR(r.Keys(tls, "tls", {"ca", "cert", "key", "allowed_subjects"}));
    RETURN_IF_ERROR(r.String(tls["ca"], "tls.ca", &c.tls.ca));
    RETURN_IF_ERROR(r.String(tls["cert"], "tls.cert", &c.tls.cert));
    RETURN_IF_ERROR(r.String(tls["key"], "tls.key", &c.tls.key));
    RETURN_IF_ERROR(
        r.Strings(tls["allowed_subjects"], "tls.allowed_subjects", &c.tls.allowed_subjects));
  }
  if (!c.tcp_listen.empty() && (c.tls.ca.empty() || c.tls.cert.empty() || c.tls.key.empty())) {
    return r.Error(root["listen"]["tcp"], "listen.tcp",
                   "a TCP listener needs mutual TLS: set tls.ca, tls.cert and tls.key (create "
                   "them with `chaosdrill agent init-pki`); there is no insecure TCP mode");
  }
  RETURN_IF_ERROR(r.String(root["journal"], "journal", &c.journal));
  RETURN_IF_ERROR(r.String(root["audit_log"], "audit_log", &c.audit_log));
  RETURN_IF_ERROR(r.String(root["metrics_listen"], "metrics_listen", &c.metrics_listen));
  RETURN_IF_ERROR(r.Duration(root["lease_ttl"], "lease_ttl", &c.lease_ttl));
  RETURN_IF_ERROR(r.Duration(root["max_lease_ttl"], "max_lease_ttl", &c.max_lease_ttl));
  RETURN_IF_ERROR(r.Duration(root["max_duration"], "max_duration", &c.max_duration));
  if (c.lease_ttl > c.max_lease_ttl) {
    return r.Error(
        root["lease_ttl"], "lease_ttl",
        absl::StrCat("the default lease ", absl::FormatDuration(c.lease_ttl),
                     " is longer than max_lease_ttl ", absl::FormatDuration(c.max_lease_ttl)));
  }
  if (const YAML::Node uids = root["unix_allowed_uids"]) {
    if (!uids.IsSequence()) return r.Error(uids, "unix_allowed_uids", "expected a list of uids");
    for (const auto& u : uids) {
      int64_t v = 0;
      RETURN_IF_ERROR(r.Int(u, "unix_allowed_uids", &v));
      c.unix_allowed_uids.push_back(static_cast<uint32_t>(v));
    }
  }
  RETURN_IF_ERROR(ParseAllowlist(r, root["allowlist"], &c.allowlist));
  return c;
}

}  // namespace

absl::StatusOr<AgentConfig> ParseAgentConfig(const std::string& yaml, const std::string& source) {
  try {
    return Parse(YAML::Load(yaml), source);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.mark.line + 1, ": ", e.msg));
  }
}

absl::StatusOr<AgentConfig> LoadAgentConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return ParseAgentConfig(text, path);
}

}  // namespace chaosdrill::agent
