// ReferenceService: the supervisor of the reference inference service (DESIGN §6). It
// starts, on free loopback ports, a Redis primary and replica and three sentinels (real
// redis-server / redis-sentinel), N replicas and the gateway (this binary's `reference
// replica` / `reference gateway`), waits until all are ready, then watches them:
//   - a child that exits is restarted after a delay that doubles per crash (capped, reset
//     after a healthy run), as a kubelet does;
//   - a Redis node is only restarted once the sentinels name another node as primary
//     (it comes back as that node's replica): without persistence, a primary that came
//     back empty before the failover would wipe its replica;
//   - the sentinels are polled, so "store.primary"/"store.replica" follow failovers;
//   - DIR/topology.json is rewritten atomically after every change (reference/topology.h).
// Optionally (open_store_link) the store's replication goes through a TCP proxy that
// someone else owns, so a drill can slow the replication link alone (role "store.link",
// see open_store_link below and docs/reference-inference.md).
// With network "netns" every replica runs in a network namespace of its own, joined to the
// supervisor's by a veth pair (reference/replica_netns.h): it listens on its own address
// there, the gateway dials it through its link, a restart keeps namespace and address, and
// Stop() removes the links (root only).
// All children are started from one supervisor thread, each in its own process group with
// PR_SET_PDEATHSIG, and stopped (SIGTERM, then SIGKILL) by Stop() or the destructor.
//
// Thread safety: topology(), WaitForTopology() and Stop() may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "reference/topology.h"

namespace chaosdrill::reference {

struct ReferenceServiceOptions {
  std::string dir;                    // required; created if missing. Configs, logs, topology.json.
  int replicas = 3;                   // 0: only the store (no replicas, no gateway)
  std::string replication = "async";  // "async" | "sync" (the gateway's session store)
  std::string device = "cpu";
  // "loopback": every child on 127.0.0.1. "netns": each replica in its own network
  // namespace on its own veth link (host side cdr<k>-<i> in the topology as the replica's
  // `interface`), so network.* faults can hit one replica; needs CAP_NET_ADMIN and
  // CAP_SYS_ADMIN (FailedPrecondition saying so otherwise).
  std::string network = "loopback";
  std::string model = "tiny-mlp";
  int width = 256;
  int depth = 4;
  std::string master_name = "chaosdrill";
  // The chaosdrill binary run for `reference replica|gateway`; default /proc/self/exe.
  std::string chaosdrill_binary;
  std::string redis_server = "redis-server";
  std::string redis_sentinel = "redis-sentinel";
  absl::Duration ready_timeout = absl::Seconds(60);
  absl::Duration restart_base = absl::Seconds(1);
  absl::Duration restart_cap = absl::Seconds(30);
  absl::Duration backoff_reset_after = absl::Seconds(60);  // a run this long resets backoff
  int sentinel_down_after_ms = 1000;
  int sentinel_failover_timeout_ms = 3000;
  absl::Duration poll_interval = absl::Milliseconds(200);
  absl::Duration stop_grace = absl::Seconds(5);

  // The replication link (topology role "store.link"). Unset: the replica connects to
  // the primary directly. Set: each Redis node gets a link address (a free loopback
  // port), and Start calls open_store_link(link, node) once per node, before starting
  // the store; it must open a pass-through TCP proxy from `listen` to `upstream` that
  // stays up as long as the service (the runner asks its local agent for a `proxy.latency`
  // fault with latency 0, so the proxy.* faults of a drill aimed at the link compose on
  // it). An error fails Start. The replica then replicates from the link of the current
  // primary, clients and sentinels still talk to the nodes directly, and:
  //   - the sentinels log in as a Redis ACL user that may run REPLICAOF NO ONE (promote)
  //     but not REPLICAOF host port, since they would otherwise "fix" a replica whose
  //     master address differs from the primary's (+fix-slave-config after
  //     failover-timeout) and route replication around the link;
  //   - in their place the supervisor points the non-primary node at the primary's link
  //     whenever it is not (after a failover, or an old primary that came back as a
  //     master), once every answering sentinel names the same primary and it says so.
  // "store.link" in the topology is the link in front of the current primary: address =
  // where the replica connects, upstream = the primary's address, pid 0.
  std::function<absl::Status(const std::string& listen, const std::string& upstream)>
      open_store_link;
};

class Supervisor;

class ReferenceService {
 public:
  // Starts everything and returns once it is ready (store replication link up, sentinels
  // agree and know each other, replicas ready, gateway ServerReady). FailedPrecondition
  // naming scripts/install-deps.sh when redis-server/redis-sentinel are missing. On
  // failure everything started so far is stopped.
  static absl::StatusOr<std::unique_ptr<ReferenceService>> Start(ReferenceServiceOptions options);
  ~ReferenceService();  // Stop()
  ReferenceService(const ReferenceService&) = delete;
  ReferenceService& operator=(const ReferenceService&) = delete;

  Topology topology() const;
  // Waits until `pred(topology)` holds (re-checked on every topology change); false on
  // timeout.
  bool WaitForTopology(const std::function<bool(const Topology&)>& pred, absl::Duration timeout);
  // Stops every child (SIGTERM, then SIGKILL after stop_grace) and the supervisor thread.
  // Idempotent.
  absl::Status Stop();

 private:
  explicit ReferenceService(std::unique_ptr<Supervisor> supervisor);
  std::unique_ptr<Supervisor> supervisor_;
};

}  // namespace chaosdrill::reference
