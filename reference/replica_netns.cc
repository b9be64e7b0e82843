#include "reference/replica_netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status.h"

namespace chaosdrill::reference {
namespace {

constexpr char kLog[] = "netns";
constexpr char kReplicaInterface[] = "eth0";
constexpr int kPrefixLength = 30;
// Candidate /24s: 10.213.k.0/24 for k = 0..255, then 172.29.k.0/24 (k = 256..511).
struct Base {
  uint32_t network;  // the /16, host byte order
  const char* text;  // its first two octets
};
constexpr Base kBases[] = {{(10u << 24) | (213u << 16), "10.213"},
                           {(172u << 24) | (29u << 16), "172.29"}};
constexpr int kCandidates = 512;
// Ranges another run claims between our look and our first link: try the next ones.
constexpr int kClaimAttempts = 16;

struct SockDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct LinkDeleter {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct AddrDeleter {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct NlAddrDeleter {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct CacheDeleter {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
using SockPtr = std::unique_ptr<nl_sock, SockDeleter>;
using LinkPtr = std::unique_ptr<rtnl_link, LinkDeleter>;
using AddrPtr = std::unique_ptr<rtnl_addr, AddrDeleter>;
using NlAddrPtr = std::unique_ptr<nl_addr, NlAddrDeleter>;
using CachePtr = std::unique_ptr<nl_cache, CacheDeleter>;

absl::Status NlError(absl::string_view context, int err) {
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (err < 0 ? -err : err) {
    case NLE_PERM:
    case NLE_NOACCESS:
      code = absl::StatusCode::kPermissionDenied;
      break;
    case NLE_EXIST:
      code = absl::StatusCode::kAlreadyExists;
      break;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
      code = absl::StatusCode::kNotFound;
      break;
    case NLE_NOMEM:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case NLE_OPNOTSUPP:
      code = absl::StatusCode::kUnimplemented;
      break;
    default:
      break;
  }
  return absl::Status(code, absl::StrCat(context, ": ", nl_geterror(err)));
}

std::string Ipv4ToString(uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

bool Overlaps(uint32_t a, int la, uint32_t b, int lb) {
  const int l = std::min(la, lb);
  const uint32_t mask = l == 0 ? 0 : ~uint32_t{0} << (32 - l);
  return (a & mask) == (b & mask);
}

absl::StatusOr<SockPtr> Connect() {
  SockPtr sock(nl_socket_alloc());
  if (sock == nullptr) return absl::ResourceExhaustedError("allocating a netlink socket");
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) {
    return NlError("connecting to rtnetlink", err);
  }
  return sock;
}

absl::StatusOr<LinkPtr> GetLink(nl_sock* sock, const std::string& name) {
  rtnl_link* raw = nullptr;
  if (int err = rtnl_link_get_kernel(sock, 0, name.c_str(), &raw); err < 0) {
    return NlError(absl::StrCat("looking up interface ", name), err);
  }
  return LinkPtr(raw);
}

absl::Status SetUp(nl_sock* sock, const std::string& name) {
  ASSIGN_OR_RETURN(LinkPtr link, GetLink(sock, name));
  LinkPtr change(rtnl_link_alloc());
  if (change == nullptr) return absl::ResourceExhaustedError("allocating a link object");
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (int err = rtnl_link_change(sock, link.get(), change.get(), 0); err < 0) {
    return NlError(absl::StrCat("bringing ", name, " up"), err);
  }
  return absl::OkStatus();
}

absl::Status AddAddress(nl_sock* sock, const std::string& name, const std::string& ip) {
  ASSIGN_OR_RETURN(LinkPtr link, GetLink(sock, name));
  const std::string cidr = absl::StrCat(ip, "/", kPrefixLength);
  nl_addr* raw = nullptr;
  if (int err = nl_addr_parse(cidr.c_str(), AF_INET, &raw); err < 0) {
    return NlError(absl::StrCat("parsing ", cidr), err);
  }
  NlAddrPtr local(raw);
  AddrPtr addr(rtnl_addr_alloc());
  if (addr == nullptr) return absl::ResourceExhaustedError("allocating an address object");
  rtnl_addr_set_ifindex(addr.get(), rtnl_link_get_ifindex(link.get()));
  if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0) {
    return NlError(absl::StrCat("preparing address ", cidr), err);
  }
  rtnl_addr_set_prefixlen(addr.get(), kPrefixLength);
  if (int err = rtnl_addr_add(sock, addr.get(), 0); err < 0) {
    return NlError(absl::StrCat("adding ", cidr, " to ", name), err);
  }
  return absl::OkStatus();
}

// A veth pair: `host` here, its peer eth0 created directly in the namespace `ns_fd`.
absl::Status CreateVeth(nl_sock* sock, const std::string& host, int ns_fd) {
  LinkPtr link(rtnl_link_veth_alloc());
  if (link == nullptr) return absl::ResourceExhaustedError("allocating a veth object");
  rtnl_link_set_name(link.get(), host.c_str());
  rtnl_link* peer = rtnl_link_veth_get_peer(link.get());  // a reference of its own
  if (peer == nullptr) return absl::InternalError("libnl made a veth without a peer");
  rtnl_link_set_name(peer, kReplicaInterface);
  rtnl_link_set_ns_fd(peer, ns_fd);
  rtnl_link_put(peer);
  if (int err = rtnl_link_add(sock, link.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    return NlError(absl::StrCat("creating veth pair ", host, " / ", kReplicaInterface), err);
  }
  return absl::OkStatus();
}

// Deletes `name` (a veth: its peer goes too) and checks it is gone. OK when already gone.
absl::Status DeleteLink(nl_sock* sock, const std::string& name) {
  LinkPtr link(rtnl_link_alloc());
  if (link == nullptr) return absl::ResourceExhaustedError("allocating a link object");
  rtnl_link_set_name(link.get(), name.c_str());
  int err = rtnl_link_delete(sock, link.get());
  if (err < 0 && -err != NLE_NODEV && -err != NLE_OBJ_NOTFOUND) {
    return NlError(absl::StrCat("deleting interface ", name), err);
  }
  absl::StatusOr<LinkPtr> still = GetLink(sock, name);
  if (still.ok()) return absl::InternalError(absl::StrCat("interface ", name, " is still there"));
  if (!absl::IsNotFound(still.status())) return still.status();
  return absl::OkStatus();
}

// Runs fn on a short-lived thread inside the network namespace `fd` (netlink sockets
// belong to the namespace of the thread that opens them).
absl::Status InNetns(int fd, const std::function<absl::Status()>& fn) {
  absl::Status result;
  std::thread t([&] {
    pthread_setname_np(pthread_self(), "cd-netns");
    if (setns(fd, CLONE_NEWNET) != 0) {
      result = ErrnoStatus("entering a replica's network namespace (setns)");
      return;
    }
    result = fn();
  });
  t.join();
  return result;
}

// A new network namespace, held by the returned descriptor only, with lo up in it.
// `inside` (optional) runs in it before the thread leaves.
absl::StatusOr<int> NewNamespace(const std::function<absl::Status()>& inside = nullptr) {
  int fd = -1;
  absl::Status result;
  std::thread t([&] {
    pthread_setname_np(pthread_self(), "cd-netns");
    // Only this thread moves; the namespace lives on through the descriptor.
    if (unshare(CLONE_NEWNET) != 0) {
      result = ErrnoStatus("creating a network namespace (unshare CLONE_NEWNET)");
      return;
    }
    fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      result = ErrnoStatus("opening the new namespace (/proc/thread-self/ns/net)");
      return;
    }
    absl::StatusOr<SockPtr> sock = Connect();
    result = sock.ok() ? SetUp(sock->get(), "lo") : sock.status();
    if (result.ok() && inside) result = inside();
  });
  t.join();
  if (!result.ok()) {
    if (fd >= 0) close(fd);
    return result;
  }
  return fd;
}

// What the host namespace already uses: interface names, and IPv4 subnets of addresses
// and destinations of routes (every table).
absl::Status ScanHost(nl_sock* sock, std::vector<std::string>* names,
                      std::vector<Ipv4Prefix>* in_use) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_link_alloc_cache(sock, AF_UNSPEC, &raw); err < 0) {
    return NlError("listing interfaces", err);
  }
  CachePtr links(raw);
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    const char* name = rtnl_link_get_name(reinterpret_cast<rtnl_link*>(o));
    if (name != nullptr) names->push_back(name);
  }
  auto add = [&](nl_addr* a, int length) {
    if (a == nullptr || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != 4) return;
    uint32_t v = 0;
    std::memcpy(&v, nl_addr_get_binary_addr(a), 4);
    in_use->push_back({.address = ntohl(v), .length = length});
  };
  raw = nullptr;
  if (int err = rtnl_addr_alloc_cache(sock, &raw); err < 0) {
    return NlError("listing addresses", err);
  }
  CachePtr addrs(raw);
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    add(rtnl_addr_get_local(a), rtnl_addr_get_prefixlen(a));
  }
  raw = nullptr;
  if (int err = rtnl_route_alloc_cache(sock, AF_INET, 0, &raw); err < 0) {
    return NlError("listing routes", err);
  }
  CachePtr routes(raw);
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    nl_addr* dst = rtnl_route_get_dst(reinterpret_cast<rtnl_route*>(o));
    if (dst != nullptr) add(dst, static_cast<int>(nl_addr_get_prefixlen(dst)));
  }
  return absl::OkStatus();
}

