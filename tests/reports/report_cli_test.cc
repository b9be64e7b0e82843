// `chaosdrill report` as a user runs it (build/chaosdrill as a child process): every
// format, -o and its defaults, unreadable and invalid records, wrong flag combinations
// (exit 2 with the problem named), --history over a directory with bad files, and --merge
// of a drill split between two runners, whose fresh analysis equals the single record's.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "reports/run_record_json.h"
#include "tests/reports/record_fixture.h"
#include "tests/test_support.h"

namespace chaosdrill::reports {
namespace {

using chaosdrill::testing::ChaosdrillBinary;
using chaosdrill::testing::CommandResult;
using chaosdrill::testing::TempDir;
using nlohmann::json;

CommandResult Report(std::vector<std::string> args) {
  REQUIRE(std::filesystem::exists(ChaosdrillBinary()));
  args.insert(args.begin(), {ChaosdrillBinary(), "report"});
  CommandResult r = chaosdrill::testing::RunCommand(args, 120'000);
  UNSCOPED_INFO("exit " << r.exit_code << "\nstdout:\n"
                        << r.out.substr(0, 3000) << "\nstderr:\n"
                        << r.err.substr(0, 3000));
  return r;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void CheckSchema(const std::vector<std::string>& paths) {
  absl::Status valid = chaosdrill::testing::ValidateRecordsAgainstSchema(paths);
  if (absl::IsFailedPrecondition(valid)) {
    WARN("schema not checked: " << valid.message());
    return;
  }
  INFO(valid.message());
  CHECK(valid.ok());
}

TEST_CASE("report renders one record in every format", "[reports][cli]") {
  TempDir dir;
  const std::string run = dir.path() + "/kill.json";
  const RunRecord record = testing::SmallRecord(true);
  REQUIRE(WriteRunRecord(record, run).ok());

  SECTION("default: HTML next to the record, its path printed") {
    CommandResult r = Report({run});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "wrote " + dir.path() + "/kill.html\n");
    CHECK_THAT(Slurp(dir.path() + "/kill.html"), Catch::StartsWith("<!DOCTYPE html>") &&
                                                     Catch::Contains("replica-kill&lt;&amp;&gt;"));
  }
  SECTION("markdown to standard output, linking the HTML report when it exists") {
    CommandResult r = Report({run, "--format", "md"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("SLO failed") && Catch::Contains("(" + run + ")"));
    REQUIRE(Report({run}).exit_code == 0);
    CHECK_THAT(Report({run, "-f", "markdown"}).out,
               Catch::Contains("(" + dir.path() + "/kill.html)"));
  }
  SECTION("junit into a file") {
    const std::string xml = dir.path() + "/kill.xml";
    CommandResult r = Report({run, "--format=junit", "-o", xml});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "wrote " + xml + "\n");
    CHECK_THAT(Slurp(xml), Catch::StartsWith("<?xml") && Catch::Contains("<testsuites"));
  }
  SECTION("json and json-compact reproduce the record") {
    CommandResult pretty = Report({run, "--format", "json"});
    REQUIRE(pretty.exit_code == 0);
    absl::StatusOr<RunRecord> back = FromJson(json::parse(pretty.out));
    REQUIRE(back.ok());
    CHECK(*back == record);
    CommandResult compact = Report({run, "--format", "json-compact", "-o", "-"});
    REQUIRE(compact.exit_code == 0);
    CHECK(std::count(compact.out.begin(), compact.out.end(), '\n') == 1);
    CHECK(json::parse(compact.out) == json::parse(pretty.out));
  }
}

TEST_CASE("report names the file and what is wrong with it, exit 2", "[reports][cli]") {
  TempDir dir;
  std::string missing = dir.path() + "/missing.json";
  CommandResult r = Report({missing});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(missing) && Catch::Contains("No such file"));

  std::string text = ToJson(testing::SmallRecord()).dump();
  std::string cut = dir.Write("cut.json", text.substr(0, 100));
  r = Report({cut, "--format", "md"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(cut + ": not JSON"));
  CHECK(r.out.empty());

  json v2 = ToJson(testing::SmallRecord());
  v2["schema"] = "chaosdrill.run/v2";
  std::string future = dir.Write("future.json", v2.dump());
  r = Report({future});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(future + ": schema: expected \"chaosdrill.run/v1\""));
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/future.html"));

  json edited = ToJson(testing::SmallRecord());
  edited["analysis"]["faults"][1]["rto_ns"] = "fast";
  std::string bad = dir.Write("edited.json", edited.dump());
  r = Report({bad});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(bad + ": analysis.faults[1].rto_ns: expected an integer"));

