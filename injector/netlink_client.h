// The narrow interface through which network faults touch the kernel's traffic control
// (rtnetlink qdiscs): look up an interface, list its qdiscs, add a netem or tbf qdisc
// under a given handle, delete one. RealNetlinkClient speaks libnl-route; tests use a
// recording fake (tests/injector/network_fakes.h). Also the helpers shared by the qdisc
// faults: NlStatus (libnl error -> absl code), tc handle and bit-rate parsing, and a probe
// for whether the running kernel has a qdisc kind at all.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chaosdrill::injector {

// Maps a libnl error code (positive or negative NLE_*) to an absl code the caller acts
// on (NLE_OBJ_NOTFOUND/NLE_NODEV -> NotFound, NLE_PERM/NLE_NOACCESS -> PermissionDenied,
// NLE_NOMEM -> ResourceExhausted, NLE_EXIST -> AlreadyExists, NLE_BUSY/NLE_AGAIN ->
// Unavailable, NLE_INVAL/NLE_RANGE -> InvalidArgument, NLE_OPNOTSUPP -> Unimplemented) and
// words it "context: <libnl message>".
absl::Status NlStatus(absl::string_view context, int nl_error);

// tc handles: "root" is TC_H_ROOT; "cd00:" or "cd00:0" a qdisc handle; "1:2" a class.
inline constexpr uint32_t kTcRoot = 0xFFFFFFFFu;
absl::StatusOr<uint32_t> ParseTcHandle(absl::string_view text);
std::string TcHandleToString(uint32_t handle);  // "root", "cd00:", "1:2"

// A link rate as tc writes it: "8mbit", "100kbit", "1gbit", "500bit" (bits per second,
// powers of 10), "10mbps"/"1kbps"/"100bps" (bytes per second); "8Mbit" etc. are accepted.
// Returns bytes per second, > 0.
absl::StatusOr<uint64_t> ParseLinkRate(absl::string_view text);
std::string LinkRateToString(uint64_t bytes_per_second);  // "8mbit"

// Probabilities are fractions in [0, 1]; times in microseconds.
struct NetemOptions {
  uint32_t delay_us = 0;
  uint32_t jitter_us = 0;
  double correlation = 0;  // applied to delay (with jitter), loss and duplicate
  double loss = 0;
  double duplicate = 0;
  double corrupt = 0;
  double reorder = 0;             // needs delay_us > 0
  uint64_t rate_bytes_per_s = 0;  // 0 = unlimited
  uint32_t limit_packets = 1000;
};

struct TbfOptions {
  uint64_t rate_bytes_per_s = 0;
  uint32_t burst_bytes = 0;
  uint32_t limit_bytes = 0;
};

struct QdiscRequest {
  int ifindex = 0;
  uint32_t parent = kTcRoot;
  uint32_t handle = 0;
  std::variant<NetemOptions, TbfOptions> options;
};

// One qdisc as the kernel reports it. The kind-specific fields are filled when the kind
// is netem (delay) or tbf (rate), so a fault can verify its own settings.
struct QdiscInfo {
  int ifindex = 0;
  std::string kind;
  uint32_t handle = 0;
  uint32_t parent = 0;
  std::optional<uint32_t> netem_delay_us;
  std::optional<uint64_t> tbf_rate_bytes_per_s;
};

// Talks to the network namespace of the thread that first uses it (the socket is opened
// lazily and kept). Not thread-safe. Errors name what was being done to which interface.
class NetlinkClient {
 public:
  NetlinkClient() = default;
  NetlinkClient(const NetlinkClient&) = delete;
  NetlinkClient& operator=(const NetlinkClient&) = delete;
  virtual ~NetlinkClient() = default;

  // NotFound "interface veth9 not found" when it does not exist.
  virtual absl::StatusOr<int> InterfaceIndex(absl::string_view name) = 0;
  virtual absl::StatusOr<std::vector<QdiscInfo>> ListQdiscs(int ifindex) = 0;
  // Creates, never replaces (NLM_F_CREATE | NLM_F_EXCL): AlreadyExists when a qdisc is
  // already at that place. The raw libnl error code maps through NlStatus.
  virtual absl::Status AddQdisc(const QdiscRequest& request) = 0;
  // Deletes the qdisc with exactly this handle at this parent; NotFound when none.
  virtual absl::Status DeleteQdisc(int ifindex, uint32_t parent, uint32_t handle) = 0;
};

std::unique_ptr<NetlinkClient> NewRealNetlinkClient();

// Whether the running kernel can create a qdisc of `kind` ("netem", "tbf"): true when
// /sys/module/sch_<kind> exists, else tried for real on the loopback device of a
// throwaway network namespace (a forked child; needs root). Cached per process and kind.
// On false, `why` says what is missing.
bool KernelHasQdiscKind(absl::string_view kind, std::string* why = nullptr);

}  // namespace chaosdrill::injector
