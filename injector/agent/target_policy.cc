#include "injector/agent/target_policy.h"

#include <arpa/inet.h>
#include <fnmatch.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/quantity.h"
#include "common/status.h"

namespace chaosdrill::agent {
namespace {

uint64_t ReadMemTotal() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  while (in >> key >> kb) {
    if (key == "MemTotal:") return kb * 1024;
    std::string rest;
    std::getline(in, rest);
  }
  return 0;
}

std::string ReadCmdline(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/cmdline"), std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(raw.begin(), raw.end(), '\0', ' ');
  while (!raw.empty() && raw.back() == ' ') raw.pop_back();
  return raw;
}

// The process's cgroup v2 path from its "0::" line, or "".
std::string ReadCgroup(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "0::")) return line.substr(3);
  }
  return "";
}

absl::Status Denied(absl::string_view rule, absl::string_view message) {
  return absl::PermissionDeniedError(absl::StrCat(rule, ": ", message));
}

bool AnyGlob(const std::vector<std::string>& patterns, const std::string& text) {
  for (const auto& p : patterns) {
    if (GlobMatch(p, text)) return true;
  }
  return false;
}

bool Listed(const std::vector<std::string>& patterns, const std::string& text) {
  return std::find(patterns.begin(), patterns.end(), text) != patterns.end();
}

bool IsInterfaceParam(absl::string_view name) {
  return name == "interface" || name == "dev" || name == "iface";
}

}  // namespace

bool GlobMatch(const std::string& pattern, const std::string& text) {
  return ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

absl::StatusOr<std::string> NormalizeCgroup(const std::string& path) {
  absl::string_view v = path;
  absl::ConsumePrefix(&v, "/sys/fs/cgroup");
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(v, '/', absl::SkipEmpty())) {
    if (part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("cgroup \"", path, "\": \".\" and \"..\" are not allowed in a cgroup path"));
    }
    parts.emplace_back(part);
  }
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

NodeFacts NodeFacts::Current(const std::string& tcp_listen) {
  NodeFacts f;
  f.agent_pid = ::getpid();
  f.agent_parent_pid = ::getppid();
  f.memory_bytes = ReadMemTotal();
  if (tcp_listen.empty()) return f;
  std::string host = tcp_listen;
  if (size_t colon = host.rfind(':'); colon != std::string::npos) host = host.substr(0, colon);
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  bool wildcard = host.empty() || host == "0.0.0.0" || host == "::" || host == "*";
  in6_addr want6{};
  in_addr want4{};
  bool is4 = inet_pton(AF_INET, host.c_str(), &want4) == 1;
  bool is6 = !is4 && inet_pton(AF_INET6, host.c_str(), &want6) == 1;
  if (!wildcard && !is4 && !is6) {
    // A host name: resolve nothing; localhost is loopback, anything else may be any
    // interface.
    if (host == "localhost") {
      f.control_interfaces.insert("lo");
      return f;
    }
    wildcard = true;
  }
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    // Cannot tell which interface carries the listener: protect loopback at least (the
    // policy then refuses nothing else on this ground; see docs/agent.md).
    f.control_interfaces.insert("lo");
    return f;
  }
  for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr) continue;
    int family = ifa->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    if (wildcard) {
      // A wildcard listener is reachable on every interface with an address, loopback too.
      f.control_interfaces.insert(ifa->ifa_name);
    } else if (is4 && family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(ifa->ifa_addr);
      if (sin->sin_addr.s_addr == want4.s_addr) f.control_interfaces.insert(ifa->ifa_name);
    } else if (is6 && family == AF_INET6) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(ifa->ifa_addr);
      if (memcmp(&sin6->sin6_addr, &want6, sizeof(want6)) == 0) {
        f.control_interfaces.insert(ifa->ifa_name);
      }
    }
  }
  ::freeifaddrs(list);
  if (wildcard) f.control_interfaces.insert("lo");
  return f;
}

TargetPolicy::TargetPolicy(Allowlist allowlist, NodeFacts facts, absl::Duration max_duration,
                           const injector::FaultRegistry* registry, GpuFacts* gpus)
    : allowlist_(std::move(allowlist)),
      facts_(std::move(facts)),
      max_duration_(max_duration),
      registry_(registry),
      gpus_(gpus) {}

