#include "injector/partition_fault.h"

#include <arpa/inet.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/quantity.h"
#include "common/status.h"
#include "injector/fault_registry.h"
#include "injector/netlink_qdisc_fault.h"

namespace chaosdrill::injector {
namespace {

constexpr absl::string_view kKind = "network.partition";

absl::Status FieldError(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(kKind, ": ", field, ": ", message));
}

// "10.1.2.3/8" -> "10.0.0.0/8" (host bits cleared); a bare address stays bare.
absl::Status ParseCidr(absl::string_view item, PartitionSettings& out) {
  std::string text(absl::StripAsciiWhitespace(item));
  std::string addr = text;
  int len = -1;
  if (size_t slash = text.find('/'); slash != std::string::npos) {
    addr = text.substr(0, slash);
    if (!absl::SimpleAtoi(text.substr(slash + 1), &len) || len < 0) len = -2;
  }
  unsigned char buf[16] = {};
  int family = 0;
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    family = AF_INET;
  } else if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    family = AF_INET6;
  }
  const int bits = family == AF_INET ? 32 : 128;
  if (family == 0 || len == -2 || len > bits) {
    return FieldError("cidrs", absl::StrCat("'", text,
                                            "' is not an IPv4/IPv6 address or CIDR (e.g. "
                                            "10.0.0.0/8, 192.168.1.7, fd00::/64)"));
  }
  if (len >= 0 && len < bits) {
    for (int bit = len; bit < bits; ++bit)
      buf[bit / 8] &= static_cast<unsigned char>(~(0x80 >> (bit % 8)));
  }
  char norm[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, buf, norm, sizeof norm);
  std::string value = len >= 0 && len < bits ? absl::StrCat(norm, "/", len) : std::string(norm);
  (family == AF_INET ? out.ipv4 : out.ipv6).push_back(value);
  return absl::OkStatus();
}

absl::Status ParsePorts(absl::string_view text, PartitionSettings& out) {
  for (absl::string_view raw : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    absl::string_view item = absl::StripAsciiWhitespace(raw);
    std::vector<absl::string_view> ends = absl::StrSplit(item, absl::MaxSplits('-', 1));
    int lo = 0, hi = 0;
    bool ok = absl::SimpleAtoi(ends[0], &lo);
    hi = lo;
    if (ok && ends.size() == 2) ok = absl::SimpleAtoi(ends[1], &hi);
    if (!ok || lo < 1 || hi > 65535 || lo > hi) {
      return FieldError("ports",
                        absl::StrCat("'", item, "' is not a port (1-65535) or range (8000-8080)"));
    }
    out.ports.emplace_back(lo, hi);
  }
  return absl::OkStatus();
}

nlohmann::json Match(nlohmann::json left, nlohmann::json right, absl::string_view op = "==") {
  return {{"match", {{"op", op}, {"left", std::move(left)}, {"right", std::move(right)}}}};
}

nlohmann::json AddressSet(const std::vector<std::string>& addrs) {
  nlohmann::json set = nlohmann::json::array();
  for (const std::string& a : addrs) {
    size_t slash = a.find('/');
    if (slash == std::string::npos) {
      set.push_back(a);
    } else {
      set.push_back(
          {{"prefix", {{"addr", a.substr(0, slash)}, {"len", std::stoi(a.substr(slash + 1))}}}});
    }
  }
  return {{"set", set}};
}

nlohmann::json PortSet(const std::vector<std::pair<int, int>>& ports) {
  nlohmann::json set = nlohmann::json::array();
  for (const auto& [lo, hi] : ports) {
    if (lo == hi) {
      set.push_back(lo);
    } else {
      set.push_back({{"range", {lo, hi}}});
    }
  }
  return {{"set", set}};
}

