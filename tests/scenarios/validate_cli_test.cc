// `chaosdrill validate` as a user runs it: exit codes and the printed error lines.
#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "tests/test_support.h"

namespace chaosdrill::scenarios {
namespace {

using chaosdrill::testing::ChaosdrillBinary;
using chaosdrill::testing::RunCommand;
using chaosdrill::testing::SourcePath;
using chaosdrill::testing::TempDir;

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST_CASE("validate prints every error as FILE:LINE:COL: path: message and exits 2",
          "[scenarios][cli]") {
  REQUIRE(std::filesystem::exists(ChaosdrillBinary()));
  TempDir dir;
  std::string bad = dir.Write("bad.yaml",
                              "apiVersion: chaosdrill/v1\n"
                              "kind: Scenario\n"
                              "metadata: {name: three-errors}\n"
                              "target: {reference: {replicas: 3}}\n"
                              "load:\n"
                              "  rate: -5/s\n"
                              "  timout: 2s\n"
                              "phases:\n"
                              "  baseline: 10x\n");
  std::string good = dir.Write("good.yaml",
                               "apiVersion: chaosdrill/v1\n"
                               "kind: Scenario\n"
                               "metadata: {name: fine}\n"
                               "target: {reference: {replicas: 3}}\n"
                               "load: {rate: 10/s}\n");
  auto r = RunCommand({ChaosdrillBinary(), "validate", good, bad});
  INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.out == good + ": ok\n");
  std::vector<std::string> lines = Lines(r.err);
  REQUIRE(lines.size() == 3);
  const std::regex format(R"(^(.+):(\d+):(\d+): ([A-Za-z_\[\]0-9.()]+): (.+)$)");
  for (const std::string& line : lines) {
    std::smatch m;
    REQUIRE(std::regex_match(line, m, format));
    CHECK(m[1] == bad);
  }
  CHECK(lines[0] == bad + ":6:9: load.rate: invalid rate \"-5/s\": must not be negative");
  CHECK(lines[1].rfind(bad + ":7:3: load.timout: unknown field \"timout\"; did you mean", 0) == 0);
  CHECK(lines[2].rfind(bad + ":9:13: phases.baseline: invalid duration \"10x\"", 0) == 0);
}

TEST_CASE("validate without files is a usage error", "[scenarios][cli]") {
  REQUIRE(std::filesystem::exists(ChaosdrillBinary()));
  auto r = RunCommand({ChaosdrillBinary(), "validate"});
  CHECK(r.exit_code == 2);
  auto help = RunCommand({ChaosdrillBinary(), "validate", "--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.out, Catch::Contains("FILE:LINE:COL: field.path: message"));
}

TEST_CASE("validate accepts the scenario library against the registered fault kinds",
          "[scenarios][cli]") {
  REQUIRE(std::filesystem::exists(ChaosdrillBinary()));
  std::vector<std::string> argv = {ChaosdrillBinary(), "validate"};
  for (const auto& e : std::filesystem::directory_iterator(SourcePath("scenarios/library"))) {
    if (e.path().extension() == ".yaml") argv.push_back(e.path().string());
  }
  auto r = RunCommand(argv);
  INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
  // Every kind is registered in every build (gpu.* as "built without CUDA" stand-ins), so
  // an unknown fault kind in the library is a failure, never a skip.
  CHECK(r.err.empty());
  CHECK(r.exit_code == 0);
  CHECK(Lines(r.out).size() == argv.size() - 2);
}

}  // namespace
}  // namespace chaosdrill::scenarios
