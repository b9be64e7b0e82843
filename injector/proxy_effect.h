// What one proxy fault does to the traffic of the connections it affects: the typed,
// validated, immutable settings that a proxy.* factory builds once from its FaultSpec and
// that the proxy's event loop reads on every read and write (the Envoy fault filter
// pattern: validate once, then cheap per-use lookups).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace chaosdrill::injector {

// Which way the bytes flow: kUpstream is client -> upstream (requests), kDownstream is
// upstream -> client (responses).
enum class ProxyDirection { kUpstream, kDownstream, kBoth };

absl::string_view ProxyDirectionName(ProxyDirection direction);
// "upstream", "downstream" or "both"; InvalidArgument otherwise.
absl::StatusOr<ProxyDirection> ParseProxyDirection(absl::string_view text);
// Whether an effect configured for `configured` applies to bytes flowing `flow`
// (kUpstream or kDownstream).
bool DirectionCovers(ProxyDirection configured, ProxyDirection flow);

struct ProxyEffect {
  enum class Type { kLatency, kBandwidth, kReset, kBlackhole, kSlicer };
  enum class ResetTarget { kNew, kExisting, kAll };

  Type type = Type::kLatency;
  ProxyDirection direction = ProxyDirection::kBoth;
  // Share of connections affected, rolled once per (connection, fault) pair.
  double probability = 1.0;

  // kLatency: each read chunk is held latency +- uniform(jitter) (never negative; order
  // of bytes is kept, so a chunk never overtakes the one before it).
  absl::Duration latency = absl::ZeroDuration();
  absl::Duration jitter = absl::ZeroDuration();
  // kBandwidth: token bucket per connection and direction, bytes per second.
  double bytes_per_second = 0;
  // kReset: abort (RST, SO_LINGER 0) both sides once the connection has forwarded
  // `reset_after_bytes` bytes (both directions) since it first saw this fault.
  ResetTarget reset_target = ResetTarget::kAll;
  uint64_t reset_after_bytes = 0;
  // kBlackhole: forward nothing in `direction` (bytes wait in kernel buffers); after
  // `blackhole_timeout` (zero: never) close the connection.
  absl::Duration blackhole_timeout = absl::ZeroDuration();
  // kSlicer: write each chunk as slices of slice_size +- uniform(slice_variation) bytes
  // (at least 1) with slice_delay between them.
  uint64_t slice_size = 64;
  uint64_t slice_variation = 0;
  absl::Duration slice_delay = absl::Milliseconds(1);

  // "latency 100ms downstream", "reset new after 1KiB (p=0.5)".
  std::string Describe() const;
};

// A byte rate: bytes per second as "1000000", "1MB/s", "512KiB/s", "1.5MiB" ("/s"
// optional), or bits per second as "8Mbit", "8Mbit/s", "500kbit", "1Gbit" (powers of
// 1000, bits / 8). Must be above zero.
absl::StatusOr<double> ParseByteRate(absl::string_view text);

}  // namespace chaosdrill::injector
