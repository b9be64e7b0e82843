// The one parser for the quantities that scenarios, flags and agent configs are written
// in: durations ("250ms", "1.5s", "2m", "1h30m"), sizes ("512MiB", "2GiB", "80%" of a
// base), rates ("200/s", "12/m"), percentages ("30%") and ratios ("0.99", "99%").
// Every function rejects garbage, negatives, NaN/inf and overflow with an InvalidArgument
// whose message says what was found and what is expected; callers prefix the location.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace chaosdrill {

// A sequence of <decimal><unit> with units ns, us, ms, s, m, h ("1h30m", "1.5s"); "0" is
// zero. At most 100 years.
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text);

// Renders a duration the way ParseDuration reads it back, shortest unit that is exact
// ("250ms", "1.5s", "2m", "1h30m").
std::string DurationToString(absl::Duration d);

// A byte count or a share of some base (RAM, GPU memory) that is known only where the
// fault runs.
struct SizeSpec {
  std::optional<uint64_t> bytes;  // set for "512MiB"
  double fraction = 0;            // set (0..1] for "80%" when bytes is empty

  // Bytes for this spec against `base` (the total the percentage refers to).
  uint64_t Resolve(uint64_t base) const;
  std::string ToString() const;
};

// Bytes: "4096", "512MiB", "2GiB", "1.5GB", "64KiB". Units B, kB/KB, MB, GB, TB (10^3n)
// and KiB, MiB, GiB, TiB (2^10n). At most 2^63 bytes.
absl::StatusOr<uint64_t> ParseSize(absl::string_view text);

// ParseSize, or a percentage "80%" in (0, 100].
absl::StatusOr<SizeSpec> ParseSizeOrPercent(absl::string_view text);

// Events per second: "200/s", "200" (per second), "12/m", "3600/h", "0.5/s". 0 allowed,
// at most one billion per second.
absl::StatusOr<double> ParseRate(absl::string_view text);

// A percentage in [0, 100]: "30%", "30", "2.5%".
absl::StatusOr<double> ParsePercent(absl::string_view text);

// A ratio in [0, 1]: "0.99", "1", or a percentage "99%".
absl::StatusOr<double> ParseRatio(absl::string_view text);

}  // namespace chaosdrill