// The rules of one chain: one per (address family with CIDRs) x (port direction).
std::vector<nlohmann::json> ChainRules(const PartitionSettings& s, bool ingress) {
  std::vector<std::pair<std::string, const std::vector<std::string>*>> families;
  if (!s.ipv4.empty()) families.emplace_back("ip", &s.ipv4);
  if (!s.ipv6.empty()) families.emplace_back("ip6", &s.ipv6);
  if (families.empty()) families.emplace_back("", nullptr);
  std::vector<std::string> port_fields;
  if (!s.ports.empty()) port_fields = {"dport", "sport"};
  if (port_fields.empty()) port_fields.push_back("");

  std::vector<nlohmann::json> rules;
  for (const auto& [family, addrs] : families) {
    for (const std::string& port_field : port_fields) {
      nlohmann::json expr = nlohmann::json::array();
      if (!s.interface.empty()) {
        expr.push_back(Match({{"meta", {{"key", ingress ? "iifname" : "oifname"}}}}, s.interface));
      }
      if (addrs != nullptr) {
        expr.push_back(
            Match({{"payload", {{"protocol", family}, {"field", ingress ? "saddr" : "daddr"}}}},
                  AddressSet(*addrs)));
      }
      if (s.protocol != "any") {
        expr.push_back(Match({{"meta", {{"key", "l4proto"}}}}, s.protocol));
      } else if (!port_field.empty()) {
        expr.push_back(Match({{"meta", {{"key", "l4proto"}}}},
                             {{"set", nlohmann::json::array({"tcp", "udp"})}}));
      }
      if (!port_field.empty()) {
        expr.push_back(
            Match({{"payload", {{"protocol", "th"}, {"field", port_field}}}}, PortSet(s.ports)));
      }
      if (s.loss_percent < 100) {
        // 0.01 % resolution: numgen random mod 10000 < loss * 100.
        expr.push_back(Match({{"numgen", {{"mode", "random"}, {"mod", 10000}, {"offset", 0}}}},
                             static_cast<int>(std::llround(s.loss_percent * 100)), "<"));
      }
      expr.push_back({{"drop", nullptr}});
      rules.push_back({{"family", kNftFamily},
                       {"table", kNftTable},
                       {"chain", ingress ? s.InputChain() : s.OutputChain()},
                       {"comment", s.Comment()},
                       {"expr", expr}});
    }
  }
  return rules;
}

std::vector<std::string> Chains(const PartitionSettings& s) {
  std::vector<std::string> chains;
  if (s.ingress) chains.push_back(s.InputChain());
  if (s.egress) chains.push_back(s.OutputChain());
  return chains;
}

std::string RandomId() {
  std::random_device rd;
  return absl::StrFormat("%08x", rd());
}

// Rules per chain name, and whether anything other than chains lives in the table.
struct TableView {
  std::map<std::string, int> chains;  // name -> rule count
  bool has_other_objects = false;
};

TableView View(const nlohmann::json& listing) {
  TableView v;
  for (const nlohmann::json& item : listing.value("nftables", nlohmann::json::array())) {
    if (item.contains("metainfo") || item.contains("table")) continue;
    if (item.contains("chain")) {
      v.chains.emplace(item["chain"].value("name", ""), 0);
    } else if (item.contains("rule")) {
      ++v.chains[item["rule"].value("chain", "")];
    } else {
      v.has_other_objects = true;  // a set, map, counter, flowtable...
    }
  }
  return v;
}

class PartitionFault : public Fault {
 public:
  PartitionFault(PartitionSettings settings, std::unique_ptr<NftablesClient> client,
                 std::unique_ptr<NetlinkClient> links)
      : settings_(std::move(settings)), client_(std::move(client)), links_(std::move(links)) {}

  absl::Status Inject() override {
    return Annotate(InjectOnce(), absl::StrCat("applying ", Describe()));
  }

  absl::Status Revert() override { return RevertPartitionChains(*client_, Chains(settings_)); }

  nlohmann::json RevertRecord() const override {
    return {{"kind", kKind},
            {"family", kNftFamily},
            {"table", kNftTable},
            {"chains", Chains(settings_)},
            {"id", settings_.id}};
  }

