#include "injector/netem_fault.h"

#include "absl/strings/str_cat.h"
#include "common/quantity.h"
#include "common/status.h"
#include "injector/fault_registry.h"
#include "injector/netlink_qdisc_fault.h"

namespace chaosdrill::injector {
namespace {

constexpr absl::string_view kKind = "network.netem";

absl::StatusOr<double> Fraction(const FaultSpec& spec, const FaultKindInfo& info,
                                absl::string_view name) {
  absl::StatusOr<double> pct = ParsePercent(ParamOrDefault(spec, info, name));
  if (!pct.ok()) return Annotate(pct.status(), absl::StrCat(kKind, ": ", name));
  return *pct / 100.0;
}

absl::StatusOr<uint32_t> Micros(const FaultSpec& spec, const FaultKindInfo& info,
                                absl::string_view name) {
  absl::StatusOr<absl::Duration> d = ParseDuration(ParamOrDefault(spec, info, name));
  if (!d.ok()) return Annotate(d.status(), absl::StrCat(kKind, ": ", name));
  if (*d > absl::Seconds(60)) {
    return absl::InvalidArgumentError(absl::StrCat(kKind, ": ", name, ": at most 60s"));
  }
  return static_cast<uint32_t>(absl::ToInt64Microseconds(*d));
}

}  // namespace

const FaultKindInfo& NetemFactory::info() const {
  static const FaultKindInfo kInfo{
      .kind = std::string(kKind),
      .summary =
          "delay, jitter, loss, duplicate, corrupt, reorder, rate on an interface's "
          "egress (netem qdisc via libnl; root, sch_netem)",
      .params = {
          {.name = "interface",
           .type = ParamType::kString,
           .required = true,
           .doc = "interface whose egress is affected, e.g. eth0"},
          {.name = "delay",
           .type = ParamType::kDuration,
           .default_value = "0",
           .doc = "added one-way delay"},
          {.name = "jitter",
           .type = ParamType::kDuration,
           .default_value = "0",
           .doc = "random variation of the delay (+/-)"},
          {.name = "correlation",
           .type = ParamType::kPercent,
           .default_value = "0%",
           .doc = "correlation with the previous packet, for delay (with jitter), loss and "
                  "duplicate"},
          {.name = "loss",
           .type = ParamType::kPercent,
           .default_value = "0%",
           .doc = "share of packets dropped"},
          {.name = "duplicate",
           .type = ParamType::kPercent,
           .default_value = "0%",
           .doc = "share of packets sent twice"},
          {.name = "corrupt",
           .type = ParamType::kPercent,
           .default_value = "0%",
           .doc = "share of packets with a flipped bit"},
          {.name = "reorder",
           .type = ParamType::kPercent,
           .default_value = "0%",
           .doc = "share of packets sent at once, ahead of delayed ones (needs delay)"},
          {.name = "rate",
           .type = ParamType::kString,
           .doc = "egress rate cap as tc writes it: 8mbit, 100kbit, 1gbit, 10mbps"},
          {.name = "limit",
           .type = ParamType::kInt,
           .default_value = "1000",
           .doc = "queue length in packets"},
          {.name = "parent",
           .type = ParamType::kString,
           .default_value = "root",
           .doc = "attach under this class of an existing qdisc (e.g. 1:2) instead of as root"},
      }};
  return kInfo;
}

PreflightResult NetemFactory::Preflight() const { return QdiscPreflight("netem"); }

absl::StatusOr<FaultPtr> NetemFactory::Create(const FaultSpec& spec) const {
  return CreateWithClient(spec, NewRealNetlinkClient());
}

absl::StatusOr<FaultPtr> NetemFactory::CreateWithClient(const FaultSpec& spec,
                                                        std::unique_ptr<NetlinkClient> client) {
  const FaultKindInfo& info = NetemFactory().info();
  RETURN_IF_ERROR(CheckSpecParams(spec, info));
  QdiscPlacement where{.fault_kind = std::string(kKind),
                       .qdisc_kind = "netem",
                       .interface = ParamOrDefault(spec, info, "interface"),
                       .handle = kNetemHandle};
  RETURN_IF_ERROR(Annotate(ValidateInterfaceName(where.interface), kKind));
  absl::StatusOr<uint32_t> parent = ParseTcHandle(ParamOrDefault(spec, info, "parent"));
  if (!parent.ok()) return Annotate(parent.status(), absl::StrCat(kKind, ": parent"));
  where.parent = *parent;

  NetemOptions o;
  ASSIGN_OR_RETURN(o.delay_us, Micros(spec, info, "delay"));
  ASSIGN_OR_RETURN(o.jitter_us, Micros(spec, info, "jitter"));
  ASSIGN_OR_RETURN(o.correlation, Fraction(spec, info, "correlation"));
  ASSIGN_OR_RETURN(o.loss, Fraction(spec, info, "loss"));
  ASSIGN_OR_RETURN(o.duplicate, Fraction(spec, info, "duplicate"));
  ASSIGN_OR_RETURN(o.corrupt, Fraction(spec, info, "corrupt"));
  ASSIGN_OR_RETURN(o.reorder, Fraction(spec, info, "reorder"));
  if (std::string rate = ParamOrDefault(spec, info, "rate"); !rate.empty()) {
    absl::StatusOr<uint64_t> bytes = ParseLinkRate(rate);
    if (!bytes.ok()) return Annotate(bytes.status(), absl::StrCat(kKind, ": rate"));
    o.rate_bytes_per_s = *bytes;
  }
  int64_t limit = 0;
  if (!absl::SimpleAtoi(ParamOrDefault(spec, info, "limit"), &limit) || limit < 1 ||
      limit > 1'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(kKind, ": limit: 1 to 1000000 packets"));
  }
  o.limit_packets = static_cast<uint32_t>(limit);
  if (o.reorder > 0 && o.delay_us == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kKind, ": reorder: needs a delay (reordered packets skip it)"));
  }
  if (o.jitter_us > 0 && o.delay_us == 0) {
    return absl::InvalidArgumentError(absl::StrCat(kKind, ": jitter: needs a delay"));
  }
  if (o.delay_us == 0 && o.loss == 0 && o.duplicate == 0 && o.corrupt == 0 &&
      o.rate_bytes_per_s == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        kKind, ": nothing to do: set at least one of delay, loss, duplicate, corrupt, rate"));
  }

  std::string what = "netem";
  auto add = [&](absl::string_view name) {
    absl::StrAppend(&what, " ", name, " ", ParamOrDefault(spec, info, name));
  };
  if (o.delay_us > 0) add("delay");
  if (o.jitter_us > 0) add("jitter");
  if (o.loss > 0) add("loss");
  if (o.duplicate > 0) add("duplicate");
  if (o.corrupt > 0) add("corrupt");
  if (o.reorder > 0) add("reorder");
  if (o.rate_bytes_per_s > 0) add("rate");
  absl::StrAppend(&what, " on ", where.interface);
  if (where.parent != kTcRoot) absl::StrAppend(&what, " under ", TcHandleToString(where.parent));

  QdiscRequest request{.parent = where.parent, .handle = where.handle, .options = o};
  return FaultPtr(std::make_unique<QdiscFault>(std::move(where), std::move(request),
                                               std::move(what), std::move(client)));
}

absl::Status NetemFactory::RevertFromRecord(const nlohmann::json& record) const {
  auto client = NewRealNetlinkClient();
  return RevertFromRecordWithClient(record, *client);
}

absl::Status NetemFactory::RevertFromRecordWithClient(const nlohmann::json& record,
                                                      NetlinkClient& client) {
  ASSIGN_OR_RETURN(QdiscPlacement where, QdiscPlacement::FromRecord(record, kKind, "netem"));
  return RevertQdisc(client, where);
}

CHAOSDRILL_REGISTER_FAULT(NetemFactory)

}  // namespace chaosdrill::injector
