// DESIGN §5: no shell anywhere in the product. Greps every product source (tracked or
// new, outside tests/ and bench/) for system(), popen(), /bin/sh, "sh" "-c", and exec of
// tc, nft or stress-ng, and fails naming file:line.
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "tests/test_support.h"

namespace chaosdrill {
namespace {

bool IsProductSource(const std::string& path) {
  if (absl::StartsWith(path, "tests/") || absl::StartsWith(path, "bench/") ||
      absl::StartsWith(path, "build") || absl::StartsWith(path, "third_party/")) {
    return false;
  }
  for (const char* ext : {".cc", ".h", ".c", ".cpp", ".hpp", ".cu", ".cuh"}) {
    if (absl::EndsWith(path, ext)) return true;
  }
  return false;
}

TEST_CASE("product sources never use a shell or exec tc, nft or stress-ng", "[lint]") {
  testing::CommandResult files =
      testing::RunCommand({"/usr/bin/git", "-C", testing::SourcePath(""), "ls-files", "--cached",
                           "--others", "--exclude-standard"},
                          30'000);
  if (testing::SkipUnless(files.exit_code == 0, "git ls-files failed: " + files.err)) return;
  const std::regex forbidden[] = {
      std::regex(R"re(\bsystem\s*\()re"), std::regex(R"re(\bpopen\s*\()re"),
      std::regex(R"re("/bin/(ba|da)?sh")re"), std::regex(R"re("(ba|da)?sh"\s*,\s*"-c")re"),
      // tc, nft or stress-ng as a program name: exec*("tc", ...) or a path ending in it.
      std::regex(R"re(\bexec\w*\s*\(\s*"[^"]*\b(tc|nft|stress-ng)")re"),
      std::regex(R"re("(/usr)?(/s?bin)?/(tc|nft|stress-ng)")re"),
      std::regex(R"re(\{\s*"(tc|nft|stress-ng)"\s*,)re"),  // an argv array starting with it
  };
  int checked = 0;
  std::vector<std::string> hits;
  for (absl::string_view path : absl::StrSplit(files.out, '\n', absl::SkipEmpty())) {
    std::string p(path);
    if (!IsProductSource(p)) continue;
    std::ifstream in(testing::SourcePath(p));
    if (!in) continue;  // deleted in the working tree
    ++checked;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      std::string code = line;
      size_t comment = code.find("//");
      if (comment != std::string::npos) code.resize(comment);
      for (const std::regex& re : forbidden) {
        if (std::regex_search(code, re)) {
          hits.push_back(p + ":" + std::to_string(n) + ": " + line);
          break;
        }
      }
    }
  }
  CHECK(checked > 10);
  std::string report;
  for (const std::string& h : hits) report += h + "\n";
  INFO("shell or forbidden exec in product code:\n" << report);
  CHECK(hits.empty());
}

}  // namespace
}  // namespace chaosdrill
