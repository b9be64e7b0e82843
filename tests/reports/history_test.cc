// The game-day trend (`report --history`): 20 run records spread over nested directories,
// written in an order unrelated to their start times, next to a dangling symlink, a
// truncated record, a record of an unknown schema version, binary garbage, a directory
// link loop and non-JSON files. Every bad file is named with its reason and skipped; every
// good record is in the tables, oldest first.
#include "reports/history.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>

#include "absl/strings/str_split.h"
#include "reports/run_record_json.h"
#include "tests/reports/record_fixture.h"
#include "tests/test_support.h"

namespace chaosdrill::reports {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kDay = 86'400'000'000'000;

struct Drills {
  chaosdrill::testing::TempDir dir;
  std::vector<std::string> good;  // paths of the 20 good records
  std::string dangling, truncated, wrong_version, garbage;
};

// 20 records of two scenarios; record k starts on day (k * 7) % 20, so file order, seed
// order and time order all differ.
void WriteDrills(Drills& d) {
  for (int k = 0; k < 20; ++k) {
    RunRecord r = testing::SyntheticDrill(
        {.rate = 20, .duration_s = 30, .faults = 1 + k % 2, .seed = static_cast<uint64_t>(k + 1)});
    r.started_unix_ns = 1'795'460'700'000'000'000 + ((k * 7) % 20) * kDay;
    if (k % 4 == 3) r.scenario_name = "gateway-latency";
    if (k == 5) {  // one drill never recovered
      r.analysis.faults[0].recovered = false;
      r.exit_status = ExitStatus::kSloFailed;
    }
    std::string sub = absl::StrCat(d.dir.path(), "/", k % 3 == 0 ? "" : "2026/", "week", k % 5);
    fs::create_directories(sub);
    d.good.push_back(absl::StrCat(sub, "/z", 19 - k, ".json"));
    REQUIRE(WriteRunRecord(r, d.good.back(), /*pretty=*/k % 2 == 0).ok());
  }
  const std::string& root = d.dir.path();
  d.dangling = root + "/2026/week1/gone.json";
  REQUIRE(symlink((root + "/deleted-long-ago.json").c_str(), d.dangling.c_str()) == 0);
  std::string text = ToJson(testing::SmallRecord()).dump();
  d.truncated = d.dir.Write("cut.json", text.substr(0, text.size() * 2 / 3));
  nlohmann::json v9 = ToJson(testing::SmallRecord());
  v9["schema"] = "chaosdrill.run/v9";
  d.wrong_version = d.dir.Write("2026/week3/future.json", v9.dump());
  std::string bytes;
  for (int i = 0; i < 4096; ++i) bytes.push_back(static_cast<char>((i * 7919 + 13) % 256));
  d.garbage = d.dir.Write("2026/garbage.json", bytes);
  d.dir.Write("notes.txt", "not a record, not .json: ignored");
  d.dir.Write("2026/week2/history.html", "<html></html>");
  // A directory link back to the root: not followed, so no record is counted twice.
  REQUIRE(symlink(root.c_str(), (root + "/2026/loop").c_str()) == 0);
}

TEST_CASE("history over 20 records skips missing and corrupt files with the reason",
          "[reports][history]") {
  Drills d;
  WriteDrills(d);
  absl::StatusOr<History> h = LoadHistory(d.dir.path());
  REQUIRE(h.ok());
  for (const std::string& s : h->skipped) UNSCOPED_INFO("skipped: " << s);
  REQUIRE(h->entries.size() == 20);
  REQUIRE(h->skipped.size() == 4);
  // Skipped lines are "path: reason", in path order.
  auto skipped_for = [&](const std::string& path) -> std::string {
    for (const std::string& s : h->skipped) {
      if (s.rfind(path + ": ", 0) == 0) return s.substr(path.size() + 2);
    }
    FAIL("no skipped line for " << path);
    return "";
  };
  CHECK_THAT(skipped_for(d.dangling),
             Catch::Contains("dangling symbolic link") && Catch::Contains("deleted-long-ago.json"));
  CHECK_THAT(skipped_for(d.truncated), Catch::Contains("not JSON"));
  CHECK_THAT(skipped_for(d.wrong_version),
             Catch::Contains("schema: expected \"chaosdrill.run/v1\"") &&
                 Catch::Contains("chaosdrill.run/v9"));
  CHECK_THAT(skipped_for(d.garbage), Catch::Contains("not JSON"));
  CHECK(std::is_sorted(h->skipped.begin(), h->skipped.end()));

  // Every good file exactly once, grouped by scenario, oldest first within each.
  std::vector<std::string> files;
  for (const HistoryEntry& e : h->entries) files.push_back(e.file);
  std::vector<std::string> expected = d.good;
  std::sort(files.begin(), files.end());
  std::sort(expected.begin(), expected.end());
  CHECK(files == expected);
  for (size_t i = 1; i < h->entries.size(); ++i) {
    const HistoryEntry& a = h->entries[i - 1];
    const HistoryEntry& b = h->entries[i];
    INFO(a.file << " then " << b.file);
    CHECK(a.scenario <= b.scenario);
    if (a.scenario == b.scenario) CHECK(a.started_unix_ns < b.started_unix_ns);
  }
  CHECK(h->entries.front().scenario == "gateway-latency");
  CHECK(std::count_if(h->entries.begin(), h->entries.end(),
                      [](const HistoryEntry& e) { return !e.worst_rto_ns; }) == 1);

  // The Markdown table: one row per run, in the same order, dates ascending.
  std::string md = RenderHistoryMarkdown(*h);
  INFO(md);
  std::vector<std::string> rows;
  const std::regex row(R"(^\| (\d{4}-\d\d-\d\dT[0-9:.]+Z) \| ([^|]+) \|)");
  for (absl::string_view line : absl::StrSplit(md, '\n')) {
    std::smatch m;
    std::string l(line);
    if (std::regex_search(l, m, row)) rows.push_back(m[1]);
  }
  REQUIRE(rows.size() == 20);
  CHECK(std::is_sorted(rows.begin(), rows.begin() + 5));  // gateway-latency: 5 runs
  CHECK(std::is_sorted(rows.begin() + 5, rows.end()));    // replica-kill-under-load: 15
  CHECK_THAT(md, Catch::Contains("Skipped 4 unreadable files") && Catch::Contains("unrecovered"));
  std::string html = RenderHistoryHtml(*h);
  CHECK_THAT(html, Catch::Contains("20 runs, 4 unreadable files skipped"));
  size_t points = 0;
  for (size_t at = html.find("<circle"); at != std::string::npos; at = html.find("<circle", at + 1))
    ++points;
  CHECK(points == 20);
}

TEST_CASE("history of a missing directory is an error naming it", "[reports][history]") {
  chaosdrill::testing::TempDir dir;
  absl::StatusOr<History> h = LoadHistory(dir.path() + "/nope");
  REQUIRE_FALSE(h.ok());
  CHECK_THAT(std::string(h.status().message()), Catch::Contains(dir.path() + "/nope"));
  std::string file = dir.Write("file.json", "{}");
  CHECK_FALSE(LoadHistory(file).ok());
  absl::StatusOr<History> empty = LoadHistory(dir.path());  // only a bad file in it
  REQUIRE(empty.ok());
  CHECK(empty->entries.empty());
  CHECK(empty->skipped.size() == 1);
  CHECK_THAT(RenderHistoryMarkdown(*empty), Catch::Contains("0 runs"));
}

TEST_CASE("history records validate against the JSON schema", "[reports][history][schema]") {
  Drills d;
  WriteDrills(d);
  absl::Status valid = chaosdrill::testing::ValidateRecordsAgainstSchema(d.good);
  if (chaosdrill::testing::SkipUnless(!absl::IsFailedPrecondition(valid), valid.message())) {
    return;
  }
  INFO(valid.message());
  CHECK(valid.ok());
}

}  // namespace
}  // namespace chaosdrill::reports
