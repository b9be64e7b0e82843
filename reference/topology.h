// Topology: what the reference service's supervisor is running, as written to
// DIR/topology.json for scenarios, `process.kill` and `reference status`: each role
// ("gateway", "replica[i]", "store.primary", "store.replica", "sentinel[i]", and
// "store.link" when the replication link goes through a proxy) with its pid and address. The
// supervisor rewrites the file atomically (temp file + rename) after every start, restart and
// sentinel failover, so a reader never sees a partial file.
//
// JSON shape:
//   {"version":1, "dir":..., "supervisor_pid":N, "running":true, "replication":"async",
//    "master_name":"chaosdrill", "gateway":"127.0.0.1:P", "metrics":"127.0.0.1:P",
//    "sentinels":["127.0.0.1:P",...], "updated":"RFC3339",
//    "roles":{"gateway":{"pid":N,"address":"...","alive":true,"restarts":0,"log":"..."},...}}
// With "network":"netns" (each replica in its own network namespace) a replica's role also
// has "interface" (the host side of its veth link, e.g. "cdr0-1": network.* faults on the
// replica go there) and "interface_address" (the host side's address, "10.213.0.5/30");
// its "address" is then the replica's own address on that link. "network" is "loopback"
// otherwise (every replica on 127.0.0.1, no interface of its own).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace chaosdrill::reference {

struct RoleInfo {
  pid_t pid = 0;        // 0 while not running
  std::string address;  // host:port it serves on
  bool alive = false;
  int restarts = 0;
  std::string node;  // for store roles: which Redis node ("redis-0"/"redis-1") holds it
  std::string log;   // the child's stdout/stderr log file
  // For "store.link" (a proxy, not a process: pid 0): where it forwards to (the primary).
  std::string upstream;
  // For replicas in network netns: the host side of the replica's veth link and its address.
  std::string interface;
  std::string interface_address;
  friend bool operator==(const RoleInfo&, const RoleInfo&) = default;
};

struct Topology {
  std::string dir;
  pid_t supervisor_pid = 0;
  bool running = false;
  std::string replication;
  std::string master_name;
  std::string network = "loopback";  // "loopback" | "netns"
  std::string gateway;               // gateway gRPC address ("" when no gateway runs)
  std::string metrics;               // gateway metrics address
  std::vector<std::string> sentinels;
  std::map<std::string, RoleInfo> roles;
  friend bool operator==(const Topology&, const Topology&) = default;

  nlohmann::json ToJson() const;
  static absl::StatusOr<Topology> FromJson(const nlohmann::json& j);
  // Writes path.tmp then renames it over path.
  absl::Status WriteAtomically(const std::string& path) const;
  static absl::StatusOr<Topology> Load(const std::string& path);
};

// DIR/topology.json
std::string TopologyPath(const std::string& dir);

}  // namespace chaosdrill::reference