  std::string Describe() const override {
    std::string what = "partition";
    if (settings_.loss_percent < 100) absl::StrAppend(&what, " loss ", settings_.loss_percent, "%");
    const char* dir = settings_.ingress && settings_.egress ? "both"
                      : settings_.ingress                   ? "ingress"
                                                            : "egress";
    absl::StrAppend(&what, " ", dir);
    if (settings_.protocol != "any") absl::StrAppend(&what, " ", settings_.protocol);
    std::vector<std::string> addrs = settings_.ipv4;
    addrs.insert(addrs.end(), settings_.ipv6.begin(), settings_.ipv6.end());
    if (!addrs.empty()) absl::StrAppend(&what, " cidrs ", absl::StrJoin(addrs, ","));
    if (!settings_.ports.empty()) {
      absl::StrAppend(&what, " ports ",
                      absl::StrJoin(settings_.ports, ",", [](std::string* out, const auto& p) {
                        absl::StrAppend(out, p.first);
                        if (p.second != p.first) absl::StrAppend(out, "-", p.second);
                      }));
    }
    if (!settings_.interface.empty()) absl::StrAppend(&what, " on ", settings_.interface);
    return what;
  }

 private:
  absl::Status InjectOnce() {
    if (!settings_.interface.empty()) {
      // nftables matches iifname/oifname as plain strings and accepts any name, so a typo
      // would silently match nothing: the interface must exist in this network namespace
      // now (NotFound "interface X not found" otherwise, as for the qdisc kinds).
      absl::StatusOr<int> index = links_->InterfaceIndex(settings_.interface);
      if (!index.ok()) return index.status();
    }
    // A transaction is all or nothing: on error nothing of ours is there.
    RETURN_IF_ERROR(client_->Run(PartitionApplyCommands(settings_)));
    absl::StatusOr<std::optional<nlohmann::json>> listing =
        client_->ListTable(kNftFamily, kNftTable);
    int found = -1;
    if (listing.ok() && listing->has_value()) {
      TableView view = View(**listing);
      found = 0;
      for (const std::string& chain : Chains(settings_)) {
        auto it = view.chains.find(chain);
        if (it != view.chains.end()) found += it->second;
      }
    }
    if (found != PartitionRuleCount(settings_)) {
      absl::Status rollback = Revert();
      return WithRollbackFailure(
          absl::InternalError(absl::StrCat(
              "nftables accepted the rules but reading table inet chaosdrill back found ", found,
              " of ", PartitionRuleCount(settings_),
              listing.ok() ? "" : absl::StrCat(" (", listing.status().message(), ")"))),
          rollback);
    }
    return absl::OkStatus();
  }

  const PartitionSettings settings_;
  std::unique_ptr<NftablesClient> client_;
  std::unique_ptr<NetlinkClient> links_;  // only to look up `interface`
};

}  // namespace

absl::StatusOr<PartitionSettings> ParsePartitionSpec(const FaultSpec& spec) {
  const FaultKindInfo& info = PartitionFactory().info();
  PartitionSettings s;
  // Our own field checks first, so that messages name the field with our wording.
  if (std::optional<std::string> cidrs = spec.Get("cidrs")) {
    for (absl::string_view item : absl::StrSplit(*cidrs, ',', absl::SkipWhitespace())) {
      RETURN_IF_ERROR(ParseCidr(item, s));
    }
    if (s.ipv4.empty() && s.ipv6.empty()) return FieldError("cidrs", "empty list");
  }
  if (std::optional<std::string> ports = spec.Get("ports")) {
    RETURN_IF_ERROR(ParsePorts(*ports, s));
    if (s.ports.empty()) return FieldError("ports", "empty list");
  }
  if (std::optional<std::string> loss = spec.Get("loss")) {
    absl::StatusOr<double> pct = ParsePercent(*loss);
    if (!pct.ok()) return FieldError("loss", pct.status().message());
    if (*pct <= 0) return FieldError("loss", "0% drops nothing; give a share in (0%, 100%]");
    s.loss_percent = *pct;
  }
  RETURN_IF_ERROR(CheckSpecParams(spec, info));
  std::string direction = ParamOrDefault(spec, info, "direction");
  s.ingress = direction != "egress";
  s.egress = direction != "ingress";
  s.protocol = ParamOrDefault(spec, info, "protocol");
  if (std::optional<std::string> ifname = spec.Get("interface")) {
    RETURN_IF_ERROR(Annotate(ValidateInterfaceName(*ifname), kKind));
    s.interface = *ifname;
  }
  if (s.ipv4.empty() && s.ipv6.empty() && s.ports.empty() && s.interface.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kKind, ": refusing to drop all traffic of the node: give cidrs, ports or interface"));
  }
  s.id = RandomId();
  return s;
}

