// `chaosdrill demo`: the drill it runs is exactly scenarios/library/demo.yaml (embedded at
// build time) and valid; a shortened run goes end to end against the reference service
// and prints the verdict, RTO/RPO and the HTML report's path.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/test_support.h"

namespace chaosdrill {
namespace {

using testing::ChaosdrillBinary;
using testing::RunCommand;
using testing::SkipUnless;
using testing::SourcePath;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool OnPath(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin"}) {
    if (access((std::string(dir) + "/" + name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

TEST_CASE("demo --help explains the drill and its flags", "[demo]") {
  REQUIRE(std::filesystem::exists(ChaosdrillBinary()));
  auto r = RunCommand({ChaosdrillBinary(), "demo", "--help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("--report-dir"));
  CHECK_THAT(r.out, Catch::Contains("--print-scenario"));
  CHECK_THAT(r.out, Catch::Contains("scenarios/library/demo.yaml"));
  CHECK_THAT(r.out, !Catch::Contains("--time-scale"));  // hidden, for tests
  auto top = RunCommand({ChaosdrillBinary(), "--help"});
  CHECK_THAT(top.out, Catch::Contains("demo"));
}

TEST_CASE("the built-in demo drill is scenarios/library/demo.yaml and validates", "[demo]") {
  REQUIRE(std::filesystem::exists(ChaosdrillBinary()));
  auto printed = RunCommand({ChaosdrillBinary(), "demo", "--print-scenario"});
  CHECK(printed.exit_code == 0);
  CHECK(printed.out == ReadFile(SourcePath("scenarios/library/demo.yaml")));
  auto v = RunCommand({ChaosdrillBinary(), "validate", SourcePath("scenarios/library/demo.yaml")});
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);
}

TEST_CASE("demo with a bad flag is a usage error", "[demo]") {
  REQUIRE(std::filesystem::exists(ChaosdrillBinary()));
  auto r = RunCommand({ChaosdrillBinary(), "demo", "--no-such-flag"});
  CHECK(r.exit_code == 2);
  auto scale = RunCommand({ChaosdrillBinary(), "demo", "--time-scale", "5"});
  CHECK(scale.exit_code == 2);
}

TEST_CASE("demo runs the built-in drill end to end and prints verdict, RTO, RPO and report",
          "[demo][slow]") {
  REQUIRE(std::filesystem::exists(ChaosdrillBinary()));
  if (SkipUnless(OnPath("redis-server") && OnPath("redis-sentinel"),
                 "redis-server / redis-sentinel not installed (scripts/install-deps.sh)")) {
    return;
  }
  testing::TempDir dir;
  // Half the demo's phases (about 30 s of drill); the SLO verdict may go either way on a
  // loaded machine, so this checks that the drill completed and said what it measured.
  auto r = RunCommand({ChaosdrillBinary(), "demo", "--report-dir", dir.path(), "--progress", "none",
                       "--time-scale", "0.5"},
                      240'000);
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK((r.exit_code == 0 || r.exit_code == 1));
  CHECK_THAT(r.out, Catch::Contains("Verdict: "));
  CHECK_THAT(r.out, Catch::Contains("kill-replica"));
  CHECK_THAT(r.out, Catch::Contains("gateway-latency"));
  CHECK_THAT(r.out, Catch::Contains("kill-store-primary"));
  CHECK_THAT(r.out, Catch::Contains("RPO: "));
  CHECK_THAT(r.out, Catch::Contains("availability "));
  const std::string marker = "Open the HTML report: file://";
  size_t at = r.out.find(marker);
  REQUIRE(at != std::string::npos);
  std::string html = r.out.substr(at + marker.size());
  html = html.substr(0, html.find('\n'));
  CHECK(std::filesystem::exists(html));
  CHECK(html.rfind(dir.path(), 0) == 0);
  CHECK_THAT(ReadFile(html), Catch::Contains("<svg"));
}

}  // namespace
}  // namespace chaosdrill
