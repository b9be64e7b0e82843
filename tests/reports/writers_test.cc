// The JUnit and Markdown writers: golden output for a hand-built record (stable ordering,
// names with <&>"' escaped), JUnit parsed by Python's xml.etree with its counts checked,
// and empty and huge (10k faults) records rendered in bounded time.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "reports/html_writer.h"
#include "reports/junit_writer.h"
#include "reports/markdown_writer.h"
#include "reports/report_writer.h"
#include "reports/run_record_json.h"
#include "tests/reports/record_fixture.h"
#include "tests/test_support.h"

namespace chaosdrill::reports {
namespace {

// Golden files live in tests/reports/golden/; CHAOSDRILL_UPDATE_GOLDEN=1 rewrites them
// from the current output (review the diff before committing).
void CheckGolden(const std::string& actual, const std::string& name) {
  std::string path = chaosdrill::testing::SourcePath("tests/reports/golden/" + name);
  if (std::getenv("CHAOSDRILL_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary) << actual;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream expected;
  expected << in.rdbuf();
  INFO("golden file " << path);
  CHECK(actual == expected.str());
}

// Parses JUnit XML with Python's xml.etree and prints "tests failures errors cases
// failure-elements error-elements" of the (single) suite.
chaosdrill::testing::CommandResult ParseJunit(const std::string& path) {
  return chaosdrill::testing::RunCommand(
      {"/usr/bin/python3", "-c",
       "import sys,xml.etree.ElementTree as E\n"
       "root=E.parse(sys.argv[1]).getroot()\n"
       "assert root.tag=='testsuites', root.tag\n"
       "s=root.findall('testsuite'); assert len(s)==1\n"
       "s=s[0]; cases=s.findall('testcase')\n"
       "f=sum(1 for c in cases if c.find('failure') is not None)\n"
       "e=sum(1 for c in cases if c.find('error') is not None)\n"
       "props={p.get('name'):p.get('value') for p in s.find('properties')}\n"
       "assert int(root.get('tests'))==int(s.get('tests'))\n"
       "print(s.get('tests'),s.get('failures'),s.get('errors'),len(cases),f,e)\n"
       "print(s.get('name'))\n"
       "print(props['run_id'])\n"
       "print(cases[-1].get('name') if cases else '')\n",
       path},
      60'000);
}

TEST_CASE("JUnit golden output", "[reports][junit]") {
  CheckGolden(RenderJunit(testing::SmallRecord(true), "out/kill.html"), "small.junit.xml");
}

TEST_CASE("Markdown golden output", "[reports][markdown]") {
  CheckGolden(RenderMarkdown(testing::SmallRecord(true), "[Full report](out/kill.html)"),
              "small.md");
}

TEST_CASE("JUnit parses with Python's xml library and counts add up", "[reports][junit]") {
  chaosdrill::testing::TempDir dir;
  RunRecord r = testing::SmallRecord(true);
  r.scenario_name += "\x01\xff bad bytes";  // control char dropped, invalid UTF-8 replaced
  std::string path = dir.Write("small.xml", RenderJunit(r, "a<b>.html"));
  chaosdrill::testing::CommandResult out = ParseJunit(path);
  INFO(out.err);
  REQUIRE(out.exit_code == 0);
  // 1 drill case + 2 SLOs + 2 faults; rto SLO fails, slow-net fault fails.
  CHECK_THAT(out.out, Catch::StartsWith("5 2 0 5 2 0\nreplica-kill<&>\"'\xEF\xBF\xBD bad bytes\n"
                                        "kill-20261123T190500Z-ab12\n"));
}

TEST_CASE("empty and aborted records render", "[reports][junit][markdown]") {
  chaosdrill::testing::TempDir dir;
  RunRecord empty = testing::EmptyRecord();
  chaosdrill::testing::CommandResult out = ParseJunit(dir.Write("e.xml", RenderJunit(empty)));
  REQUIRE(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::StartsWith("1 0 0 1 0 0\n"));
  CHECK_THAT(RenderMarkdown(empty), Catch::Contains("empty: passed"));
  RunRecord aborted = testing::SmallRecord();
  aborted.exit_status = ExitStatus::kAborted;
  aborted.exit_reason = "abort condition: success ratio below 0.5 for 10s";
  out = ParseJunit(dir.Write("a.xml", RenderJunit(aborted)));
  REQUIRE(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::StartsWith("5 2 1 5 2 1\n"));
  CHECK_THAT(RenderMarkdown(aborted), Catch::Contains("> abort condition: success ratio"));
}

TEST_CASE("a record with 10k faults renders every format in bounded time",
          "[reports][junit][markdown][html]") {
  RunRecord r = testing::SyntheticDrill({.duration_s = 120, .faults = 1});
  const FaultEvent f0 = r.faults[0];
  const FaultResult res0 = r.analysis.faults[0];
  r.faults.clear();
  r.analysis.faults.clear();
  for (int i = 0; i < 10'000; ++i) {
    FaultEvent f = f0;
    f.name = "f" + std::to_string(i);
    f.injected_ns = 10'000'000'000 + i * 10'000'000LL;
    r.faults.push_back(f);
    FaultResult res = res0;
    res.name = f.name;
    r.analysis.faults.push_back(res);
  }
  auto start = std::chrono::steady_clock::now();
  std::string junit = RenderJunit(r);
  std::string md = RenderMarkdown(r);
  std::string html = RenderHtml(r);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("rendered in " << seconds << " s");
  CHECK(seconds < 60);        // quadratic name lookups would take minutes; this is generous
  CHECK(md.size() < 20'000);  // fault table capped for PR comments
  CHECK_THAT(md, Catch::Contains("9,950 more faults"));
  chaosdrill::testing::TempDir dir;
  chaosdrill::testing::CommandResult out = ParseJunit(dir.Write("huge.xml", junit));
  REQUIRE(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::StartsWith("10004 2 0 10004 2 0\n"));
}

TEST_CASE("WriteReports writes one file per format and returns the paths", "[reports]") {
  chaosdrill::testing::TempDir dir;
  RunRecord r = testing::SmallRecord();
  absl::StatusOr<std::vector<std::string>> paths =
      WriteReports(r, {"json", "html", "junit", "markdown", "md"}, dir.path() + "/out");
  REQUIRE(paths.ok());
  std::string base = dir.path() + "/out/" + r.run_id;
  CHECK(*paths ==
        std::vector<std::string>{base + ".json", base + ".html", base + ".xml", base + ".md"});
  absl::StatusOr<RunRecord> back = ReadRunRecord(base + ".json");
  REQUIRE(back.ok());
  CHECK(*back == r);
  absl::StatusOr<std::vector<std::string>> bad = WriteReports(r, {"pdf"}, dir.path());
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("unknown report format 'pdf'"));
}

}  // namespace
}  // namespace chaosdrill::reports
