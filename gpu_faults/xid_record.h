// The exact bytes gpu.xid writes to the kernel log for one report, in the format of the
// NVIDIA driver's own Xid lines (which detectors match with "NVRM: Xid \(PCI:(...)\): (\d+),").
// Plain C++ (no absl) so the self-test prints the same line.
#pragma once

#include <string>

namespace chaosdrill::gpu {

// "<3>NVRM: Xid (PCI:<pci>): <xid>, pid='<unknown>', name=<unknown>, <message>\n"; <3> is
// the err priority (the kernel adds the user facility to lines written through /dev/kmsg).
std::string XidRecordLine(const std::string& pci, int xid, const std::string& message);

}  // namespace chaosdrill::gpu
