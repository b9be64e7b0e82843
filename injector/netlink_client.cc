#include "injector/netlink_client.h"

#include <linux/pkt_sched.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace chaosdrill::injector {
namespace {

absl::StatusCode NlToCode(int err) {
  switch (err < 0 ? -err : err) {
    case NLE_SUCCESS:
      return absl::StatusCode::kOk;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
    case NLE_NOADDR:
      return absl::StatusCode::kNotFound;
    case NLE_PERM:
    case NLE_NOACCESS:
      return absl::StatusCode::kPermissionDenied;
    case NLE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case NLE_EXIST:
      return absl::StatusCode::kAlreadyExists;
    case NLE_BUSY:
    case NLE_AGAIN:
    case NLE_INTR:
    case NLE_DUMP_INTR:
      return absl::StatusCode::kUnavailable;
    case NLE_INVAL:
    case NLE_RANGE:
    case NLE_MISSING_ATTR:
    case NLE_ATTRSIZE:
      return absl::StatusCode::kInvalidArgument;
    case NLE_OPNOTSUPP:
    case NLE_AF_NOSUPPORT:
    case NLE_MSGTYPE_NOSUPPORT:
      return absl::StatusCode::kUnimplemented;
    default:
      return absl::StatusCode::kInternal;
  }
}

uint32_t ProbabilityToKernel(double p) {
  if (p <= 0) return 0;
  if (p >= 1) return UINT32_MAX;
  return static_cast<uint32_t>(std::llround(p * UINT32_MAX));
}

// Owns the libnl objects of one call.
struct NlMsgDeleter {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
struct QdiscDeleter {
  void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
};
struct CacheDeleter {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
using QdiscPtr = std::unique_ptr<rtnl_qdisc, QdiscDeleter>;

class RealNetlinkClient : public NetlinkClient {
 public:
  ~RealNetlinkClient() override {
    if (sock_ != nullptr) nl_socket_free(sock_);
  }

  absl::StatusOr<int> InterfaceIndex(absl::string_view name) override {
    ASSIGN_OR_RETURN(nl_sock * sock, Socket());
    rtnl_link* link = nullptr;
    std::string n(name);
    int err = rtnl_link_get_kernel(sock, 0, n.c_str(), &link);
    if (err < 0) {
      if (NlToCode(err) == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(absl::StrCat("interface ", name, " not found"));
      }
      return NlStatus(absl::StrCat("looking up interface ", name), err);
    }
    int index = rtnl_link_get_ifindex(link);
    rtnl_link_put(link);
    return index;
  }

  absl::StatusOr<std::vector<QdiscInfo>> ListQdiscs(int ifindex) override {
    ASSIGN_OR_RETURN(nl_sock * sock, Socket());
    nl_cache* raw = nullptr;
    int err = rtnl_qdisc_alloc_cache(sock, &raw);
    if (err < 0) return NlStatus("listing qdiscs", err);
    std::unique_ptr<nl_cache, CacheDeleter> cache(raw);
    std::vector<QdiscInfo> out;
    for (nl_object* obj = nl_cache_get_first(raw); obj != nullptr; obj = nl_cache_get_next(obj)) {
      auto* q = reinterpret_cast<rtnl_qdisc*>(obj);
      rtnl_tc* tc = TC_CAST(q);
      if (rtnl_tc_get_ifindex(tc) != ifindex) continue;
      QdiscInfo info;
      info.ifindex = ifindex;
      const char* kind = rtnl_tc_get_kind(tc);
      info.kind = kind != nullptr ? kind : "";
      info.handle = rtnl_tc_get_handle(tc);
      info.parent = rtnl_tc_get_parent(tc);
      if (info.kind == "netem") {
        int delay = rtnl_netem_get_delay(q);
        if (delay >= 0) info.netem_delay_us = static_cast<uint32_t>(delay);
      } else if (info.kind == "tbf") {
        int rate = rtnl_qdisc_tbf_get_rate(q);
        if (rate >= 0) info.tbf_rate_bytes_per_s = static_cast<uint64_t>(rate);
      }
      out.push_back(std::move(info));
    }
    return out;
  }

