#include "injector/bandwidth_fault.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/quantity.h"
#include "common/status.h"
#include "injector/fault_registry.h"
#include "injector/netlink_qdisc_fault.h"

namespace chaosdrill::injector {
namespace {

constexpr absl::string_view kKind = "network.bandwidth";
constexpr uint32_t kMinBurst = 2 * 1514;  // two full Ethernet frames

}  // namespace

const FaultKindInfo& BandwidthFactory::info() const {
  static const FaultKindInfo kInfo{
      .kind = std::string(kKind),
      .summary = "token-bucket rate limit on an interface's egress (tbf qdisc via libnl; root)",
      .params = {
          {.name = "interface",
           .type = ParamType::kString,
           .required = true,
           .doc = "interface whose egress is limited, e.g. eth0"},
          {.name = "rate",
           .type = ParamType::kString,
           .required = true,
           .doc = "rate as tc writes it: 8mbit, 100kbit, 1gbit, 10mbps (bytes/s)"},
          {.name = "burst",
           .type = ParamType::kSize,
           .doc = "bucket size; default 10ms worth of rate, at least two 1514-byte frames"},
          {.name = "latency",
           .type = ParamType::kDuration,
           .default_value = "50ms",
           .doc = "longest a packet may wait in the queue (sets the queue limit)"},
          {.name = "limit",
           .type = ParamType::kSize,
           .doc = "queue limit in bytes (instead of latency)"},
          {.name = "parent",
           .type = ParamType::kString,
           .default_value = "root",
           .doc = "attach under this class of an existing qdisc (e.g. 1:2) instead of as root"},
      }};
  return kInfo;
}

PreflightResult BandwidthFactory::Preflight() const { return QdiscPreflight("tbf"); }

absl::StatusOr<FaultPtr> BandwidthFactory::Create(const FaultSpec& spec) const {
  return CreateWithClient(spec, NewRealNetlinkClient());
}

absl::StatusOr<FaultPtr> BandwidthFactory::CreateWithClient(const FaultSpec& spec,
                                                            std::unique_ptr<NetlinkClient> client) {
  const FaultKindInfo& info = BandwidthFactory().info();
  RETURN_IF_ERROR(CheckSpecParams(spec, info));
  QdiscPlacement where{.fault_kind = std::string(kKind),
                       .qdisc_kind = "tbf",
                       .interface = ParamOrDefault(spec, info, "interface"),
                       .handle = kTbfHandle};
  RETURN_IF_ERROR(Annotate(ValidateInterfaceName(where.interface), kKind));
  absl::StatusOr<uint32_t> parent = ParseTcHandle(ParamOrDefault(spec, info, "parent"));
  if (!parent.ok()) return Annotate(parent.status(), absl::StrCat(kKind, ": parent"));
  where.parent = *parent;

  TbfOptions o;
  absl::StatusOr<uint64_t> rate = ParseLinkRate(ParamOrDefault(spec, info, "rate"));
  if (!rate.ok()) return Annotate(rate.status(), absl::StrCat(kKind, ": rate"));
  if (*rate > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(kKind, ": rate: at most 17gbit"));
  }
  o.rate_bytes_per_s = *rate;
  if (std::string burst = ParamOrDefault(spec, info, "burst"); !burst.empty()) {
    absl::StatusOr<uint64_t> b = ParseSize(burst);
    if (!b.ok()) return Annotate(b.status(), absl::StrCat(kKind, ": burst"));
    if (*b < kMinBurst || *b > (1u << 30)) {
      return absl::InvalidArgumentError(
          absl::StrCat(kKind, ": burst: ", burst, " must be at least ", kMinBurst,
                       " bytes (two full frames; smaller buckets drop every full-size packet) and "
                       "at most 1GiB"));
    }
    o.burst_bytes = static_cast<uint32_t>(*b);
  } else {
    o.burst_bytes = static_cast<uint32_t>(std::max<uint64_t>(kMinBurst, o.rate_bytes_per_s / 100));
  }
  if (std::string limit = ParamOrDefault(spec, info, "limit"); !limit.empty()) {
    absl::StatusOr<uint64_t> l = ParseSize(limit);
    if (!l.ok()) return Annotate(l.status(), absl::StrCat(kKind, ": limit"));
    if (*l < o.burst_bytes || *l > (1u << 30)) {
      return absl::InvalidArgumentError(absl::StrCat(kKind, ": limit: must be between the burst (",
                                                     o.burst_bytes, " bytes) and 1GiB"));
    }
    o.limit_bytes = static_cast<uint32_t>(*l);
  } else {
    absl::StatusOr<absl::Duration> latency = ParseDuration(ParamOrDefault(spec, info, "latency"));
    if (!latency.ok()) return Annotate(latency.status(), absl::StrCat(kKind, ": latency"));
    if (*latency <= absl::ZeroDuration() || *latency > absl::Seconds(10)) {
      return absl::InvalidArgumentError(absl::StrCat(kKind, ": latency: between 0 and 10s"));
    }
    double queued = static_cast<double>(o.rate_bytes_per_s) * absl::ToDoubleSeconds(*latency);
    o.limit_bytes = static_cast<uint32_t>(
        std::min<double>(queued + o.burst_bytes, static_cast<double>(1u << 30)));
  }

  std::string what = absl::StrCat("tbf rate ", LinkRateToString(o.rate_bytes_per_s), " burst ",
                                  o.burst_bytes, "B on ", where.interface);
  if (where.parent != kTcRoot) absl::StrAppend(&what, " under ", TcHandleToString(where.parent));
  QdiscRequest request{.parent = where.parent, .handle = where.handle, .options = o};
  return FaultPtr(std::make_unique<QdiscFault>(std::move(where), std::move(request),
                                               std::move(what), std::move(client)));
}

absl::Status BandwidthFactory::RevertFromRecord(const nlohmann::json& record) const {
  auto client = NewRealNetlinkClient();
  return RevertFromRecordWithClient(record, *client);
}

absl::Status BandwidthFactory::RevertFromRecordWithClient(const nlohmann::json& record,
                                                          NetlinkClient& client) {
  ASSIGN_OR_RETURN(QdiscPlacement where, QdiscPlacement::FromRecord(record, kKind, "tbf"));
  return RevertQdisc(client, where);
}

CHAOSDRILL_REGISTER_FAULT(BandwidthFactory)

}  // namespace chaosdrill::injector
