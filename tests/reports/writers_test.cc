// The JUnit and Markdown writers: golden output for a hand-built record (stable ordering,
// names with <&>"' escaped), JUnit parsed by Python's xml.etree with its counts checked,
// and empty and huge (10k faults) records rendered in bounded time.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
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

TEST_CASE("JUnit testcase names stay the same when the measured values change",
          "[reports][junit]") {
  // CI test history keys on classname + name: a name with a measured value would be a new
  // test every night. The values go into the failure message and <system-out>.
  RunRecord a = testing::SyntheticDrill({.duration_s = 40, .faults = 2});
  RunRecord b = a;
  b.analysis.faults[0].rto_ns = 2'470'000'000;
  b.analysis.faults[0].recovered_ns = b.faults[0].injected_ns + 2'470'000'000;
  b.analysis.faults[1].recovered = false;
  b.analysis.slos[0] = {.name = "rto",
                        .target = "3s",
                        .measured = "unrecovered",
                        .pass = false,
                        .reason = "fault slow-net-1 did not recover"};
  b.analysis.slos[2].measured = "0.9123";
  b.analysis.slos[2].pass = false;
  auto names = [](const std::string& xml) {
    std::vector<std::string> out;
    std::regex name("<testcase classname=\"([^\"]*)\" name=\"([^\"]*)\"");
    for (auto it = std::sregex_iterator(xml.begin(), xml.end(), name); it != std::sregex_iterator();
         ++it) {
      out.push_back((*it)[1].str() + " / " + (*it)[2].str());
    }
    return out;
  };
  const std::string ja = RenderJunit(a), jb = RenderJunit(b);
  const std::vector<std::string> na = names(ja);
  for (const std::string& n : na) UNSCOPED_INFO(n);
  CHECK(na == names(jb));
  CHECK(na == std::vector<std::string>{
                  "chaosdrill.replica-kill-under-load / drill completed",
                  "chaosdrill.replica-kill-under-load / slo rto \xE2\x89\xA4 3s",
                  "chaosdrill.replica-kill-under-load / slo rpo \xE2\x89\xA4 0 lost writes",
                  "chaosdrill.replica-kill-under-load / slo availability \xE2\x89\xA5 0.99",
                  "chaosdrill.replica-kill-under-load / fault kill-one: RTO \xE2\x89\xA4 3s",
                  "chaosdrill.replica-kill-under-load / fault slow-net-1: RTO \xE2\x89\xA4 3s"});
  // The measured values are in the output: system-out always, the failure message on failure.
  CHECK_THAT(ja, Catch::Contains("<system-out>recovered in 1.84s \xE2\x89\xA4 3s; time to "
                                 "impact 0s, outage 1.84s, failed requests 368</system-out>"));
  CHECK_THAT(jb, Catch::Contains("<system-out>recovered in 2.47s \xE2\x89\xA4 3s;"));
  CHECK_THAT(jb, Catch::Contains("<failure message=\"measured 0.9123, target 0.99\""));
  CHECK_THAT(jb, Catch::Contains("<system-out>measured 0.9123, target 0.99</system-out>"));
  CHECK_THAT(jb, Catch::Contains("injected at 18s: did not recover before the observe window "
                                 "ended\" type=\"slo\">"));
}

TEST_CASE("an in-progress record renders as an incomplete run, an error in JUnit",
          "[reports][junit][markdown][html]") {
  // What a runner that died mid-drill leaves: in_progress, its status so far "passed".
  RunRecord r = testing::SmallRecord();
  r.in_progress = true;
  r.exit_status = ExitStatus::kPassed;
  r.exit_reason = "in progress: faults phase at 12s (a runner that died leaves its record so)";
  r.analysis.slos_met = true;
  for (SloVerdict& v : r.analysis.slos) v.pass = true;
  const std::string md = RenderMarkdown(r);
  INFO(md);
  CHECK_THAT(md, Catch::StartsWith("### \xE2\x9A\xA0\xEF\xB8\x8F replica-kill: INCOMPLETE "
                                   "\xE2\x80\x94 the runner stopped before the drill ended\n"));
  CHECK_THAT(md, Catch::Contains("faults phase at 12s") && Catch::Contains("partial analysis"));
  CHECK_THAT(md, !Catch::Contains("passed"));
  const std::string html = RenderHtml(r);
  CHECK_THAT(html, Catch::Contains("<header class=\"verdict other incomplete\"><span "
                                   "class=\"badge\">INCOMPLETE</span>"));
  CHECK_THAT(html, Catch::Contains("the runner stopped before the drill ended") &&
                       Catch::Contains("faults phase at 12s"));
  CHECK_THAT(html, !Catch::Contains(">passed<") && !Catch::Contains("— passed —"));
  chaosdrill::testing::TempDir dir;
  const std::string junit = RenderJunit(r);
  chaosdrill::testing::CommandResult out = ParseJunit(dir.Write("running.xml", junit));
  INFO(out.err);
  REQUIRE(out.exit_code == 0);
  // 1 drill case (an error) + 2 SLOs (passing so far) + 2 faults (slow-net unrecovered so
  // far: a failure, marked partial).
  CHECK_THAT(out.out, Catch::StartsWith("5 1 1 5 1 1\n"));
  CHECK_THAT(junit, Catch::Contains("<error message=\"INCOMPLETE \xE2\x80\x94 the runner "
                                    "stopped before the drill ended: in progress: faults phase"));
  CHECK_THAT(junit, Catch::Contains("<property name=\"exit_status\" value=\"running\"/>"));
  CHECK_THAT(junit, Catch::Contains("partial analysis (the runner stopped before the drill "
                                    "ended): proxy.latency on gateway"));
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