  absl::Status AddQdisc(const QdiscRequest& request) override {
    ASSIGN_OR_RETURN(nl_sock * sock, Socket());
    QdiscPtr q(rtnl_qdisc_alloc());
    if (q == nullptr) return absl::ResourceExhaustedError("allocating a qdisc object");
    rtnl_tc* tc = TC_CAST(q.get());
    rtnl_tc_set_ifindex(tc, request.ifindex);
    rtnl_tc_set_parent(tc, request.parent);
    rtnl_tc_set_handle(tc, request.handle);
    const int flags = NLM_F_CREATE | NLM_F_EXCL;
    if (const auto* netem = std::get_if<NetemOptions>(&request.options)) {
      int err = rtnl_tc_set_kind(tc, "netem");
      if (err < 0) return NlStatus("preparing netem", err);
      FillNetem(q.get(), *netem);
      // libnl (3.7) builds TCA_OPTIONS as netem wants it (struct tc_netem_qopt followed by
      // nested attributes, the attribute's length spanning them) but then also adds their
      // size to nlmsg_len a second time, leaving zero padding after the message's real
      // end. The request is therefore built here, cut back to the end of TCA_OPTIONS (the
      // last attribute), and TCA_NETEM_RATE, for which libnl has no setter, appended
      // inside it.
      nl_msg* raw = nullptr;
      err = rtnl_qdisc_build_add_request(q.get(), flags, &raw);
      if (err < 0) return NlStatus("building the netem request", err);
      std::unique_ptr<nl_msg, NlMsgDeleter> msg(raw);
      nlmsghdr* nlh = nlmsg_hdr(raw);
      nlattr* options = FindAttr(nlh, TCA_OPTIONS);
      if (options == nullptr) return absl::InternalError("netem request has no TCA_OPTIONS");
      nlh->nlmsg_len =
          static_cast<uint32_t>(reinterpret_cast<char*>(options) + NLA_ALIGN(options->nla_len) -
                                reinterpret_cast<char*>(nlh));
      if (netem->rate_bytes_per_s > 0) {
        tc_netem_rate rate{};
        rate.rate = static_cast<uint32_t>(std::min<uint64_t>(netem->rate_bytes_per_s, UINT32_MAX));
        const uint32_t before = nlh->nlmsg_len;
        if (nla_put(raw, TCA_NETEM_RATE, sizeof rate, &rate) < 0) {
          return absl::ResourceExhaustedError("netem request too large");
        }
        nlh = nlmsg_hdr(raw);
        options = FindAttr(nlh, TCA_OPTIONS);  // the buffer may have moved
        options->nla_len =
            static_cast<uint16_t>(NLA_ALIGN(options->nla_len) + (nlh->nlmsg_len - before));
      }
      err = nl_send_auto_complete(sock, raw);
      if (err < 0) return NlStatus("sending the netem request", err);
      return Ack(nl_wait_for_ack(sock));
    }
    const auto& tbf = std::get<TbfOptions>(request.options);
    int err = rtnl_tc_set_kind(tc, "tbf");
    if (err < 0) return NlStatus("preparing tbf", err);
    if (tbf.rate_bytes_per_s > INT32_MAX) {
      return absl::InvalidArgumentError("tbf rate above 2^31 bytes/s is not supported by libnl");
    }
    rtnl_qdisc_tbf_set_rate(q.get(), static_cast<int>(tbf.rate_bytes_per_s),
                            static_cast<int>(tbf.burst_bytes), 0);
    rtnl_qdisc_tbf_set_limit(q.get(), static_cast<int>(tbf.limit_bytes));
    return Ack(rtnl_qdisc_add(sock, q.get(), flags));
  }

