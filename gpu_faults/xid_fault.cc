#include "gpu_faults/xid_fault.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "gpu_faults/gpu_helper_client.h"
#include "gpu_faults/xid_record.h"
#include "injector/fault_registry.h"
#include "injector/gpu_kinds.h"

namespace chaosdrill::injector {
namespace {

constexpr char kPlaceholderPci[] = "0000:00:00";

absl::Status WriteRecord(const std::string& path, const std::string& record) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat("opening ", path, " for writing"));
  ssize_t n;
  do {
    n = write(fd, record.data(), record.size());
  } while (n < 0 && errno == EINTR);
  absl::Status st = n == static_cast<ssize_t>(record.size())
                        ? absl::OkStatus()
                        : ErrnoStatus(absl::StrCat("writing to ", path), n < 0 ? errno : EIO);
  close(fd);
  return st;
}

}  // namespace

std::string FormatXidRecord(absl::string_view pci, int xid, absl::string_view message) {
  return gpu::XidRecordLine(std::string(pci), xid, std::string(message));
}

XidFault::XidFault(XidSettings settings, std::string kmsg_path)
    : settings_(std::move(settings)), kmsg_path_(std::move(kmsg_path)) {}

absl::Status XidFault::Inject() {
  if (settings_.pci) {
    pci_ = *settings_.pci;
  } else {
    pci_ = kPlaceholderPci;
    gpu::GpuError error;
    gpu::GpuInfo info;
    std::string helper = gpu::FindGpuHelper(&error);
    if (!helper.empty() && gpu::ProbeGpu(helper, settings_.device, &info, &error)) {
      pci_ = XidPciFromBusId(info.pci_bus_id);
    } else {
      LogInfo("gpu.xid", absl::StrCat("no PCI id from device ", settings_.device, " (",
                                      error.message, "); using ", kPlaceholderPci));
    }
  }
  const std::string record = FormatXidRecord(pci_, settings_.xid, settings_.message);
  for (int i = 0; i < settings_.count; ++i) {
    if (i > 0 && settings_.interval > absl::ZeroDuration()) absl::SleepFor(settings_.interval);
    RETURN_IF_ERROR(Annotate(WriteRecord(kmsg_path_, record),
                             absl::StrCat("gpu.xid: report ", i + 1, " of ", settings_.count)));
    ++written_;
  }
  LogInfo("gpu.xid", Describe());
  return absl::OkStatus();
}

nlohmann::json XidFault::RevertRecord() const {
  return {{"kind", GpuXidInfo().kind},
          {"note", "kernel log lines cannot be withdrawn; nothing to revert"}};
}

std::string XidFault::Describe() const {
  return absl::StrCat("Xid ", settings_.xid, " report x", settings_.count,
                      " (PCI:", pci_.empty() ? "<device>" : pci_, ") to ", kmsg_path_, ": ",
                      settings_.message);
}

class XidFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override { return GpuXidInfo(); }
  // Needs no GPU; needs to be allowed to write the kernel log.
  PreflightResult Preflight() const override {
    if (access("/dev/kmsg", W_OK) != 0) {
      return {.available = false,
              .reason = absl::StrCat("cannot write /dev/kmsg (", strerror(errno), ")"),
              .fix = "run the agent as root (or with CAP_SYSLOG and write access to /dev/kmsg)"};
    }
    return {.available = true};
  }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    ASSIGN_OR_RETURN(XidSettings settings, ParseXidSettings(spec));
    return std::make_unique<XidFault>(std::move(settings));
  }
  absl::Status RevertFromRecord(const nlohmann::json& /*record*/) const override {
    return absl::OkStatus();
  }
};

CHAOSDRILL_REGISTER_FAULT(XidFactory)

}  // namespace chaosdrill::injector
