// ReplicaNetwork: the links of `network: netns` (docs/reference-inference.md, "Replicas on
// their own links"). Each model replica gets a network namespace of its own, joined to the
// namespace the supervisor runs in (the "host") by a veth pair: host side `cdr<k>-<i>`,
// replica side `eth0`, addresses from a /30 per replica (host .4i+1, replica .4i+2 of a
// /24 chosen per run, 10.213.<k>.0/24 or 172.29.<k>.0/24). A fault on the host side of
// replica i's link then touches replica i's traffic only: egress there is traffic to the
// replica, ingress traffic from it.
//
// Made without a shell: the namespace by unshare(CLONE_NEWNET) on a short-lived thread
// that keeps a file descriptor of it (no process holds it, no /run/netns file names it);
// the veth pair, addresses and link state through libnl-route. The supervisor starts each
// replica in its namespace (ChildProcess's netns_fd) and restarts it in the same one, so
// a restarted replica keeps its address and its link.
//
// Lifetime: Close() (and the destructor) deletes the host-side links — their peers go with
// them — and closes the namespace descriptors; a namespace then dies with the last process
// in it. After a crash of the process that owns this object the kernel closes the
// descriptors, the replicas die by PDEATHSIG, and the namespaces and veths go with them:
// nothing outlives the run. Needs CAP_NET_ADMIN and CAP_SYS_ADMIN (root).
//
// Not thread-safe: the supervisor thread owns it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chaosdrill::reference {

// One replica's link.
struct ReplicaLink {
  std::string host_interface;  // "cdr3-1", in the host namespace
  std::string host_ip;         // "10.213.3.5" (the host side's address)
  std::string replica_ip;      // "10.213.3.6": where the replica listens
  int prefix_length = 30;
  int netns_fd = -1;         // the replica's namespace; owned by ReplicaNetwork
  uint64_t netns_inode = 0;  // as /proc/PID/ns/net names it: "net:[inode]"

  std::string HostAddressWithPrefix() const;  // "10.213.3.5/30"
};

// The /24 a run takes, and the prefix of its interface names.
struct RunRange {
  int k = 0;                                     // the run's number: interfaces cdr<k>-<i>
  std::string base;                              // "10.213.3" (first three octets of the /24)
  std::string InterfaceName(int replica) const;  // "cdr3-1" (at most 15 characters)
  std::string HostIp(int replica) const;         // base.(4i+1)
  std::string ReplicaIp(int replica) const;      // base.(4i+2)
};

// An IPv4 prefix in use on the host (an address's subnet or a route's destination).
struct Ipv4Prefix {
  uint32_t address = 0;  // host byte order
  int length = 0;
};

// The candidate ranges in order of preference, skipping `skip_k` ranges already tried:
// k = 0..255 of 10.213.k.0/24, then of 172.29.k.0/24. A candidate is free when no
// interface is named cdr<k>-..., and no prefix in `in_use` overlaps its /24 (default
// routes, length 0, are ignored). FailedPrecondition naming what is in the way when none
// is free.
absl::StatusOr<RunRange> PickRunRange(const std::vector<std::string>& interface_names,
                                      const std::vector<Ipv4Prefix>& in_use, int skip = 0);

class ReplicaNetwork {
 public:
  // Makes `replicas` namespaces and links in the calling thread's network namespace (the
  // host). A range that another run takes between our look and our first link is skipped
  // (the first link's name is the claim: creating it fails with EEXIST). On failure
  // everything made so far is removed. FailedPrecondition naming the missing capability
  // without CAP_NET_ADMIN/CAP_SYS_ADMIN.
  static absl::StatusOr<std::unique_ptr<ReplicaNetwork>> Create(int replicas);
  ~ReplicaNetwork();
  ReplicaNetwork(const ReplicaNetwork&) = delete;
  ReplicaNetwork& operator=(const ReplicaNetwork&) = delete;

  const std::vector<ReplicaLink>& links() const { return links_; }
  const RunRange& range() const { return range_; }

  // Deletes every host-side link (verified: each is gone afterwards) and closes the
  // namespace descriptors. Idempotent; returns the first error, and still closes the rest.
  absl::Status Close();

 private:
  ReplicaNetwork() = default;
  RunRange range_;
  std::vector<ReplicaLink> links_;
  bool closed_ = false;
};

// Whether this process can make replica namespaces: CAP_NET_ADMIN and CAP_SYS_ADMIN in its
// effective set (FailedPrecondition saying which is missing and "run as root"), then for
// real, once per process: a throwaway namespace with a veth pair in it (FailedPrecondition
// with the kernel's answer). What `validate --preflight` and `run --dry-run` report.
absl::Status NetnsPreflight();

}  // namespace chaosdrill::reference