absl::Status CheckCapabilities() {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) {
    return ErrnoStatus("reading this process's capabilities (capget)");
  }
  auto has = [&](int cap) { return ((data[cap / 32].effective >> (cap % 32)) & 1u) != 0; };
  std::vector<std::string> missing;
  if (!has(CAP_NET_ADMIN)) missing.push_back("CAP_NET_ADMIN");
  if (!has(CAP_SYS_ADMIN)) missing.push_back("CAP_SYS_ADMIN");
  if (missing.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "network netns (each replica in its own network namespace, on its own veth link) needs "
      "CAP_NET_ADMIN and CAP_SYS_ADMIN; this process lacks ",
      absl::StrJoin(missing, " and "), ": run as root (sudo)"));
}

}  // namespace

std::string ReplicaLink::HostAddressWithPrefix() const {
  return absl::StrCat(host_ip, "/", prefix_length);
}

std::string RunRange::InterfaceName(int replica) const {
  return absl::StrCat("cdr", k, "-", replica);
}
std::string RunRange::HostIp(int replica) const { return absl::StrCat(base, ".", 4 * replica + 1); }
std::string RunRange::ReplicaIp(int replica) const {
  return absl::StrCat(base, ".", 4 * replica + 2);
}

absl::StatusOr<RunRange> PickRunRange(const std::vector<std::string>& interface_names,
                                      const std::vector<Ipv4Prefix>& in_use, int skip) {
  std::string first_conflict[2];
  for (int c = std::max(skip, 0); c < kCandidates; ++c) {
    const Base& base = kBases[c / 256];
    const uint32_t net = base.network | (static_cast<uint32_t>(c % 256) << 8);
    const std::string prefix = absl::StrCat("cdr", c, "-");
    std::string conflict;
    for (const std::string& name : interface_names) {
      if (absl::StartsWith(name, prefix)) {
        conflict = absl::StrCat("interface ", name, " exists (another run's)");
        break;
      }
    }
    for (const Ipv4Prefix& p : in_use) {
      if (!conflict.empty()) break;
      if (p.length > 0 && Overlaps(p.address, p.length, net, 24)) {
        conflict = absl::StrCat(Ipv4ToString(net), "/24 overlaps ", Ipv4ToString(p.address), "/",
                                p.length, " in use here");
      }
    }
    if (conflict.empty()) {
      return RunRange{.k = c, .base = absl::StrCat(base.text, ".", c % 256)};
    }
    if (first_conflict[c / 256].empty()) first_conflict[c / 256] = conflict;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "no free /24 for the replicas' links in 10.213.0.0/16 or 172.29.0.0/16 (first conflicts: ",
      first_conflict[0].empty() ? "none tried" : first_conflict[0], "; ",
      first_conflict[1].empty() ? "none tried" : first_conflict[1], ")"));
}