  // An output that cannot be written is exit 4, naming it.
  std::string good = dir.path() + "/good.json";
  REQUIRE(WriteRunRecord(testing::SmallRecord(), good).ok());
  r = Report({good, "-o", dir.path() + "/no/such/dir/r.html"});
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.err, Catch::Contains(dir.path() + "/no/such/dir/r.html"));
}

TEST_CASE("report refuses wrong flag combinations with exit 2", "[reports][cli]") {
  TempDir dir;
  std::string a = dir.path() + "/a.json";
  REQUIRE(WriteRunRecord(testing::SmallRecord(), a).ok());
  struct Case {
    std::vector<std::string> args;
    const char* expected;  // in stderr
  };
  const std::vector<Case> cases = {
      {{}, "give a run record"},
      {{a, a}, "one run record at a time (got 2)"},
      {{a, "--format", "pdf"}, "--format"},
      {{a, "--bogus"}, "--bogus"},
      {{a, "--markdown", "x.md"}, "--markdown goes with --history"},
      {{a, "--scenario", "s.yaml"}, "--scenario goes with --merge"},
      {{"--history", dir.path(), "--merge", a, "-o", "m.json"}, "pick one"},
      {{"--history", dir.path(), a}, "do not also name records"},
      {{"--history", dir.path(), "--format", "md"}, "--format is for one record"},
      {{"--history", dir.path(), "-o", "-", "--markdown", "-"}, "cannot both be '-'"},
      {{"--history"}, "--history"},
      {{"--merge", a}, "--merge needs -o"},
      {{"--merge", "-o", "m.json"}, "--merge needs the run records"},
      {{"--merge", a, "-o", dir.path() + "/m.json", "--format", "html"}, "render it afterwards"},
      {{"--merge", a, "-o", a}, "refusing to overwrite an input"},
  };
  for (const Case& c : cases) {
    std::string shown;
    for (const std::string& s : c.args) shown += " " + s;
    INFO("chaosdrill report" << shown);
    CommandResult r = Report(c.args);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(c.expected));
    CHECK(r.out.empty());
  }
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/m.json"));
  CommandResult help = Report({"--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.out, Catch::Contains("--history DIR") && Catch::Contains("--merge"));
}

TEST_CASE("report --history writes HTML and Markdown and names every skipped file",
          "[reports][cli][history]") {
  TempDir dir;
  for (int k = 0; k < 5; ++k) {
    RunRecord r = testing::SyntheticDrill(
        {.rate = 20, .duration_s = 20, .faults = 1, .seed = static_cast<uint64_t>(k + 1)});
    r.started_unix_ns = 1'795'460'700'000'000'000 + (4 - k) * 3'600'000'000'000LL;  // seed 5 first
    std::filesystem::create_directories(dir.path() + "/runs");
    REQUIRE(WriteRunRecord(r, dir.path() + "/runs/" + std::to_string(k) + ".json").ok());
  }
  std::string cut = dir.Write("runs/cut.json", "{\"schema\": \"chaosdrill.run/v1\", \"run");
  std::string junk = dir.Write("runs/old/junk.json", std::string("\0\1\2\3garbage", 11));
  CommandResult r = Report({"--history", dir.path() + "/runs", "--markdown", "-"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("skipped " + cut + ": not JSON") &&
                        Catch::Contains("skipped " + junk + ": not JSON") &&
                        Catch::Contains("wrote " + dir.path() + "/runs/history.html") &&
                        Catch::Contains("5 runs from " + dir.path() + "/runs, 2 files skipped"));
  CHECK_THAT(r.out, Catch::StartsWith("### chaosdrill history: 5 runs"));
  size_t first = r.out.find("-20261123T1915");  // seed 5 started first
  size_t last = r.out.find("-20261123T1911");   // seed 1 last
  CHECK(first != std::string::npos);
  CHECK(first < last);
  CHECK_THAT(Slurp(dir.path() + "/runs/history.html"), Catch::Contains("5 runs, 2 unreadable"));

  r = Report({"--history", dir.path() + "/runs", "-o", dir.path() + "/h.html", "--markdown",
              dir.path() + "/h.md"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "wrote " + dir.path() + "/h.html\nwrote " + dir.path() + "/h.md\n");
  CHECK_THAT(Slurp(dir.path() + "/h.md"), Catch::Contains("| Worst RTO |"));

  r = Report({"--history", dir.path() + "/nope"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(dir.path() + "/nope"));
}

TEST_CASE("report --merge of a drill split between two runners analyses like the drill",
          "[reports][cli][merge]") {
  TempDir dir;
  const RunRecord full = testing::SyntheticDrill({.duration_s = 40, .faults = 2});
  auto [a, b] = testing::SplitBetweenRunners(
      full, [](size_t i) { return static_cast<int>(i % 2); }, 0.5);
  testing::StartLater(b, 250'000'000);
  const std::string f = dir.path() + "/full.json", fa = dir.path() + "/a.json",
                    fb = dir.path() + "/b.json";
  REQUIRE(WriteRunRecord(full, f).ok());
  REQUIRE(WriteRunRecord(a, fa).ok());
  REQUIRE(WriteRunRecord(b, fb).ok());

  // One record "merged" is re-analysed: the reference analysis of the whole drill.
  CommandResult one = Report({"--merge", f, "-o", dir.path() + "/re.json"});
  REQUIRE(one.exit_code == 0);
  CommandResult two = Report({"--merge", fa, fb, "-o", dir.path() + "/m.json"});
  REQUIRE(two.exit_code == 0);
  CHECK_THAT(two.out, Catch::StartsWith("merged 2 records of replica-kill-under-load: 8000 "
                                        "requests, 2000 writes, FAILED — SLO failed: ") &&
                          Catch::Contains("rpo: "));
  CheckSchema({dir.path() + "/re.json", dir.path() + "/m.json"});
  json re = json::parse(Slurp(dir.path() + "/re.json"));
  json m = json::parse(Slurp(dir.path() + "/m.json"));
  json orig = ToJson(full);
  CHECK(m["timeline"] == orig["timeline"]);
  CHECK(m["histograms"] == orig["histograms"]);
  CHECK(m["requests"] == orig["requests"]);
  CHECK(m["analysis"] == re["analysis"]);
  CHECK(m["exit"] == re["exit"]);
  // The analysis is real: each synthetic outage (1.84 s, 2.14 s) is measured to within a
  // few request intervals, and the 3 lost writes are found.
  INFO(re["analysis"].dump(1));
  REQUIRE(re["analysis"]["faults"].size() == 2);
  for (int i = 0; i < 2; ++i) {
    double rto = re["analysis"]["faults"][i]["rto_ns"].get<double>() / 1e9;
    double outage = 1.84 + 0.3 * i;
    CHECK(rto >= outage - 0.01);
    CHECK(rto <= outage + 0.05);
  }
  CHECK(re["analysis"]["rpo"]["lost"] == 3);
  CHECK(re["exit"]["status"] == "slo_failed");

  // Records of another scenario, and the same record twice, are refused.
  RunRecord other = a;
  other.run_id = "other-run";
  other.scenario_name = "gateway-latency";
  const std::string fo = dir.path() + "/other.json";
  REQUIRE(WriteRunRecord(other, fo).ok());
  CommandResult mixed = Report({"--merge", fa, fo, "-o", dir.path() + "/x.json"});
  CHECK(mixed.exit_code == 2);
  CHECK_THAT(mixed.err, Catch::Contains(fo) && Catch::Contains("gateway-latency") &&
                            Catch::Contains("same scenario"));
  CommandResult twice = Report({"--merge", fa, fb, fa, "-o", dir.path() + "/x.json"});
  CHECK(twice.exit_code == 2);
  CHECK_THAT(twice.err, Catch::Contains("same run id"));
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/x.json"));

  // A record whose embedded scenario does not load needs --scenario.
  RunRecord no_source = a;
  no_source.scenario_source = "kind: Nonsense\n";
  const std::string fn = dir.path() + "/nosource.json";
  REQUIRE(WriteRunRecord(no_source, fn).ok());
  CommandResult unloadable = Report({"--merge", fn, fb, "-o", dir.path() + "/x.json"});
  CHECK(unloadable.exit_code == 2);
  CHECK_THAT(unloadable.err, Catch::Contains(fn) && Catch::Contains("--scenario FILE"));
  const std::string yaml = dir.Write("s.yaml", full.scenario_source);
  CommandResult given =
      Report({"--merge", fn, fb, "-o", dir.path() + "/x.json", "--scenario", yaml});
  CHECK(given.exit_code == 0);
  json x = json::parse(Slurp(dir.path() + "/x.json"));
  CHECK(x["analysis"] == re["analysis"]);
  CHECK(x["scenario"]["file"] == yaml);  // the merged record carries the scenario it used
  CHECK(x["scenario"]["source"] == full.scenario_source);
}

TEST_CASE("report --merge re-derives the alert verdicts from the probe series as the drill does",
          "[reports][cli][merge]") {
  TempDir dir;
  // The fixture's alert verdicts are what the drill derives (runner::AddProbeVerdicts):
  // ReplicaDown first seen firing at 13 s, 2.997 s after kill-one, within 30 s.
  const RunRecord full = testing::SyntheticDrill({.duration_s = 40, .faults = 2, .probes = true});
  auto [a, b] = testing::SplitBetweenRunners(
      full, [](size_t i) { return static_cast<int>(i % 2); }, 0.5);
  testing::StartLater(b, 250'000'000);
  const std::string f = dir.path() + "/full.json", fa = dir.path() + "/a.json",
                    fb = dir.path() + "/b.json";
  REQUIRE(WriteRunRecord(full, f).ok());
  REQUIRE(WriteRunRecord(a, fa).ok());
  REQUIRE(WriteRunRecord(b, fb).ok());
  CommandResult one = Report({"--merge", f, "-o", dir.path() + "/re.json"});
  REQUIRE(one.exit_code == 0);
  CommandResult two = Report({"--merge", fa, fb, "-o", dir.path() + "/m.json"});
  REQUIRE(two.exit_code == 0);
  CheckSchema({dir.path() + "/re.json", dir.path() + "/m.json"});
  const json orig = ToJson(full);
  for (const std::string& out : {dir.path() + "/re.json", dir.path() + "/m.json"}) {
    INFO(out);
    const json m = json::parse(Slurp(out));
    INFO(m["analysis"]["alerts"].dump(1));
    REQUIRE(m["analysis"]["alerts"].size() == 1);
    CHECK(m["analysis"]["alerts"] == orig["analysis"]["alerts"]);
    CHECK(m["analysis"]["alerts"][0]["detect_ns"] == 2'997'000'000);
    json verdict;
    for (const json& v : m["analysis"]["slos"]) {
      if (v["name"] == "alert[ReplicaDown after kill-one]") verdict = v;
    }
    CHECK(verdict == orig["analysis"]["slos"].back());
    CHECK(verdict["measured"] == "fired after 3.0s");
    CHECK(m["probes"] == orig["probes"]);
  }
}

}  // namespace
}  // namespace chaosdrill::reports
