// WriteReadyFile: the readiness handshake of replica and gateway processes with their
// supervisor. The file appears (atomically, by rename) only once the server is ready,
// holding its bound "host:port" and a newline.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace chaosdrill::reference {

absl::Status WriteReadyFile(const std::string& path, const std::string& address);

}  // namespace chaosdrill::reference