bool TargetPolicy::Protected(absl::string_view name) const {
  return std::find(allowlist_.protected_targets.begin(), allowlist_.protected_targets.end(),
                   name) != allowlist_.protected_targets.end();
}

bool TargetPolicy::KindAllowed(const std::string& kind) const {
  return AnyGlob(allowlist_.kinds, kind);
}

absl::Status TargetPolicy::CheckPid(pid_t pid) const {
  if (pid == 1 && !Protected("pid1")) {
    return Denied("safety.pid1",
                  "PID 1 (init) is never a target unless "
                  "allowlist.protected_targets names pid1");
  }
  if (pid == facts_.agent_pid && !Protected("agent")) {
    return Denied("safety.agent", absl::StrCat("pid ", pid,
                                               " is the agent itself; it is never a target "
                                               "unless allowlist.protected_targets names agent"));
  }
  if (pid == facts_.agent_parent_pid && !Protected("agent_parent")) {
    return Denied("safety.agent_parent",
                  absl::StrCat("pid ", pid,
                               " is the agent's parent; it is never a target unless "
                               "allowlist.protected_targets names agent_parent"));
  }
  if (allowlist_.processes.empty()) {
    return Denied("allowlist.processes", "no process targets are allowed on this agent");
  }
  if (Listed(allowlist_.processes, "*")) return absl::OkStatus();
  std::string cmdline = ReadCmdline(pid);
  for (const auto& pattern : allowlist_.processes) {
    try {
      if (std::regex_search(cmdline, std::regex(pattern))) return absl::OkStatus();
    } catch (const std::regex_error&) {
      continue;
    }
  }
  return Denied("allowlist.processes",
                absl::StrCat("pid ", pid, " (\"", cmdline, "\") matches no allowed pattern"));
}

absl::Status TargetPolicy::CheckInterface(const std::string& name) const {
  if (facts_.control_interfaces.count(name) > 0 && !Protected("control_interface") &&
      !Listed(allowlist_.interfaces, name)) {
    return Denied("safety.control_interface",
                  absl::StrCat("interface ", name,
                               " carries the agent's own control traffic; it is a target only "
                               "if allowlist.interfaces names it exactly or "
                               "allowlist.protected_targets names control_interface"));
  }
  if (!AnyGlob(allowlist_.interfaces, name)) {
    return Denied("allowlist.interfaces",
                  absl::StrCat("interface ", name, " is not in the agent's allowlist"));
  }
  return absl::OkStatus();
}

absl::Status TargetPolicy::CheckAllInterfaces(const std::string& kind) const {
  if (!Protected("control_interface")) {
    for (const std::string& name : facts_.control_interfaces) {
      if (!Listed(allowlist_.interfaces, name)) {
        return Denied("safety.control_interface",
                      absl::StrCat(kind, " without an interface acts on every interface, ", name,
                                   " included, which carries the agent's own control traffic; "
                                   "give interface=, or name ",
                                   name, " exactly in allowlist.interfaces"));
      }
    }
  }
  if (!Listed(allowlist_.interfaces, "*")) {
    return Denied("allowlist.interfaces",
                  absl::StrCat(kind,
                               " without an interface acts on every interface; that needs \"*\" "
                               "in allowlist.interfaces (or give interface=)"));
  }
  return absl::OkStatus();
}

