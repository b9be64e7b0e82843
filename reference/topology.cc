#include "reference/topology.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status.h"

namespace chaosdrill::reference {

std::string TopologyPath(const std::string& dir) { return dir + "/topology.json"; }

nlohmann::json Topology::ToJson() const {
  nlohmann::json j;
  j["version"] = 1;
  j["dir"] = dir;
  j["supervisor_pid"] = supervisor_pid;
  j["running"] = running;
  j["replication"] = replication;
  j["master_name"] = master_name;
  j["network"] = network;
  j["gateway"] = gateway;
  j["metrics"] = metrics;
  j["sentinels"] = sentinels;
  j["updated"] = absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone());
  nlohmann::json roles_json = nlohmann::json::object();
  for (const auto& [name, r] : roles) {
    nlohmann::json rj = {{"pid", r.pid},
                         {"address", r.address},
                         {"alive", r.alive},
                         {"restarts", r.restarts},
                         {"log", r.log}};
    if (!r.node.empty()) rj["node"] = r.node;
    if (!r.upstream.empty()) rj["upstream"] = r.upstream;
    if (!r.interface.empty()) rj["interface"] = r.interface;
    if (!r.interface_address.empty()) rj["interface_address"] = r.interface_address;
    roles_json[name] = rj;
  }
  j["roles"] = roles_json;
  return j;
}

absl::StatusOr<Topology> Topology::FromJson(const nlohmann::json& j) {
  try {
    Topology t;
    t.dir = j.value("dir", "");
    t.supervisor_pid = j.value("supervisor_pid", 0);
    t.running = j.value("running", false);
    t.replication = j.value("replication", "");
    t.master_name = j.value("master_name", "");
    t.network = j.value("network", "loopback");
    t.gateway = j.value("gateway", "");
    t.metrics = j.value("metrics", "");
    t.sentinels = j.value("sentinels", std::vector<std::string>{});
    for (const auto& [name, rj] : j.at("roles").items()) {
      RoleInfo r;
      r.pid = rj.value("pid", 0);
      r.address = rj.value("address", "");
      r.alive = rj.value("alive", false);
      r.restarts = rj.value("restarts", 0);
      r.node = rj.value("node", "");
      r.log = rj.value("log", "");
      r.upstream = rj.value("upstream", "");
      r.interface = rj.value("interface", "");
      r.interface_address = rj.value("interface_address", "");
      t.roles[name] = r;
    }
    return t;
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("topology: ", e.what()));
  }
}

absl::Status Topology::WriteAtomically(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return ErrnoStatus(absl::StrCat("writing ", tmp));
    out << ToJson().dump(2) << "\n";
    out.flush();
    if (!out) return ErrnoStatus(absl::StrCat("writing ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("renaming ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<Topology> Topology::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoStatus(absl::StrCat("reading topology ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::DataLossError(absl::StrCat("topology ", path, " is not valid JSON"));
  }
  auto t = FromJson(j);
  if (!t.ok()) return Annotate(t.status(), path);
  return t;
}

}  // namespace chaosdrill::reference
