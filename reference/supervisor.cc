#include "reference/supervisor.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "reference/child_process.h"
#include "reference/redis_connection.h"
#include "reference/replica_netns.h"

namespace chaosdrill::reference {
namespace {

constexpr char kLog[] = "supervisor";
constexpr absl::Duration kConnectTimeout = absl::Milliseconds(300);
constexpr absl::Duration kCommandTimeout = absl::Seconds(1);
constexpr absl::Duration kReadyPoll = absl::Milliseconds(50);
// How long a dead Redis primary waits for the sentinels to fail over before it is
// restarted anyway (then as an empty primary: the data is gone either way).
constexpr absl::Duration kRedisRestartGuard = absl::Seconds(30);
// With a replication link: the Redis ACL user the sentinels log in as. It may do
// everything except point a node at an address (REPLICAOF/SLAVEOF host port); REPLICAOF
// NO ONE, the promotion, stays allowed. Redis 7.0 accepts a first-argument rule on a
// command without subcommands with a deprecation warning in the node's log.
constexpr char kSentinelUser[] = "chaosdrill-sentinel";

enum class Kind { kRedis, kSentinel, kReplica, kGateway };

struct Child {
  std::string name;  // "redis-0", "sentinel[1]", "replica[2]", "gateway"
  Kind kind;
  std::string address;
  std::string log;
  std::string ready_file;  // replica/gateway
  std::string config;      // redis/sentinel
  std::string link;        // redis, with a replication link: the link in front of this node
  // A replica in network netns: its namespace (owned by the ReplicaNetwork) and its link.
  int netns_fd = -1;
  std::string interface, interface_address;
  std::unique_ptr<ChildProcess> proc;
  int restarts = 0;
  absl::Duration backoff;
  absl::Time started;
  absl::Time next_start;
  absl::Time died;
  bool guard_logged = false;
};

// Ports are found by binding port 0; all sockets stay open until every port is chosen
// so no two roles get the same one.
absl::StatusOr<std::vector<int>> FreeLoopbackPorts(int n) {
  std::vector<int> fds;
  std::vector<int> ports;
  absl::Status status;
  for (int i = 0; i < n && status.ok(); ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = ErrnoStatus("finding a free port: socket");
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = ErrnoStatus("finding a free port on 127.0.0.1");
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  if (!status.ok()) return status;
  return ports;
}

// File name stem of a child: "sentinel[1]" -> "sentinel-1". Redis 7 globs its config
// path, so brackets in a file name would make it load nothing.
std::string FileStem(absl::string_view name) {
  std::string out;
  for (char ch : name) {
    if (ch == '[') {
      out += '-';
    } else if (ch != ']') {
      out += ch;
    }
  }
  return out;
}

absl::Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.flush();
  if (!out) return ErrnoStatus(absl::StrCat("writing ", path));
  return absl::OkStatus();
}

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("creating directory ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisValue> Ask(const std::string& address, const std::vector<std::string>& cmd) {
  ASSIGN_OR_RETURN(auto conn, RedisConnection::Connect(address, kConnectTimeout, kCommandTimeout));
  return conn->CommandOk(cmd);
}

// Polls `check` until it returns OK or the deadline passes; returns the last error.
absl::Status PollUntil(absl::Time deadline, absl::string_view what,
                       const std::function<absl::Status()>& check) {
  absl::Status last;
  while (true) {
    last = check();
    if (last.ok()) return last;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("waiting for ", what, ": ", last.message()));
    }
    absl::SleepFor(kReadyPoll);
  }
}

}  // namespace

class Supervisor {
 public:
  explicit Supervisor(ReferenceServiceOptions options) : options_(std::move(options)) {}
  ~Supervisor() { (void)Stop(); }

