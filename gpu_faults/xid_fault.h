// gpu.xid: writes NVRM Xid reports in the driver's format to the kernel log (/dev/kmsg,
// root), e.g. "NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has
// fallen off the bus.", so node-health detection (DCGM, node-problem-detector, gpud, log
// alerts) can be drilled. It does nothing to the GPU itself. The kernel tags lines written
// through /dev/kmsg with the user facility (LOG_USER), so a detector filtering on the
// kernel facility will not see them. A log line cannot be withdrawn: Revert does nothing.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "gpu_faults/gpu_fault_settings.h"
#include "injector/fault.h"

namespace chaosdrill::injector {

// The exact bytes written for one report: "<3>NVRM: Xid (PCI:<pci>): <xid>, pid='<unknown>',
// name=<unknown>, <message>\n" (<3>: priority err).
std::string FormatXidRecord(absl::string_view pci, int xid, absl::string_view message);

class XidFault : public Fault {
 public:
  // `kmsg_path` is injectable for tests (any writable file).
  explicit XidFault(XidSettings settings, std::string kmsg_path = "/dev/kmsg");

  // Resolves the PCI id (spec, else a device probe, else 0000:00:00) and writes `count`
  // records, opening the log afresh for each (the kernel rate-limits per open file).
  absl::Status Inject() override;
  absl::Status Revert() override { return absl::OkStatus(); }
  nlohmann::json RevertRecord() const override;
  std::string Describe() const override;

  int written() const { return written_; }

 private:
  const XidSettings settings_;
  const std::string kmsg_path_;
  std::string pci_;  // resolved at Inject
  int written_ = 0;
};

}  // namespace chaosdrill::injector