absl::StatusOr<std::unique_ptr<ReplicaNetwork>> ReplicaNetwork::Create(int replicas) {
  if (replicas < 1 || replicas > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica links: expected 1 to 64 replicas, found ", replicas));
  }
  RETURN_IF_ERROR(CheckCapabilities());
  ASSIGN_OR_RETURN(SockPtr sock, Connect());
  std::unique_ptr<ReplicaNetwork> net(new ReplicaNetwork);
  int skip = 0;
  for (int attempt = 0;; ++attempt) {
    std::vector<std::string> names;
    std::vector<Ipv4Prefix> in_use;
    RETURN_IF_ERROR(ScanHost(sock.get(), &names, &in_use));
    ASSIGN_OR_RETURN(net->range_, PickRunRange(names, in_use, skip));
    ASSIGN_OR_RETURN(int fd, NewNamespace());
    absl::Status claimed = CreateVeth(sock.get(), net->range_.InterfaceName(0), fd);
    if (claimed.ok()) {
      ReplicaLink link{.host_interface = net->range_.InterfaceName(0), .netns_fd = fd};
      net->links_.push_back(std::move(link));
      break;
    }
    close(fd);
    if (!absl::IsAlreadyExists(claimed) || attempt + 1 >= kClaimAttempts) {
      return Annotate(claimed, "giving replica[0] its own link");
    }
    skip = net->range_.k + 1;  // another run took it just now
  }
  const RunRange& range = net->range_;
  for (int i = 1; i < replicas; ++i) {
    absl::StatusOr<int> fd = NewNamespace();
    if (!fd.ok()) return Annotate(fd.status(), absl::StrCat("giving replica[", i, "] a namespace"));
    if (absl::Status st = CreateVeth(sock.get(), range.InterfaceName(i), *fd); !st.ok()) {
      close(*fd);
      return Annotate(st, absl::StrCat("giving replica[", i, "] its own link"));
    }
    net->links_.push_back(ReplicaLink{.host_interface = range.InterfaceName(i), .netns_fd = *fd});
  }
  for (int i = 0; i < replicas; ++i) {
    ReplicaLink& link = net->links_[static_cast<size_t>(i)];
    link.host_ip = range.HostIp(i);
    link.replica_ip = range.ReplicaIp(i);
    link.prefix_length = kPrefixLength;
    struct stat st {};
    if (fstat(link.netns_fd, &st) == 0) link.netns_inode = st.st_ino;
    const std::string context =
        absl::StrCat("configuring replica[", i, "]'s link ", link.host_interface, " (",
                     link.host_ip, " <-> ", link.replica_ip, ")");
    absl::Status s = AddAddress(sock.get(), link.host_interface, link.host_ip);
    if (s.ok()) s = SetUp(sock.get(), link.host_interface);
    if (s.ok()) {
      s = InNetns(link.netns_fd, [&]() -> absl::Status {
        ASSIGN_OR_RETURN(SockPtr inner, Connect());
        RETURN_IF_ERROR(AddAddress(inner.get(), kReplicaInterface, link.replica_ip));
        return SetUp(inner.get(), kReplicaInterface);
      });
    }
    if (!s.ok()) return Annotate(s, context);
  }
  LogInfo(kLog, absl::StrCat(replicas, " replica namespaces on links ", range.InterfaceName(0),
                             "..", range.InterfaceName(replicas - 1), " in ", range.base, ".0/24"));
  return net;
}

