#include <cstdio>

#include "cli/command.h"
#include "common/version.h"

namespace chaosdrill::cli {

int VersionCommand(int argc, char** argv) {
  CLI::App app{
      "Print the chaosdrill version, the git commit it was built from, the build type\n"
      "and whether CUDA-backed faults are built in.",
      argv[0]};
  bool json = false;
  app.add_flag("--json", json, "Print as one JSON object");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;
  if (json) {
    std::printf("{\"version\":\"%s\",\"commit\":\"%s\",\"build_type\":\"%s\",\"cuda\":%s}\n",
                kVersion, kGitCommit, kBuildType, kHaveCuda ? "true" : "false");
  } else {
    std::printf("chaosdrill %s\ncommit:     %s\nbuild type: %s\ncuda:       %s\n", kVersion,
                kGitCommit, kBuildType, kHaveCuda ? "yes" : "no (built without CUDA)");
  }
  return kExitOk;
}

}  // namespace chaosdrill::cli