nlohmann::json PartitionApplyCommands(const PartitionSettings& s) {
  nlohmann::json cmds = nlohmann::json::array();
  cmds.push_back({{"add", {{"table", {{"family", kNftFamily}, {"name", kNftTable}}}}}});
  for (bool ingress : {true, false}) {
    if (ingress ? !s.ingress : !s.egress) continue;
    cmds.push_back({{"add",
                     {{"chain",
                       {{"family", kNftFamily},
                        {"table", kNftTable},
                        {"name", ingress ? s.InputChain() : s.OutputChain()},
                        {"type", "filter"},
                        {"hook", ingress ? "input" : "output"},
                        {"prio", 0},
                        {"policy", "accept"}}}}}});
    for (nlohmann::json& rule : ChainRules(s, ingress)) {
      cmds.push_back({{"add", {{"rule", std::move(rule)}}}});
    }
  }
  return {{"nftables", cmds}};
}

int PartitionRuleCount(const PartitionSettings& s) {
  int count = 0;
  if (s.ingress) count += static_cast<int>(ChainRules(s, true).size());
  if (s.egress) count += static_cast<int>(ChainRules(s, false).size());
  return count;
}

absl::Status RevertPartitionChains(NftablesClient& client, const std::vector<std::string>& chains) {
  const std::string context = absl::StrCat(
      "reverting partition chains ", absl::StrJoin(chains, ", "), " in table inet chaosdrill");
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::optional<nlohmann::json>> listing = client.ListTable(kNftFamily, kNftTable);
    if (!listing.ok()) return Annotate(listing.status(), context);
    if (!listing->has_value()) return absl::OkStatus();  // no table: nothing of ours
    TableView view = View(**listing);
    nlohmann::json cmds = nlohmann::json::array();
    for (const std::string& chain : chains) {
      if (view.chains.count(chain) == 0) continue;
      cmds.push_back(
          {{"delete",
            {{"chain", {{"family", kNftFamily}, {"table", kNftTable}, {"name", chain}}}}}});
      view.chains.erase(chain);
    }
    if (cmds.empty()) {
      // Ours are gone (verified by this listing). Remove the table if nothing is left in it.
      if (view.chains.empty() && !view.has_other_objects) {
        absl::Status st = client.Run(
            {{"nftables",
              {{{"delete", {{"table", {{"family", kNftFamily}, {"name", kNftTable}}}}}}}}});
        if (!st.ok() && !absl::IsNotFound(st)) return Annotate(st, context);
      }
      return absl::OkStatus();
    }
    absl::Status st = client.Run({{"nftables", cmds}});
    // NotFound: somebody removed a chain between listing and deleting; list again.
    if (!st.ok() && !(absl::IsNotFound(st) && attempt < 3)) return Annotate(st, context);
    if (attempt >= 4) {
      return absl::InternalError(absl::StrCat(context, ": chains still present after deleting"));
    }
  }
}

