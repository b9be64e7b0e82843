#include "gpu_faults/xid_record.h"

namespace chaosdrill::gpu {

std::string XidRecordLine(const std::string& pci, int xid, const std::string& message) {
  return "<3>NVRM: Xid (PCI:" + pci + "): " + std::to_string(xid) +
         ", pid='<unknown>', name=<unknown>, " + message + "\n";
}

}  // namespace chaosdrill::gpu
