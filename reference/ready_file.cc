#include "reference/ready_file.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace chaosdrill::reference {

absl::Status WriteReadyFile(const std::string& path, const std::string& address) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << address << "\n";
    out.close();
    if (!out) return ErrnoStatus(absl::StrCat("writing ready file ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("renaming ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace chaosdrill::reference