const FaultKindInfo& PartitionFactory::info() const {
  static const FaultKindInfo kInfo{
      .kind = std::string(kKind),
      .summary =
          "drop traffic to/from CIDRs and ports, one or both directions, all or a random "
          "share (nftables table inet chaosdrill via libnftables; root)",
      .params = {
          {.name = "cidrs",
           .type = ParamType::kCidrList,
           .doc = "peers: comma-separated IPv4/IPv6 addresses or CIDRs (ingress matches source, "
                  "egress destination)"},
          {.name = "ports",
           .type = ParamType::kPortList,
           .doc = "comma-separated ports or ranges (8000-8080), matched as source or destination"},
          {.name = "direction",
           .type = ParamType::kEnum,
           .default_value = "both",
           .doc = "ingress (input hook), egress (output hook) or both",
           .choices = {"ingress", "egress", "both"}},
          {.name = "protocol",
           .type = ParamType::kEnum,
           .default_value = "any",
           .doc = "tcp, udp or any (any with ports: tcp and udp)",
           .choices = {"tcp", "udp", "any"}},
          {.name = "loss",
           .type = ParamType::kPercent,
           .default_value = "100%",
           .doc = "share of matching packets dropped, at random (numgen; no netem needed)"},
          {.name = "interface",
           .type = ParamType::kString,
           .doc = "only packets in (ingress) or out (egress) of this interface"},
      }};
  return kInfo;
}

PreflightResult PartitionFactory::Preflight() const {
  PreflightResult r;
  if (!HasCapNetAdmin()) {
    r.reason = "not root: nftables needs CAP_NET_ADMIN";
    r.fix = "run as root (sudo chaosdrill ...) or grant CAP_NET_ADMIN";
    return r;
  }
  auto client = NewRealNftablesClient();
  absl::StatusOr<std::optional<nlohmann::json>> probe = client->ListTable(kNftFamily, kNftTable);
  if (!probe.ok()) {
    r.reason = absl::StrCat("nftables not usable: ", probe.status().message());
    r.fix = "load nf_tables (modprobe nf_tables) or use a kernel with CONFIG_NF_TABLES_INET";
    return r;
  }
  r.available = true;
  return r;
}

absl::StatusOr<FaultPtr> PartitionFactory::Create(const FaultSpec& spec) const {
  return CreateWithClient(spec, NewRealNftablesClient());
}

absl::StatusOr<FaultPtr> PartitionFactory::CreateWithClient(const FaultSpec& spec,
                                                            std::unique_ptr<NftablesClient> client,
                                                            std::unique_ptr<NetlinkClient> links) {
  ASSIGN_OR_RETURN(PartitionSettings settings, ParsePartitionSpec(spec));
  if (links == nullptr) links = NewRealNetlinkClient();
  return FaultPtr(
      std::make_unique<PartitionFault>(std::move(settings), std::move(client), std::move(links)));
}

absl::Status PartitionFactory::RevertFromRecord(const nlohmann::json& record) const {
  auto client = NewRealNftablesClient();
  return RevertFromRecordWithClient(record, *client);
}

absl::Status PartitionFactory::RevertFromRecordWithClient(const nlohmann::json& record,
                                                          NftablesClient& client) {
  std::vector<std::string> chains;
  try {
    if (record.at("kind").get<std::string>() != kKind) {
      return absl::InvalidArgumentError(absl::StrCat("not a ", kKind, " record: ", record.dump()));
    }
    chains = record.at("chains").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(kKind, " revert record: ", e.what(), " in ", record.dump()));
  }
  for (const std::string& c : chains) {
    // Only ever chains we name; a corrupted record must not delete somebody else's.
    if (!absl::StartsWith(c, "cd-") || c.size() > 32) {
      return absl::InvalidArgumentError(absl::StrCat(kKind, " revert record names chain '", c,
                                                     "' that chaosdrill would not create"));
    }
  }
  return RevertPartitionChains(client, chains);
}

CHAOSDRILL_REGISTER_FAULT(PartitionFactory)

}  // namespace chaosdrill::injector
