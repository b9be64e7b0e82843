// RunRecord JSON: exact round trip, strict rejection of corrupt input with the JSON path in
// the message, and every record the tests build validated against
// reports/run_record.schema.json by Python's jsonschema (Debian python3-jsonschema).
#include "reports/run_record_json.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/reports/record_fixture.h"
#include "tests/test_support.h"

namespace chaosdrill::reports {
namespace {

using nlohmann::json;
using testing::DrillShape;

std::string Error(const json& j) {
  absl::StatusOr<RunRecord> r = FromJson(j);
  REQUIRE_FALSE(r.ok());
  return std::string(r.status().message());
}

TEST_CASE("run record JSON round trip is exact", "[reports][json]") {
  for (const RunRecord& r : {testing::EmptyRecord(), testing::SmallRecord(false),
                             testing::SmallRecord(true), testing::SyntheticDrill({})}) {
    json j = ToJson(r);
    absl::StatusOr<RunRecord> back = FromJson(j);
    REQUIRE(back.ok());
    CHECK(*back == r);
    // Through text, too (number formatting of doubles must round-trip).
    absl::StatusOr<RunRecord> reparsed = FromJson(json::parse(j.dump()));
    REQUIRE(reparsed.ok());
    CHECK(*reparsed == r);
  }
}

TEST_CASE("run record file written atomically reads back", "[reports][json]") {
  chaosdrill::testing::TempDir dir;
  RunRecord r = testing::SyntheticDrill({.seed = 3});
  std::string path = dir.path() + "/run.json";
  REQUIRE(WriteRunRecord(r, path, /*pretty=*/false).ok());
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  absl::StatusOr<RunRecord> back = ReadRunRecord(path);
  REQUIRE(back.ok());
  CHECK(*back == r);
}

TEST_CASE("corrupt run records are rejected with the JSON path", "[reports][json]") {
  const json good = ToJson(testing::SmallRecord());
  struct Case {
    const char* what;
    std::function<void(json&)> mutate;
    const char* expected;  // substring of the error
  };
  std::vector<Case> cases = {
      {"not an object", [](json& j) { j = json::array(); }, "(top level): expected an object"},
      {"wrong schema", [](json& j) { j["schema"] = "chaosdrill.run/v9"; }, "schema: expected"},
      {"missing run id", [](json& j) { j.erase("run_id"); }, "run_id: missing"},
      {"unknown field", [](json& j) { j["surprise"] = 1; }, "surprise: unknown field"},
      {"string for a number", [](json& j) { j["phases"]["observe_end_ns"] = "30s"; },
       "phases.observe_end_ns: expected an integer, got \"30s\""},
      {"bad request column length", [](json& j) { j["requests"]["latency_ns"].erase(0); },
       "requests.latency_ns: has 19 entries but requests.count is 20"},
      {"bad request entry", [](json& j) { j["requests"]["code"][3] = -1; },
       "requests.code[3]: expected a non-negative integer"},
      {"flags out of range", [](json& j) { j["requests"]["flags"][2] = 99; },
       "requests.flags[2]: expected request flags 0..7"},
      {"fault field type", [](json& j) { j["faults"][1]["reverted_ns"] = true; },
       "faults[1].reverted_ns: expected an integer"},
      {"analysis fault", [](json& j) { j["analysis"]["faults"][0].erase("rto_ns"); },
       "analysis.faults[0].rto_ns: missing"},
      {"lost write", [](json& j) { j["analysis"]["rpo"]["lost_writes"][0]["seq"] = 1.5; },
       "analysis.rpo.lost_writes[0].seq: expected an integer, got 1.5"},
      {"slo pass not bool", [](json& j) { j["analysis"]["slos"][1]["pass"] = "yes"; },
       "analysis.slos[1].pass: expected true or false"},
      {"read back", [](json& j) { j["read_back"]["s0"][0] = "1"; }, "read_back.s0[0]"},
      {"good > requests", [](json& j) { j["analysis"]["good"] = 5000; }, "analysis.good"},
      {"exit mismatch", [](json& j) { j["exit"]["status"] = "passed"; },
       "exit.status: \"passed\" does not match exit code 1"},
      {"exit code", [](json& j) { j["exit"]["code"] = 9; }, "exit.code: expected an exit code"},
      {"histogram", [](json& j) { j["send_skew"]["count"] = 3; }, "send_skew: histogram count"},
      {"timeline edited", [](json& j) { j["timeline"]["ok"][0] = 0; }, "timeline"},
      {"histogram edited", [](json& j) { j["histograms"]["overall"]["max"] = 1; },
       "histograms: do not match the request log"},
      {"huge integer", [](json& j) { j["started_unix_ns"] = 18446744073709551615ull; },
       "started_unix_ns: expected an integer that fits 64 bits"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    json j = good;
    c.mutate(j);
    CHECK_THAT(Error(j), Catch::Contains(c.expected));
  }
}

TEST_CASE("unreadable and truncated record files name the file", "[reports][json]") {
  chaosdrill::testing::TempDir dir;
  absl::StatusOr<RunRecord> missing = ReadRunRecord(dir.path() + "/nope.json");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(std::string(missing.status().message()), Catch::Contains("nope.json"));
  std::string text = ToJson(testing::SmallRecord()).dump();
  std::string path = dir.Write("cut.json", text.substr(0, text.size() / 2));
  absl::StatusOr<RunRecord> cut = ReadRunRecord(path);
  REQUIRE_FALSE(cut.ok());
  CHECK_THAT(std::string(cut.status().message()), Catch::Contains("cut.json: not JSON"));
  std::string bad = dir.Write("bad.json", "{\"schema\": \"chaosdrill.run/v1\"}");
  absl::StatusOr<RunRecord> b = ReadRunRecord(bad);
  REQUIRE_FALSE(b.ok());
  CHECK_THAT(std::string(b.status().message()), Catch::Contains("bad.json: run_id: missing"));
}

TEST_CASE("records validate against the JSON schema", "[reports][json][schema]") {
  chaosdrill::testing::TempDir dir;
  std::vector<std::string> paths;
  int i = 0;
  for (const RunRecord& r :
       {testing::EmptyRecord(), testing::SmallRecord(false), testing::SmallRecord(true),
        testing::SyntheticDrill({}), testing::SyntheticDrill({.faults = 0, .seed = 2}),
        testing::SyntheticDrill({.seed = 4, .parity = 1})}) {
    paths.push_back(dir.path() + "/r" + std::to_string(i++) + ".json");
    REQUIRE(WriteRunRecord(r, paths.back()).ok());
  }
  // A record with no RPO and an aborted exit, too.
  RunRecord aborted = testing::SmallRecord();
  aborted.analysis.rpo.reset();
  aborted.exit_status = ExitStatus::kAborted;
  paths.push_back(dir.path() + "/aborted.json");
  REQUIRE(WriteRunRecord(aborted, paths.back()).ok());
  absl::Status valid = chaosdrill::testing::ValidateRecordsAgainstSchema(paths);
  if (chaosdrill::testing::SkipUnless(!absl::IsFailedPrecondition(valid), valid.message())) {
    return;
  }
  INFO(valid.message());
  CHECK(valid.ok());
  // And the schema rejects a broken one, naming the file and the field.
  json broken = ToJson(testing::SmallRecord());
  broken["requests"]["code"][0] = "OK";
  std::string bad = dir.Write("broken.json", broken.dump());
  absl::Status rejected = chaosdrill::testing::ValidateRecordAgainstSchema(bad);
  CHECK(absl::IsInvalidArgument(rejected));
  CHECK_THAT(std::string(rejected.message()), Catch::Contains(bad + " ['requests', 'code', 0]"));
  absl::Status garbage =
      chaosdrill::testing::ValidateRecordAgainstSchema(dir.Write("garbage.json", "\x89PNG"));
  CHECK_THAT(std::string(garbage.message()), Catch::Contains("cannot be read as JSON"));
}

TEST_CASE("the example in docs/run-record.md is a valid record", "[reports][json][schema]") {
  std::ifstream in(chaosdrill::testing::SourcePath("docs/run-record.md"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const size_t start = doc.find("```json\n");
  REQUIRE(start != std::string::npos);
  const size_t end = doc.find("```", start + 8);
  REQUIRE(end != std::string::npos);
  const std::string example = doc.substr(start + 8, end - start - 8);
  json j = json::parse(example, nullptr, /*allow_exceptions=*/false);
  REQUIRE_FALSE(j.is_discarded());
  absl::StatusOr<RunRecord> r = FromJson(j);
  INFO(r.status().message());
  REQUIRE(r.ok());
  CHECK(r->requests.size() == 3);
  CHECK(r->requests[1].latency_ns() == 2'000'000'000);
  CHECK(r->analysis.faults[0].rto_ns ==
        r->analysis.faults[0].recovered_ns - r->faults[0].injected_ns);
  chaosdrill::testing::TempDir dir;
  absl::Status valid =
      chaosdrill::testing::ValidateRecordAgainstSchema(dir.Write("example.json", example));
  if (chaosdrill::testing::SkipUnless(!absl::IsFailedPrecondition(valid), valid.message())) {
    return;
  }
  INFO(valid.message());
  CHECK(valid.ok());
}

}  // namespace
}  // namespace chaosdrill::reports
