// Hostile and broken input: each case must come back with one clear error, quickly,
// without crashing or hanging. "Quickly" is not a timed assertion: this binary's ctest
// cases run under a 20 s timeout each (tests/scenarios/CMakeLists.txt), and every load
// prints how long it took.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "scenarios/scenario_loader.h"
#include "tests/scenarios/test_catalog.h"
#include "tests/test_support.h"

namespace chaosdrill::scenarios {
namespace {

ValidationError OnlyError(const ScenarioLoadResult& r) {
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.errors.size() == 1);
  INFO(r.errors[0].ToString());
  return r.errors[0];
}

// Prints the elapsed time of each load (the ctest timeout is the bound).
template <typename F>
ScenarioLoadResult Timed(const char* what, F&& load) {
  auto start = std::chrono::steady_clock::now();
  ScenarioLoadResult r = load();
  std::printf(
      "robustness: %s: %.1f ms\n", what,
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  return r;
}

ScenarioLoadResult Load(const std::string& content) {
  return Timed(absl::StrCat(content.size(), " bytes").c_str(),
               [&] { return LoadScenario(content, "x.yaml", testing::TestCatalog()); });
}

ScenarioLoadResult LoadFile(const std::string& path) {
  return Timed(path.c_str(), [&] { return LoadScenarioFile(path, testing::TestCatalog()); });
}

TEST_CASE("an empty file is an error, not a crash", "[scenarios][robustness]") {
  for (const char* content : {"", "\n\n", "# only a comment\n", "   \n\t\n"}) {
    ValidationError e = OnlyError(Load(content));
    CHECK(e.path == "(yaml)");
    CHECK(e.location == SourceLocation{1, 1});
    CHECK_THAT(e.message, Catch::Contains("the file is empty; expected a Scenario mapping"));
  }
  ValidationError e = OnlyError(Load("---\n"));  // one document holding null
  CHECK(e.path == "(root)");
  CHECK_THAT(e.message, Catch::Contains("expected a scenario (a mapping), found nothing (null)"));
}

TEST_CASE("a scalar or a list at the top is an error", "[scenarios][robustness]") {
  CHECK_THAT(OnlyError(Load("just text\n")).message,
             Catch::Contains("expected a scenario (a mapping), found \"just text\""));
  CHECK_THAT(OnlyError(Load("- a\n- b\n")).message,
             Catch::Contains("expected a scenario (a mapping), found a list"));
}

TEST_CASE("binary garbage is refused as not being text", "[scenarios][robustness]") {
  std::mt19937 rng(12345);
  std::string garbage(64 * 1024, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  ValidationError e = OnlyError(Load(garbage));
  CHECK(e.path == "(yaml)");
  CHECK_THAT(e.message, Catch::Contains("expected UTF-8 YAML text"));
  CHECK_THAT(e.message, Catch::Contains("is this a binary file?"));

  // A NUL after valid text is found at its position.
  ValidationError nul = OnlyError(Load(std::string("apiVersion: x\nkind: \0Scenario\n", 30)));
  CHECK(nul.location == SourceLocation{2, 7});
  CHECK_THAT(nul.message, Catch::Contains("found control byte 0x00"));
}

TEST_CASE("a 10 MB file is refused by size before it is parsed", "[scenarios][robustness]") {
  std::string big;
  big.reserve(10 * 1024 * 1024);
  while (big.size() < 10 * 1024 * 1024) big += "key: value # padding padding padding\n";
  ValidationError in_memory = OnlyError(Load(big));
  CHECK(in_memory.path == "(file)");
  CHECK_THAT(in_memory.message,
             Catch::Contains("the file is 10.0 MiB; expected a scenario of at most 4.0 MiB"));

  chaosdrill::testing::TempDir dir;
  std::string path = dir.Write("big.yaml", big);
  ValidationError from_file = OnlyError(LoadFile(path));
  CHECK(from_file.file == path);
  CHECK_THAT(from_file.message, Catch::Contains("expected a scenario of at most 4.0 MiB"));
}

TEST_CASE("a file just under the limit with many nodes stops at the node cap",
          "[scenarios][robustness]") {
  std::string many = "faults:\n";
  while (many.size() < 3 * 1024 * 1024) many += "  - x\n";
  ValidationError e = OnlyError(Load(many));
  CHECK(e.path == "(yaml)");
  CHECK_THAT(e.message, Catch::Contains("more than 20000 YAML nodes"));
}

TEST_CASE("deeply nested YAML is refused at a fixed depth", "[scenarios][robustness]") {
  SECTION("flow lists, a million levels") {
    std::string deep = "load: " + std::string(1'000'000, '[') + std::string(1'000'000, ']');
    ValidationError e = OnlyError(Load(deep));
    CHECK(e.path == "(yaml)");
    CHECK(e.location.line == 1);
    CHECK_THAT(e.message, Catch::Contains("YAML nested more than 32 levels deep"));
  }
  SECTION("block mappings") {
    std::string deep;
    for (int i = 0; i < 200; ++i) deep += std::string(i, ' ') + "k:\n";
    CHECK_THAT(OnlyError(Load(deep)).message, Catch::Contains("nested more than 32 levels"));
  }
}

TEST_CASE("an alias bomb (billion laughs) is refused before expansion", "[scenarios][robustness]") {
  std::string bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 10; ++i) {
    bomb += absl::StrCat("a", i, ": &a", i, " [");
    for (int k = 0; k < 10; ++k) bomb += absl::StrCat(k ? ", " : "", "*a", i - 1);
    bomb += "]\n";
  }
  ValidationError e = OnlyError(Load(bomb));
  CHECK(e.path == "(yaml)");
  CHECK(e.location.line == 5);  // a4 is the first level past 20000 expanded nodes
  CHECK_THAT(e.message, Catch::Contains("YAML aliases expand to more than 20000 nodes"));
}

TEST_CASE("a recursive alias is refused", "[scenarios][robustness]") {
  ValidationError e = OnlyError(Load("a: &a [b, *a]\n"));
  CHECK(e.location == SourceLocation{1, 11});
  CHECK_THAT(e.message, Catch::Contains("alias refers to a node that contains it"));
}

TEST_CASE("small aliases are allowed and shared", "[scenarios][robustness]") {
  const std::string yaml =
      "apiVersion: chaosdrill/v1\n"
      "kind: Scenario\n"
      "metadata: {name: aliases}\n"
      "target: {reference: {replicas: 3}}\n"
      "load: {rate: 10/s}\n"
      "faults:\n"
      "  - &kill {name: a, kind: process.kill, at: 15s, target: {role: \"replica[0]\"}}\n"
      "  - {name: b, kind: process.kill, at: 20s, target: {role: \"replica[1]\"}}\n";
  ScenarioLoadResult r = Load(yaml);
  for (const auto& e : r.errors) FAIL(e.ToString());
  REQUIRE(r.ok());
  CHECK(r.scenario->faults.size() == 2);
}

TEST_CASE("YAML syntax errors carry yaml-cpp's position", "[scenarios][robustness]") {
  ValidationError e = OnlyError(Load("apiVersion: chaosdrill/v1\nload: {rate: 1\n"));
  CHECK(e.path == "(yaml)");
  CHECK(e.location.line >= 2);
  CHECK_THAT(e.message, Catch::Contains("YAML syntax error: end of map flow not found"));
  CHECK_THAT(OnlyError(Load("a: *nothere\n")).message, Catch::Contains("YAML syntax error"));
}

TEST_CASE("a second YAML document is refused", "[scenarios][robustness]") {
  ValidationError e = OnlyError(Load("a: 1\n---\nb: 2\n"));
  CHECK(e.location.line == 2);
  CHECK_THAT(e.message, Catch::Contains("found a second YAML document"));
}

TEST_CASE("missing, unreadable and non-regular files are errors", "[scenarios][robustness]") {
  chaosdrill::testing::TempDir dir;
  ValidationError missing = OnlyError(LoadFile(dir.path() + "/nope.yaml"));
  CHECK(missing.path == "(file)");
  CHECK_THAT(missing.message, Catch::Contains("cannot open: No such file or directory"));
  ValidationError is_dir = OnlyError(LoadFile(dir.path()));
  CHECK_THAT(is_dir.message, Catch::Contains("expected a regular file"));
}

TEST_CASE("keys that are not strings are errors", "[scenarios][robustness]") {
  ScenarioLoadResult r = Load("? [a, b]\n: 1\napiVersion: chaosdrill/v1\n");
  REQUIRE_FALSE(r.ok());
  const ValidationError* key_error = nullptr;
  for (const ValidationError& e : r.errors) {
    if (e.message.find("expected a field name") != std::string::npos) key_error = &e;
  }
  REQUIRE(key_error != nullptr);
  CHECK(key_error->location == SourceLocation{1, 3});
  CHECK(key_error->message == "expected a field name, found a list");
}

}  // namespace
}  // namespace chaosdrill::scenarios
