// reference_test_replica: a replica process for tests that need to SIGKILL one (the CLI's
// `chaosdrill reference replica` serves the same RunReplica). Flags:
//   --listen ADDR --ready-file PATH --admin-socket PATH --degrade MODE --width N --depth N
//   --threads N --max-queue N
#include <cstdio>
#include <cstdlib>
#include <string>

#include "reference/replica.h"

int main(int argc, char** argv) {
  chaosdrill::reference::ReplicaOptions options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--listen") {
      options.listen = value;
    } else if (flag == "--ready-file") {
      options.ready_file = value;
    } else if (flag == "--admin-socket") {
      options.admin_socket = value;
    } else if (flag == "--degrade") {
      options.degrade = value;
    } else if (flag == "--width") {
      options.width = std::atoi(value.c_str());
    } else if (flag == "--depth") {
      options.depth = std::atoi(value.c_str());
    } else if (flag == "--threads") {
      options.threads = std::atoi(value.c_str());
    } else if (flag == "--max-queue") {
      options.max_queue = std::atoi(value.c_str());
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  absl::Status s = chaosdrill::reference::RunReplica(options);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