absl::Status TargetPolicy::CheckCgroup(const std::string& kind, const std::string& value) const {
  ASSIGN_OR_RETURN(std::string cgroup, NormalizeCgroup(value));
  bool allowed = Listed(allowlist_.cgroups, "*");
  for (const std::string& pattern : allowlist_.cgroups) {
    if (allowed) break;
    absl::StatusOr<std::string> p = NormalizeCgroup(pattern);
    allowed = p.ok() && GlobMatch(*p, cgroup);
  }
  if (!allowed) {
    return Denied("allowlist.cgroups",
                  absl::StrCat("cgroup ", cgroup, " is not in the agent's allowlist"));
  }
  // A selector picks every process in the cgroup or below: a protected process there
  // would be hit. (Placement of stress workers into a cgroup hits nobody.)
  if (!absl::StartsWith(kind, "stress.")) {
    for (pid_t pid : {pid_t{1}, facts_.agent_pid, facts_.agent_parent_pid}) {
      if (pid <= 0) continue;
      std::string in = ReadCgroup(pid);
      if (in.empty()) continue;
      if (cgroup == "/" || in == cgroup || absl::StartsWith(in, cgroup + "/")) {
        RETURN_IF_ERROR(CheckPid(pid));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TargetPolicy::CheckGpuShare(const FaultSpec& spec, const std::string& name,
                                         const std::string& value) const {
  if (!allowlist_.max_gpu_fraction) return absl::OkStatus();
  const double limit = *allowlist_.max_gpu_fraction;
  double fraction = 0;
  if (name == "fraction" || name == "sm_fraction") {
    auto r = ParseRatio(value);
    if (!r.ok()) return absl::OkStatus();  // the kind's own validation reports it
    fraction = *r;
  } else {  // size or leave_free: bytes, judged against the device's total memory
    auto bytes = ParseSize(value);
    if (!bytes.ok()) return absl::OkStatus();
    int64_t device = 0;
    if (auto d = spec.Get("device")) (void)absl::SimpleAtoi(*d, &device);
    uint64_t total = 0;
    std::string why = "no GPU facts";
    if (gpus_ != nullptr) {
      for (const GpuDeviceFacts& g : gpus_->Devices()) {
        if (g.index == device) total = g.memory_bytes;
      }
      why = gpus_->error();
      if (why.empty()) why = absl::StrCat("device ", device, " not found");
    }
    if (total == 0) {
      return Denied("allowlist.max_gpu_fraction",
                    absl::StrCat(name, "=", value, " is in bytes, and the share of GPU ", device,
                                 "'s memory it takes cannot be computed (", why,
                                 "); give fraction= instead"));
    }
    double share = static_cast<double>(*bytes) / static_cast<double>(total);
    fraction = name == "leave_free" ? 1.0 - share : share;
  }
  if (fraction > limit) {
    return Denied("allowlist.max_gpu_fraction",
                  absl::StrCat(name, "=", value, " is ", fraction,
                               " of the device, above the agent's maximum ", limit));
  }
  return absl::OkStatus();
}

absl::Status TargetPolicy::Check(const FaultSpec& requested) const {
  if (!KindAllowed(requested.kind)) {
    return Denied("allowlist.kinds",
                  absl::StrCat("fault kind ", requested.kind, " is not in the agent's allowlist"));
  }
  if (requested.duration && *requested.duration > max_duration_) {
    return Denied("limits.max_duration",
                  absl::StrCat("duration ", DurationToString(*requested.duration),
                               " exceeds the agent's maximum ", DurationToString(max_duration_)));
  }
  // Judge what the fault will use: the kind's defaults for what the request leaves out.
  FaultSpec spec = requested;
  const FaultKindInfo* info = nullptr;
  if (registry_ != nullptr) {
    if (auto factory = registry_->Find(spec.kind); factory.ok()) info = &(*factory)->info();
  }
  bool optional_interface_omitted = false;
  if (info != nullptr) {
    for (const ParamSpec& p : info->params) {
      if (spec.params.count(p.name) > 0) continue;
      if (!p.default_value.empty()) {
        spec.params[p.name] = p.default_value;
      } else if (IsInterfaceParam(p.name) && !p.required) {
        optional_interface_omitted = true;
      }
    }
  }
  if (optional_interface_omitted) {
    bool any = false;
    for (const auto& [name, value] : spec.params) any = any || IsInterfaceParam(name);
    if (!any) RETURN_IF_ERROR(CheckAllInterfaces(spec.kind));
  }
  const bool gpu = absl::StartsWith(spec.kind, "gpu.");
  for (const auto& [name, value] : spec.params) {
    if (name == "pid") {
      for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
        int64_t pid = 0;
        if (!absl::SimpleAtoi(part, &pid) || pid <= 0) {
          return absl::InvalidArgumentError(absl::StrCat("parameter pid: bad pid \"", part, "\""));
        }
        RETURN_IF_ERROR(CheckPid(static_cast<pid_t>(pid)));
      }
    } else if (name == "exe" || name == "cmdline") {
      if (!Listed(allowlist_.processes, "*") && !Listed(allowlist_.processes, value)) {
        return Denied("allowlist.processes",
                      absl::StrCat("pattern ", name, "=\"", value,
                                   "\" is not one of the agent's allowed process patterns"));
      }
      // The pattern must not match a protected process now.
      for (pid_t pid : {pid_t{1}, facts_.agent_pid, facts_.agent_parent_pid}) {
        if (pid <= 0) continue;
        std::string text = ReadCmdline(pid);
        if (name == "exe") {
          char buf[4096];
          ssize_t n = ::readlink(absl::StrCat("/proc/", pid, "/exe").c_str(), buf, sizeof(buf));
          text = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
        }
        bool match = false;
        try {
          match = !text.empty() && std::regex_search(text, std::regex(value));
        } catch (const std::regex_error&) {
          return absl::InvalidArgumentError(absl::StrCat("parameter ", name, ": bad regex"));
        }
        if (match) RETURN_IF_ERROR(CheckPid(pid));
      }
    } else if (name == "cgroup") {
      RETURN_IF_ERROR(CheckCgroup(spec.kind, value));
    } else if (IsInterfaceParam(name)) {
      RETURN_IF_ERROR(CheckInterface(value));
    } else if (gpu && name == "device") {
      int64_t index = -1;
      if (!absl::SimpleAtoi(value, &index) ||
          std::find(allowlist_.gpu_devices.begin(), allowlist_.gpu_devices.end(), index) ==
              allowlist_.gpu_devices.end()) {
        return Denied("allowlist.gpu_devices",
                      absl::StrCat("GPU device ", value,
                                   requested.params.count("device") ? "" : " (the default)",
                                   " is not in the agent's allowlist"));
      }
    } else if (gpu && name == "pci") {
      bool allowed = false;
      if (gpus_ != nullptr) {
        for (const GpuDeviceFacts& g : gpus_->Devices()) {
          if (!g.pci_bus_id.empty() && absl::StartsWithIgnoreCase(g.pci_bus_id, value) &&
              std::find(allowlist_.gpu_devices.begin(), allowlist_.gpu_devices.end(), g.index) !=
                  allowlist_.gpu_devices.end()) {
            allowed = true;
          }
        }
      }
      if (!allowed) {
        return Denied("allowlist.gpu_devices",
                      absl::StrCat("pci ", value,
                                   " is not the PCI bus id of an allowed GPU device on this node"));
      }
    } else if ((name == "cores" || name == "workers") && allowlist_.max_cpu_cores) {
      int64_t cores = 0;
      if (absl::SimpleAtoi(value, &cores) && cores > *allowlist_.max_cpu_cores) {
        return Denied("allowlist.max_cpu_cores",
                      absl::StrCat(cores, " cores exceed the agent's maximum of ",
                                   *allowlist_.max_cpu_cores));
      }
    } else if (gpu && (name == "size" || name == "leave_free" || name == "fraction" ||
                       name == "sm_fraction")) {
      RETURN_IF_ERROR(CheckGpuShare(spec, name, value));
    } else if (absl::StartsWith(spec.kind, "stress.") && name == "size" &&
               allowlist_.max_memory_fraction) {
      auto s = ParseSizeOrPercent(value);
      if (!s.ok()) continue;  // the kind's own validation reports it
      double fraction = s->fraction;
      if (s->bytes) {
        if (facts_.memory_bytes == 0) {
          return Denied(
              "allowlist.max_memory_fraction",
              absl::StrCat("size=", value, " is in bytes and this node's MemTotal is unknown"));
        }
        fraction = static_cast<double>(*s->bytes) / static_cast<double>(facts_.memory_bytes);
      }
      if (fraction > *allowlist_.max_memory_fraction) {
        return Denied("allowlist.max_memory_fraction",
                      absl::StrCat("size=", value, " is ", fraction,
                                   " of this node's memory, above the agent's maximum ",
                                   *allowlist_.max_memory_fraction));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace chaosdrill::agent