  // Runs Startup and then the watch loop on the supervisor thread; returns Startup's result.
  absl::Status Start() {
    thread_ = std::thread([this] { ThreadMain(); });
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&startup_done_));
    return startup_status_;
  }

  absl::Status Stop() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
    return absl::OkStatus();
  }

  Topology topology() const {
    absl::MutexLock lock(&mu_);
    return topology_;
  }

  bool WaitForTopology(const std::function<bool(const Topology&)>& pred, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&mu_);
    while (!pred(topology_)) {
      if (changed_.WaitWithDeadline(&mu_, deadline) && !pred(topology_)) return false;
    }
    return true;
  }

 private:
  void ThreadMain() {
    absl::Status st = Startup();
    {
      absl::MutexLock lock(&mu_);
      startup_status_ = st;
      startup_done_ = true;
    }
    if (st.ok()) {
      LogInfo(kLog, absl::StrCat("reference service ready in ", options_.dir));
      WatchLoop();
    }
    StopChildren();
    // The replicas are gone: their links and namespaces can go.
    if (network_) {
      if (absl::Status st = network_->Close(); !st.ok()) LogError(kLog, st.ToString());
      network_.reset();
    }
  }

  absl::Status Startup() {
    if (options_.dir.empty()) return absl::InvalidArgumentError("reference service: no --dir");
    if (options_.replication != "async" && options_.replication != "sync") {
      return absl::InvalidArgumentError(
          absl::StrCat("replication '", options_.replication, "' is not one of: async, sync"));
    }
    if (options_.replicas < 0 || options_.replicas > 64) {
      return absl::InvalidArgumentError("replicas must be between 0 and 64");
    }
    if (options_.network != "loopback" && options_.network != "netns") {
      return absl::InvalidArgumentError(
          absl::StrCat("network '", options_.network, "' is not one of: loopback, netns"));
    }
    redis_server_ = FindExecutable(options_.redis_server);
    redis_sentinel_ = FindExecutable(options_.redis_sentinel);
    if (redis_server_.empty() || redis_sentinel_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the reference session store needs redis-server and redis-sentinel (",
          redis_server_.empty() ? options_.redis_server : options_.redis_sentinel,
          " not found on PATH); install them with scripts/install-deps.sh (Debian packages "
          "redis-server, redis-sentinel)"));
    }
    if (options_.replicas > 0) {
      binary_ = options_.chaosdrill_binary;
      if (binary_.empty()) {
        char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
        if (n <= 0) return ErrnoStatus("finding the chaosdrill binary (/proc/self/exe)");
        binary_.assign(buf, n);
      }
      if (access(binary_.c_str(), X_OK) != 0) {
        return ErrnoStatus(absl::StrCat("chaosdrill binary ", binary_));
      }
    }
    RETURN_IF_ERROR(MakeDir(options_.dir));
    char real[PATH_MAX];
    if (realpath(options_.dir.c_str(), real) == nullptr) {
      return ErrnoStatus(absl::StrCat("resolving ", options_.dir));
    }
    dir_ = real;

    const int n_ports =
        2 + 3 + options_.replicas + (options_.replicas > 0 ? 2 : 0) + (link_mode() ? 2 : 0);
    ASSIGN_OR_RETURN(std::vector<int> ports, FreeLoopbackPorts(n_ports));
    size_t next = 0;
    auto add = [&](std::string name, Kind kind) {
      Child c;
      c.name = std::move(name);
      c.kind = kind;
      c.address = absl::StrCat("127.0.0.1:", ports[next++]);
      c.log = absl::StrCat(dir_, "/", FileStem(c.name), ".log");
      c.backoff = options_.restart_base;
      children_.push_back(std::move(c));
      return children_.size() - 1;
    };
    add("redis-0", Kind::kRedis);
    add("redis-1", Kind::kRedis);
    for (int i = 0; i < 3; ++i) add(absl::StrCat("sentinel[", i, "]"), Kind::kSentinel);
    for (int i = 0; i < options_.replicas; ++i)
      add(absl::StrCat("replica[", i, "]"), Kind::kReplica);
    if (options_.replicas > 0) {
      add("gateway", Kind::kGateway);
      metrics_address_ = absl::StrCat("127.0.0.1:", ports[next++]);
    }
    for (Child& c : children_) {
      if (c.kind == Kind::kReplica || c.kind == Kind::kGateway) {
        c.ready_file = absl::StrCat(dir_, "/", FileStem(c.name), ".ready");
      }
      if (c.kind == Kind::kRedis && link_mode()) {
        c.link = absl::StrCat("127.0.0.1:", ports[next++]);
      }
    }
    master_address_ = children_[0].address;
    const absl::Time deadline = absl::Now() + options_.ready_timeout;
    if (options_.network == "netns" && options_.replicas > 0) RETURN_IF_ERROR(MakeReplicaLinks());

    if (link_mode()) {
      std::random_device random;  // /dev/urandom
      sentinel_password_ =
          absl::StrFormat("%08x%08x%08x%08x", random(), random(), random(), random());
      for (const Child& c : children_) {
        if (c.kind != Kind::kRedis) continue;
        absl::Status st = options_.open_store_link(c.link, c.address);
        if (!st.ok()) {
          return Annotate(st, absl::StrCat("opening the replication link ", c.link, " -> ", c.name,
                                           " at ", c.address));
        }
        LogInfo(kLog, absl::StrCat("replication link ", c.link, " -> ", c.name, " at ", c.address));
      }
    }

    // The store: primary, then its replica, replication link up.
    for (Child& c : children_) {
      if (c.kind == Kind::kRedis) RETURN_IF_ERROR(StartChild(c));
    }
    for (Child& c : children_) {
      if (c.kind != Kind::kRedis) continue;
      RETURN_IF_ERROR(PollUntil(deadline, absl::StrCat(c.name, " at ", c.address, " to answer"),
                                [&] { return Ask(c.address, {"PING"}).status(); }));
    }
    RETURN_IF_ERROR(WaitReplicationLink(children_[1].address, deadline));
    // Sentinels: each must know the primary, its replica and the two other sentinels, or a
    // failover could not reach quorum.
    for (Child& c : children_) {
      if (c.kind == Kind::kSentinel) RETURN_IF_ERROR(StartChild(c));
    }
    for (Child& c : children_) {
      if (c.kind != Kind::kSentinel) continue;
      RETURN_IF_ERROR(
          PollUntil(deadline, absl::StrCat(c.name, " at ", c.address, " to see the store"), [&] {
            ASSIGN_OR_RETURN(RedisValue reps,
                             Ask(c.address, {"SENTINEL", "replicas", options_.master_name}));
            ASSIGN_OR_RETURN(RedisValue sents,
                             Ask(c.address, {"SENTINEL", "sentinels", options_.master_name}));
            if (reps.elements.empty() || sents.elements.size() < 2) {
              return absl::UnavailableError(absl::StrCat("knows ", reps.elements.size(),
                                                         " replicas and ", sents.elements.size(),
                                                         " other sentinels"));
            }
            return absl::OkStatus();
          }));
    }
    // Replicas, then the gateway in front of them.
    for (Child& c : children_) {
      if (c.kind == Kind::kReplica) RETURN_IF_ERROR(StartChild(c));
    }
    for (Child& c : children_) {
      if (c.kind == Kind::kReplica) RETURN_IF_ERROR(WaitReadyFile(c, deadline));
    }
    for (Child& c : children_) {
      if (c.kind != Kind::kGateway) continue;
      RETURN_IF_ERROR(StartChild(c));
      RETURN_IF_ERROR(WaitReadyFile(c, deadline));
      RETURN_IF_ERROR(WaitServerReady(c, deadline));
      gateway_address_ = c.address;
    }
    RefreshTopology(/*force_write=*/true);
    return absl::OkStatus();
  }

  // network netns: a namespace and a veth link per replica; each replica then listens on
  // its own address there (same port as it was given on loopback) and the gateway dials it
  // through its link.
  absl::Status MakeReplicaLinks() {
    ASSIGN_OR_RETURN(network_, ReplicaNetwork::Create(options_.replicas));
    size_t i = 0;
    for (Child& c : children_) {
      if (c.kind != Kind::kReplica) continue;
      const ReplicaLink& link = network_->links()[i++];
      c.address = absl::StrCat(link.replica_ip, c.address.substr(c.address.rfind(':')));
      c.netns_fd = link.netns_fd;
      c.interface = link.host_interface;
      c.interface_address = link.HostAddressWithPrefix();
      LogInfo(kLog, absl::StrCat(c.name, ": own network namespace, link ", c.interface, " (",
                                 c.interface_address, "), serving on ", c.address));
    }
    return absl::OkStatus();
  }

  absl::Status WaitReplicationLink(const std::string& address, absl::Time deadline) {
    return PollUntil(deadline, absl::StrCat("the replication link of ", address), [&] {
      ASSIGN_OR_RETURN(RedisValue info, Ask(address, {"INFO", "replication"}));
      std::string link = InfoField(info.str, "master_link_status");
      if (link != "up") return absl::UnavailableError(absl::StrCat("master_link_status ", link));
      return absl::OkStatus();
    });
  }

  absl::Status WaitReadyFile(Child& c, absl::Time deadline) {
    return PollUntil(deadline, absl::StrCat(c.name, " to become ready (log: ", c.log, ")"), [&] {
      if (c.proc && c.proc->Poll()) {
        return absl::FailedPreconditionError(
            absl::StrCat(c.name, " ", c.proc->ExitDescription(), "; see ", c.log));
      }
      if (access(c.ready_file.c_str(), R_OK) != 0) return ErrnoStatus(c.ready_file);
      return absl::OkStatus();
    });
  }

  absl::Status WaitServerReady(Child& c, absl::Time deadline) {
    auto channel = grpc::CreateChannel(c.address, grpc::InsecureChannelCredentials());
    auto stub = inference::GRPCInferenceService::NewStub(channel);
    return PollUntil(deadline, absl::StrCat(c.name, " ServerReady"), [&]() -> absl::Status {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
      inference::ServerReadyRequest req;
      inference::ServerReadyResponse resp;
      grpc::Status s = stub->ServerReady(&ctx, req, &resp);
      if (!s.ok()) return absl::UnavailableError(s.error_message());
      if (!resp.ready()) return absl::UnavailableError("not ready yet");
      return absl::OkStatus();
    });
  }

  // Writes the child's config (Redis nodes: a replica of `replicaof` unless empty).
  absl::Status WriteConfig(Child& c, const std::string& replicaof) {
    auto port = c.address.substr(c.address.rfind(':') + 1);
    if (c.kind == Kind::kRedis) {
      std::string data_dir = absl::StrCat(dir_, "/", c.name);
      RETURN_IF_ERROR(MakeDir(data_dir));
      std::string conf = absl::StrCat(
          "# Written by chaosdrill's reference supervisor. No persistence, for speed: a\n"
          "# restarted node comes back empty and resyncs from the primary.\n",
          "port ", port, "\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\nlogfile \"\"\n",
          "dir ", data_dir, "\nsave \"\"\nappendonly no\n",
          "repl-diskless-sync yes\nrepl-diskless-sync-delay 0\nmin-replicas-to-write 0\n");
      if (link_mode()) {
        // Replication goes through the link; the sentinels may promote a node but not
        // re-point one (the supervisor does that, see ReconcileLinks).
        absl::StrAppend(&conf, "user default on nopass ~* &* +@all\n", "user ", kSentinelUser,
                        " on >", sentinel_password_,
                        " ~* &* +@all -slaveof -replicaof +slaveof|no +replicaof|no\n");
      }
      if (!replicaof.empty()) {
        auto hp = SplitHostPort(replicaof);
        if (!hp.ok()) return hp.status();
        absl::StrAppend(&conf, "replicaof ", hp->first, " ", hp->second, "\n");
      }
      c.config = absl::StrCat(dir_, "/", FileStem(c.name), ".conf");
      return WriteFile(c.config, conf);
    }
    if (c.kind == Kind::kSentinel) {
      c.config = absl::StrCat(dir_, "/", FileStem(c.name), ".conf");
      if (access(c.config.c_str(), F_OK) == 0 && c.restarts > 0) {
        return absl::OkStatus();  // the sentinel keeps its own state in its config
      }
      auto primary = SplitHostPort(children_[0].address);
      if (!primary.ok()) return primary.status();
      std::string conf = absl::StrCat(
          "# Written by chaosdrill's reference supervisor; the sentinel rewrites it.\n", "port ",
          port, "\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\nlogfile \"\"\n", "dir ", dir_,
          "\n", "sentinel monitor ", options_.master_name, " ", primary->first, " ",
          primary->second, " 2\n", "sentinel down-after-milliseconds ", options_.master_name, " ",
          options_.sentinel_down_after_ms, "\n", "sentinel failover-timeout ", options_.master_name,
          " ", options_.sentinel_failover_timeout_ms, "\n", "sentinel parallel-syncs ",
          options_.master_name, " 1\n");
      if (link_mode()) {
        absl::StrAppend(&conf, "sentinel auth-user ", options_.master_name, " ", kSentinelUser,
                        "\nsentinel auth-pass ", options_.master_name, " ", sentinel_password_,
                        "\n");
      }
      return WriteFile(c.config, conf);
    }
    return absl::OkStatus();
  }

  std::vector<std::string> Argv(const Child& c) {
    switch (c.kind) {
      case Kind::kRedis:
        return {redis_server_, c.config};
      case Kind::kSentinel:
        return {redis_sentinel_, c.config};
      case Kind::kReplica:
        return {binary_,
                "reference",
                "replica",
                "--listen",
                c.address,
                "--model",
                options_.model,
                "--device",
                options_.device,
                "--width",
                absl::StrCat(options_.width),
                "--depth",
                absl::StrCat(options_.depth),
                "--ready-file",
                c.ready_file,
                "--admin-socket",
                absl::StrCat(dir_, "/", FileStem(c.name), ".sock")};
      case Kind::kGateway: {
        std::vector<std::string> replicas, sentinels;
        for (const Child& o : children_) {
          if (o.kind == Kind::kReplica) replicas.push_back(o.address);
          if (o.kind == Kind::kSentinel) sentinels.push_back(o.address);
        }
        return {binary_,
                "reference",
                "gateway",
                "--listen",
                c.address,
                "--replicas",
                absl::StrJoin(replicas, ","),
                "--store",
                absl::StrJoin(sentinels, ","),
                "--master-name",
                options_.master_name,
                "--replication",
                options_.replication,
                "--metrics-listen",
                metrics_address_,
                "--ready-file",
                c.ready_file,
                "--width",
                absl::StrCat(options_.width),
                "--depth",
                absl::StrCat(options_.depth)};
      }
    }
    return {};
  }

  absl::Status StartChild(Child& c, const std::string& replicaof = "") {
    if (c.kind == Kind::kRedis && replicaof.empty() && &c == &children_[1] && c.restarts == 0) {
      RETURN_IF_ERROR(WriteConfig(c, ReplicationSource(children_[0].address)));
    } else {
      RETURN_IF_ERROR(WriteConfig(c, replicaof));
    }
    if (!c.ready_file.empty()) unlink(c.ready_file.c_str());
    auto proc = ChildProcess::Spawn(Argv(c), c.log, c.netns_fd);
    if (!proc.ok()) return Annotate(proc.status(), absl::StrCat("starting ", c.name));
    c.proc = std::move(*proc);
    c.started = absl::Now();
    c.guard_logged = false;
    LogInfo(kLog, absl::StrCat("started ", c.name, " pid ", c.proc->pid(), " on ", c.address));
    return absl::OkStatus();
  }

  // The primary's address as the first answering sentinel reports it; "" if none answers.
  std::string QueryMaster() {
    for (const Child& c : children_) {
      if (c.kind != Kind::kSentinel || !c.proc || !c.proc->running()) continue;
      auto v = Ask(c.address, {"SENTINEL", "get-master-addr-by-name", options_.master_name});
      if (v.ok() && v->type == RedisValue::Type::kArray && v->elements.size() == 2) {
        return absl::StrCat(v->elements[0].str, ":", v->elements[1].str);
      }
    }
    return "";
  }

  bool link_mode() const { return static_cast<bool>(options_.open_store_link); }

  const Child* RedisAt(const std::string& address) const {
    for (const Child& c : children_) {
      if (c.kind == Kind::kRedis && c.address == address) return &c;
    }
    return nullptr;
  }

  // Where a replica of the primary at `primary` connects: the primary itself, or the
  // link in front of it.
  std::string ReplicationSource(const std::string& primary) const {
    if (!link_mode()) return primary;
    const Child* node = RedisAt(primary);
    return node != nullptr ? node->link : primary;
  }

  // The primary every answering sentinel names (at least two answer); "" if they
  // disagree (a failover in progress) or too few answer.
  std::string AgreedMaster() {
    std::string agreed;
    int answers = 0;
    for (const Child& c : children_) {
      if (c.kind != Kind::kSentinel || !c.proc || !c.proc->running()) continue;
      auto v = Ask(c.address, {"SENTINEL", "get-master-addr-by-name", options_.master_name});
      if (!v.ok() || v->type != RedisValue::Type::kArray || v->elements.size() != 2) continue;
      std::string m = absl::StrCat(v->elements[0].str, ":", v->elements[1].str);
      if (answers > 0 && m != agreed) return "";
      agreed = m;
      ++answers;
    }
    return answers >= 2 ? agreed : "";
  }

  // With a replication link, the supervisor does what the sentinels may not: points the
  // node that is not the primary at the primary's link, when the sentinels agree on the
  // primary and it confirms it is one (ROLE). That covers the node restarted after a
  // failover (already so configured), an old primary that comes back as a master after
  // a pause (a sentinel would "convert" it to a replica of the primary itself), and a
  // replica someone pointed elsewhere.
  void ReconcileLinks() {
    const std::string m = AgreedMaster();
    const Child* primary = m.empty() ? nullptr : RedisAt(m);
    if (primary == nullptr || !primary->proc || !primary->proc->running()) return;
    auto role = Ask(primary->address, {"ROLE"});
    if (!role.ok() || role->elements.empty() || role->elements[0].str != "master") return;
    const std::string want_port = primary->link.substr(primary->link.rfind(':') + 1);
    for (const Child& c : children_) {
      if (c.kind != Kind::kRedis || &c == primary || !c.proc || !c.proc->running()) continue;
      auto info = Ask(c.address, {"INFO", "replication"});
      if (!info.ok()) continue;
      const std::string r = InfoField(info->str, "role");
      const std::string port = InfoField(info->str, "master_port");
      if (r == "slave" && port == want_port) continue;
      LogWarn(kLog, absl::StrCat(c.name, " is ", r == "slave" ? "a replica of port " + port : r,
                                 "; pointing it at the primary's link ", primary->link));
      auto hp = SplitHostPort(primary->link);
      if (!hp.ok()) continue;
      if (auto st = Ask(c.address, {"REPLICAOF", hp->first, absl::StrCat(hp->second)}); !st.ok()) {
        LogError(kLog, absl::StrCat("pointing ", c.name, " at ", primary->link, ": ",
                                    st.status().message()));
      }
    }
  }

  void WatchLoop() {
    absl::Time next_master_poll = absl::InfinitePast();
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.poll_interval)) return;
      }
      const absl::Time now = absl::Now();
      for (Child& c : children_) {
        if (c.proc && c.proc->Poll()) {
          if (now - c.started >= options_.backoff_reset_after) c.backoff = options_.restart_base;
          c.next_start = now + c.backoff;
          LogWarn(kLog,
                  absl::StrCat(c.name, " (pid ", c.proc->pid(), ") ", c.proc->ExitDescription(),
                               "; restarting in ", absl::FormatDuration(c.backoff)));
          c.backoff = std::min(c.backoff * 2, options_.restart_cap);
          c.proc->Stop(absl::ZeroDuration());  // kills anything left in its group
          c.proc.reset();
          c.died = now;
        }
      }
      if (now >= next_master_poll) {
        std::string m = QueryMaster();
        if (!m.empty() && m != master_address_) {
          LogInfo(kLog, absl::StrCat("sentinels report a new primary: ", m, " (was ",
                                     master_address_, ")"));
          master_address_ = m;
        }
        if (link_mode()) ReconcileLinks();
        next_master_poll = now + absl::Milliseconds(500);
      }
      for (Child& c : children_) {
        if (c.proc || now < c.next_start) continue;
        std::string replicaof;
        if (c.kind == Kind::kRedis) {
          std::string m = QueryMaster();
          if (!m.empty()) master_address_ = m;
          if (m.empty() || m == c.address) {
            if (now - c.died < kRedisRestartGuard) {
              if (!c.guard_logged) {
                LogInfo(kLog, absl::StrCat(c.name,
                                           ": waiting for the sentinels to fail over "
                                           "before restarting it as a replica"));
                c.guard_logged = true;
              }
              continue;
            }
            LogWarn(kLog, absl::StrCat(c.name, ": no failover after ",
                                       absl::FormatDuration(kRedisRestartGuard),
                                       "; restarting it as an empty primary"));
          } else {
            replicaof = ReplicationSource(m);
          }
        }
        ++c.restarts;
        if (absl::Status st = StartChild(c, replicaof); !st.ok()) {
          LogError(kLog, st.ToString());
          c.next_start = now + c.backoff;
          c.backoff = std::min(c.backoff * 2, options_.restart_cap);
        }
      }
      RefreshTopology(/*force_write=*/false);
    }
  }

  void RefreshTopology(bool force_write) {
    Topology t;
    t.dir = dir_;
    t.supervisor_pid = getpid();
    t.running = !stopping_;
    t.replication = options_.replication;
    t.master_name = options_.master_name;
    t.network = options_.network;
    t.gateway = gateway_address_;
    t.metrics = metrics_address_;
    for (const Child& c : children_) {
      RoleInfo r;
      r.pid = c.proc && c.proc->running() ? c.proc->pid() : 0;
      r.alive = r.pid != 0;
      r.address = c.address;
      r.restarts = c.restarts;
      r.log = c.log;
      r.interface = c.interface;
      r.interface_address = c.interface_address;
      std::string role = c.name;
      if (c.kind == Kind::kRedis) {
        r.node = c.name;
        const Child& other = &c == &children_[0] ? children_[1] : children_[0];
        bool primary = c.address == master_address_ ||
                       (master_address_ != other.address && &c == &children_[0]);
        role = primary ? "store.primary" : "store.replica";
      }
      if (c.kind == Kind::kSentinel) t.sentinels.push_back(c.address);
      if (c.kind == Kind::kRedis && role == "store.primary" && !c.link.empty()) {
        RoleInfo link;
        link.address = c.link;
        link.upstream = c.address;
        link.node = c.name;
        link.alive = true;  // opened by open_store_link; it lives in its owner's process
        t.roles["store.link"] = link;
      }
      t.roles[role] = r;
    }
    absl::MutexLock lock(&mu_);
    if (!force_write && t == topology_) return;
    topology_ = t;
    if (absl::Status st = t.WriteAtomically(TopologyPath(dir_)); !st.ok()) {
      LogError(kLog, st.ToString());
    }
    changed_.SignalAll();
  }

  void StopChildren() {
    stopping_ = true;
    // Front to back, and the sentinels before the store so they do not fail over while
    // it shuts down.
    for (Kind kind : {Kind::kGateway, Kind::kReplica, Kind::kSentinel, Kind::kRedis}) {
      for (Child& c : children_) {
        if (c.kind == kind && c.proc) {
          c.proc->Stop(options_.stop_grace);
          c.proc.reset();
        }
      }
    }
    if (!dir_.empty() && !children_.empty()) RefreshTopology(/*force_write=*/true);
  }

  const ReferenceServiceOptions options_;
  // Owned by the supervisor thread (and by Startup before the loop runs).
  std::vector<Child> children_;
  std::string dir_, redis_server_, redis_sentinel_, binary_;
  std::string master_address_, gateway_address_, metrics_address_;
  std::string sentinel_password_;            // with a replication link: the sentinels' ACL password
  std::unique_ptr<ReplicaNetwork> network_;  // network netns: the replicas' links
  bool stopping_ = false;
  std::thread thread_;

  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  Topology topology_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool startup_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status startup_status_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<ReferenceService>> ReferenceService::Start(
    ReferenceServiceOptions options) {
  auto supervisor = std::make_unique<Supervisor>(std::move(options));
  absl::Status st = supervisor->Start();
  if (!st.ok()) {
    (void)supervisor->Stop();
    return Annotate(st, "starting the reference service");
  }
  return std::unique_ptr<ReferenceService>(new ReferenceService(std::move(supervisor)));
}

ReferenceService::ReferenceService(std::unique_ptr<Supervisor> supervisor)
    : supervisor_(std::move(supervisor)) {}
ReferenceService::~ReferenceService() { (void)Stop(); }
Topology ReferenceService::topology() const { return supervisor_->topology(); }
bool ReferenceService::WaitForTopology(const std::function<bool(const Topology&)>& pred,
                                       absl::Duration timeout) {
  return supervisor_->WaitForTopology(pred, timeout);
}
absl::Status ReferenceService::Stop() { return supervisor_->Stop(); }

}  // namespace chaosdrill::reference