  absl::Status DeleteQdisc(int ifindex, uint32_t parent, uint32_t handle) override {
    ASSIGN_OR_RETURN(nl_sock * sock, Socket());
    QdiscPtr q(rtnl_qdisc_alloc());
    if (q == nullptr) return absl::ResourceExhaustedError("allocating a qdisc object");
    rtnl_tc* tc = TC_CAST(q.get());
    rtnl_tc_set_ifindex(tc, ifindex);
    rtnl_tc_set_parent(tc, parent);
    rtnl_tc_set_handle(tc, handle);
    int err = rtnl_qdisc_delete(sock, q.get());
    if (err < 0) {
      return NlStatus(absl::StrCat("deleting qdisc ", TcHandleToString(handle)), err);
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<nl_sock*> Socket() {
    if (sock_ != nullptr) return sock_;
    nl_sock* sock = nl_socket_alloc();
    if (sock == nullptr) return absl::ResourceExhaustedError("allocating a netlink socket");
    int err = nl_connect(sock, NETLINK_ROUTE);
    if (err < 0) {
      nl_socket_free(sock);
      return NlStatus("connecting to rtnetlink", err);
    }
    sock_ = sock;
    return sock_;
  }

  // The raw code is kept in the message's payload-free form; callers add context.
  static absl::Status Ack(int err) {
    if (err >= 0) return absl::OkStatus();
    return absl::Status(NlToCode(err), absl::StrCat(nl_geterror(err), " [nl ", -err, "]"));
  }

  static nlattr* FindAttr(nlmsghdr* nlh, int type) {
    return nlmsg_find_attr(nlh, sizeof(tcmsg), type);
  }

  static void FillNetem(rtnl_qdisc* q, const NetemOptions& o) {
    auto prob = [](double p) { return static_cast<int>(ProbabilityToKernel(p)); };
    rtnl_netem_set_limit(q, static_cast<int>(o.limit_packets));
    if (o.delay_us > 0) rtnl_netem_set_delay(q, static_cast<int>(o.delay_us));
    if (o.jitter_us > 0) rtnl_netem_set_jitter(q, static_cast<int>(o.jitter_us));
    if (o.loss > 0) rtnl_netem_set_loss(q, prob(o.loss));
    if (o.duplicate > 0) rtnl_netem_set_duplicate(q, prob(o.duplicate));
    if (o.corrupt > 0) rtnl_netem_set_corruption_probability(q, prob(o.corrupt));
    if (o.reorder > 0) rtnl_netem_set_reorder_probability(q, prob(o.reorder));
    if (o.correlation > 0) {
      // libnl refuses a correlation whose base value is zero, so set only those in use.
      if (o.delay_us > 0 && o.jitter_us > 0) {
        rtnl_netem_set_delay_correlation(q, prob(o.correlation));
      }
      if (o.loss > 0) rtnl_netem_set_loss_correlation(q, prob(o.correlation));
      if (o.duplicate > 0) rtnl_netem_set_duplicate_correlation(q, prob(o.correlation));
    }
  }

  nl_sock* sock_ = nullptr;
};

// Tries to create the qdisc on lo in a fresh network namespace in a forked child.
// Exit codes: 0 created, 2 kind unknown to the kernel, 3 no permission, 4 other.
int ProbeInThrowawayNetns(const std::string& kind) {
  pid_t pid = fork();
  if (pid < 0) return 4;
  if (pid == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(3);
    auto client = NewRealNetlinkClient();
    QdiscRequest req;
    req.ifindex = 1;  // lo is always 1 in a new namespace
    req.handle = 0xcdff0000u;
    if (kind == "netem") {
      req.options = NetemOptions{};
    } else {
      req.options =
          TbfOptions{.rate_bytes_per_s = 125000, .burst_bytes = 4096, .limit_bytes = 16384};
    }
    absl::Status st = client->AddQdisc(req);
    if (st.ok()) _exit(0);
    if (absl::IsNotFound(st)) _exit(2);
    if (absl::IsPermissionDenied(st)) _exit(3);
    _exit(4);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 4;
}

}  // namespace

absl::Status NlStatus(absl::string_view context, int nl_error) {
  if (nl_error == 0) return absl::OkStatus();
  return absl::Status(NlToCode(nl_error), absl::StrCat(context, ": ", nl_geterror(nl_error)));
}

absl::StatusOr<uint32_t> ParseTcHandle(absl::string_view text) {
  std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (t == "root") return kTcRoot;
  size_t colon = t.find(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a tc handle (expected 'root', 'MAJ:' or 'MAJ:MIN')"));
  }
  auto hex = [](absl::string_view s, uint32_t* out) {
    if (s.empty()) {
      *out = 0;
      return true;
    }
    if (s.size() > 4) return false;
    uint32_t v = 0;
    for (char c : s) {
      int d = absl::ascii_isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      v = v * 16 + static_cast<uint32_t>(d);
    }
    *out = v;
    return true;
  };
  uint32_t major = 0, minor = 0;
  if (colon == 0 || !hex(absl::string_view(t).substr(0, colon), &major) ||
      !hex(absl::string_view(t).substr(colon + 1), &minor)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a tc handle (hex 'MAJ:MIN', e.g. '1:2')"));
  }
  return (major << 16) | minor;
}

std::string TcHandleToString(uint32_t handle) {
  if (handle == kTcRoot) return "root";
  uint32_t major = handle >> 16, minor = handle & 0xFFFF;
  if (minor == 0) return absl::StrFormat("%x:", major);
  return absl::StrFormat("%x:%x", major, minor);
}

absl::StatusOr<uint64_t> ParseLinkRate(absl::string_view text) {
  std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  size_t i = 0;
  while (i < t.size() && (absl::ascii_isdigit(t[i]) || t[i] == '.')) ++i;
  double value = 0;
  std::string unit = t.substr(i);
  static const std::map<std::string, double> kUnits = {{"bit", 1.0 / 8},
                                                       {"kbit", 1e3 / 8},
                                                       {"mbit", 1e6 / 8},
                                                       {"gbit", 1e9 / 8},
                                                       {"tbit", 1e12 / 8},
                                                       {"bps", 1},
                                                       {"kbps", 1e3},
                                                       {"mbps", 1e6},
                                                       {"gbps", 1e9},
                                                       {"tbps", 1e12},
                                                       {"kibit", 1024.0 / 8},
                                                       {"mibit", 1048576.0 / 8},
                                                       {"gibit", 1073741824.0 / 8}};
  auto it = kUnits.find(unit);
  if (i == 0 || !absl::SimpleAtod(t.substr(0, i), &value) || it == kUnits.end() ||
      !std::isfinite(value) || value <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a link rate (expected e.g. '8mbit', '100kbit', '1gbit', '10mbps')"));
  }
  double bytes = value * it->second;
  if (bytes < 1 || bytes > 1e13) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is out of range (1 byte/s to 80tbit)"));
  }
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string LinkRateToString(uint64_t bytes_per_second) {
  uint64_t bits = bytes_per_second * 8;
  if (bits % 1'000'000'000 == 0) return absl::StrCat(bits / 1'000'000'000, "gbit");
  if (bits % 1'000'000 == 0) return absl::StrCat(bits / 1'000'000, "mbit");
  if (bits % 1'000 == 0) return absl::StrCat(bits / 1'000, "kbit");
  return absl::StrCat(bits, "bit");
}

std::unique_ptr<NetlinkClient> NewRealNetlinkClient() {
  return std::make_unique<RealNetlinkClient>();
}

bool KernelHasQdiscKind(absl::string_view kind, std::string* why) {
  static std::mutex mu;
  static std::map<std::string, std::pair<bool, std::string>> cache;
  std::string k(kind);
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(k);
  if (it == cache.end()) {
    std::string option = absl::StrCat("CONFIG_NET_SCH_", absl::AsciiStrToUpper(k));
    std::pair<bool, std::string> result{false, ""};
    if (std::filesystem::exists(absl::StrCat("/sys/module/sch_", k))) {
      result.first = true;
    } else {
      // Built in (=y) and modular (=m, autoloaded on first use) both show up here.
      int probe = geteuid() == 0 ? ProbeInThrowawayNetns(k) : 3;
      if (probe == 0) {
        result.first = true;
      } else if (probe == 2) {
        result.second = absl::StrCat("kernel has no sch_", k, " (", option, ")");
      } else {
        result.second = absl::StrCat("cannot tell whether the kernel has sch_", k, " (", option,
                                     ") without root");
      }
    }
    it = cache.emplace(k, result).first;
  }
  if (why != nullptr) *why = it->second.second;
  return it->second.first;
}

}  // namespace chaosdrill::injector