ReplicaNetwork::~ReplicaNetwork() {
  if (absl::Status st = Close(); !st.ok()) LogError(kLog, st.ToString());
}

absl::Status ReplicaNetwork::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  absl::Status first;
  absl::StatusOr<SockPtr> sock = Connect();
  if (!sock.ok()) first = Annotate(sock.status(), "removing the replicas' links");
  for (ReplicaLink& link : links_) {
    if (sock.ok()) {
      absl::Status st = DeleteLink(sock->get(), link.host_interface);
      if (!st.ok() && first.ok()) first = Annotate(st, "removing the replicas' links");
    }
    if (link.netns_fd >= 0) close(link.netns_fd);
    link.netns_fd = -1;
  }
  return first;
}

absl::Status NetnsPreflight() {
  RETURN_IF_ERROR(CheckCapabilities());
  static std::mutex mu;
  static std::optional<absl::Status> cached;
  std::lock_guard<std::mutex> lock(mu);
  if (!cached) {
    // A veth pair inside a throwaway namespace: nothing appears on the host.
    absl::StatusOr<int> fd = NewNamespace([]() -> absl::Status {
      ASSIGN_OR_RETURN(SockPtr sock, Connect());
      LinkPtr link(rtnl_link_veth_alloc());
      if (link == nullptr) return absl::ResourceExhaustedError("allocating a veth object");
      rtnl_link_set_name(link.get(), "cdprobe0");
      rtnl_link* peer = rtnl_link_veth_get_peer(link.get());
      if (peer != nullptr) {
        rtnl_link_set_name(peer, "cdprobe1");
        rtnl_link_put(peer);
      }
      if (int err = rtnl_link_add(sock.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
        return NlError("creating a veth pair in a throwaway namespace", err);
      }
      return absl::OkStatus();
    });
    if (fd.ok()) close(*fd);
    cached = fd.ok() ? absl::OkStatus()
                     : absl::FailedPreconditionError(
                           absl::StrCat("network netns: this node cannot make replica namespaces: ",
                                        fd.status().message()));
  }
  return *cached;
}

}  // namespace chaosdrill::reference
