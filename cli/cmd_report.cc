// `chaosdrill report`: renders one run record (HTML, Markdown, JUnit, JSON), the game-day
// trend across a directory of records (--history), or merges the records of several
// load-generating runners of one scenario and analyses the merged data afresh (--merge).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "injector/fault_registry.h"
#include "reports/history.h"
#include "reports/merge.h"
#include "reports/report_writer.h"
#include "reports/run_record_json.h"
#include "runner/record_analysis.h"
#include "scenarios/scenario_loader.h"

namespace chaosdrill::cli {
namespace {

constexpr char kName[] = "chaosdrill report";

int Usage(absl::string_view message) {
  std::fprintf(stderr, "%s: %.*s\nRun '%s --help' for usage.\n", kName,
               static_cast<int>(message.size()), message.data(), kName);
  return kExitUsage;
}

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "%s: %.*s\n", kName, static_cast<int>(message.size()), message.data());
  return code;
}

// Where status lines ("wrote PATH") go: stdout, unless a report is being written there.
struct Out {
  bool stdout_taken = false;
  void Wrote(const std::string& path) const {
    std::fprintf(stdout_taken ? stderr : stdout, "wrote %s\n", path.c_str());
  }
};

// Writes `content` to `path` ("-" is stdout) atomically.
absl::Status WriteOut(const std::string& path, absl::string_view content) {
  if (path == "-") {
    if (std::fwrite(content.data(), 1, content.size(), stdout) != content.size() ||
        std::fflush(stdout) != 0) {
      return absl::UnavailableError("writing to standard output failed");
    }
    return absl::OkStatus();
  }
  return reports::WriteFileAtomically(path, content);
}

// RUN.json -> RUN.<ext> (RUN -> RUN.<ext> when it has no .json extension).
std::string Sibling(const std::string& record, absl::string_view ext) {
  std::string base = record;
  if (absl::EndsWith(base, ".json")) base.resize(base.size() - 5);
  return absl::StrCat(base, ".", ext);
}

int RenderOne(const std::string& file, std::string format, std::string output) {
  absl::StatusOr<reports::RunRecord> record = reports::ReadRunRecord(file);
  if (!record.ok()) return Fail(kExitUsage, record.status().message());
  if (format.empty()) format = "html";
  // HTML is a page to open: next to the record by default. The text formats are for
  // pipes and CI step summaries: standard output by default.
  if (output.empty()) output = format == "html" ? Sibling(file, "html") : "-";
  // JUnit and Markdown link the HTML report when it exists, else the record itself.
  const std::string html = Sibling(file, "html");
  std::error_code ec;
  const bool have_html = std::filesystem::exists(html, ec);
  absl::StatusOr<std::string> text =
      reports::RenderReport(*record, format, have_html ? html : file);
  if (!text.ok()) return Fail(kExitUsage, text.status().message());
  if (absl::Status s = WriteOut(output, *text); !s.ok()) return Fail(kExitInfra, s.message());
  if (output != "-") Out{}.Wrote(output);
  return kExitOk;
}

int History(const std::string& dir, std::string output, const std::string& markdown) {
  if (output == "-" && markdown == "-") {
    return Usage("-o and --markdown cannot both be '-' (standard output)");
  }
  absl::StatusOr<reports::History> h = reports::LoadHistory(dir);
  if (!h.ok()) return Fail(kExitUsage, h.status().message());
  for (const std::string& s : h->skipped) {
    std::fprintf(stderr, "%s: skipped %s\n", kName, s.c_str());
  }
  if (h->entries.empty()) {
    std::fprintf(stderr, "%s: no readable run records under %s\n", kName, dir.c_str());
  }
  if (output.empty())
    output = absl::StrCat(dir, absl::EndsWith(dir, "/") ? "" : "/", "history.html");
  Out out{.stdout_taken = output == "-" || markdown == "-"};
  if (absl::Status s = WriteOut(output, reports::RenderHistoryHtml(*h)); !s.ok()) {
    return Fail(kExitInfra, s.message());
  }
  if (output != "-") out.Wrote(output);
  if (!markdown.empty()) {
    if (absl::Status s = WriteOut(markdown, reports::RenderHistoryMarkdown(*h)); !s.ok()) {
      return Fail(kExitInfra, s.message());
    }
    if (markdown != "-") out.Wrote(markdown);
  }
  std::fprintf(stderr, "%s: %zu runs from %s, %zu files skipped\n", kName, h->entries.size(),
               dir.c_str(), h->skipped.size());
  return kExitOk;
}

int Merge(const std::vector<std::string>& files, const std::string& output,
          const std::string& scenario_file) {
  for (const std::string& f : files) {
    if (f == output) {
      return Usage(absl::StrCat("-o ", output,
                                " is one of the records being merged; refusing "
                                "to overwrite an input"));
    }
  }
  std::vector<reports::RunRecord> records;
  for (const std::string& f : files) {
    absl::StatusOr<reports::RunRecord> r = reports::ReadRunRecord(f);
    if (!r.ok()) return Fail(kExitUsage, r.status().message());
    records.push_back(*std::move(r));
  }
  absl::StatusOr<reports::RunRecord> merged = reports::MergeRecords(records, files);
  if (!merged.ok()) return Fail(kExitUsage, merged.status().message());

  // The analysis settings (SLO targets, good latency, hold) are the scenario's: the one
  // given, else the source embedded in the first record.
  const std::vector<FaultKindInfo> catalog = injector::FaultRegistry::Global().Catalog();
  scenarios::ScenarioLoadResult loaded =
      scenario_file.empty()
          ? scenarios::LoadScenario(records[0].scenario_source,
                                    absl::StrCat(files[0], " (scenario.source)"), catalog)
          : scenarios::LoadScenarioFile(scenario_file, catalog);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return Fail(kExitUsage,
                absl::StrCat("cannot re-analyse the merged runs: the scenario ",
                             scenario_file.empty() ? "embedded in " + files[0] : scenario_file,
                             " does not load (errors above)",
                             scenario_file.empty() ? "; give it with --scenario FILE" : ""));
  }
  const scenarios::Scenario& s = *loaded.scenario;
  if (!scenario_file.empty()) {
    // The merged record carries the scenario its analysis used.
    std::ifstream in(scenario_file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    merged->scenario_file = scenario_file;
    merged->scenario_source = text.str();
  }
  if (s.metadata.name != merged->scenario_name) {
    return Usage(absl::StrCat("--scenario ", scenario_file, " is scenario '", s.metadata.name,
                              "', but the records are '", merged->scenario_name, "'"));
  }
  double rate_factor = 0;  // runners' worth of the scenario's rate
  const double one_runner = static_cast<double>(static_cast<int64_t>(1e9 / s.load.rate));
  for (const reports::RunRecord& r : records) {
    if (r.request_interval_ns > 0) rate_factor += one_runner / r.request_interval_ns;
  }

  // The drill's own analysis (runner/record_analysis.h): SLO verdicts and the alert
  // verdicts from the probe series, the error budget scaled to the combined load.
  reports::RunRecord& m = *merged;
  m.analysis = runner::AnalyzeRecord(s, m, rate_factor);
  if (std::optional<std::string> failed = runner::SloFailure(m.analysis);
      failed && m.exit_status == reports::ExitStatus::kPassed) {
    m.exit_status = reports::ExitStatus::kSloFailed;
    m.exit_reason = *std::move(failed);
  }
  if (output == "-") {
    absl::Status s2 = WriteOut(
        "-",
        reports::ToJson(m).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    if (!s2.ok()) return Fail(kExitInfra, s2.message());
  } else if (absl::Status s2 = reports::WriteRunRecord(m, output); !s2.ok()) {
    return Fail(kExitInfra, s2.message());
  }
  std::fprintf(output == "-" ? stderr : stdout,
               "merged %zu records of %s: %zu requests, %zu writes, %s%s%s\n", records.size(),
               m.scenario_name.c_str(), m.requests.size(), m.writes.size(),
               m.exit_status == reports::ExitStatus::kPassed ? "SLOs met" : "FAILED",
               m.exit_reason.empty() ? "" : " — ", m.exit_reason.c_str());
  if (output != "-") Out{}.Wrote(output);
  return kExitOk;
}

}  // namespace

int ReportCommand(int argc, char** argv) {
  CLI::App app{
      "Render run records (the RUN.json `chaosdrill run` writes; docs/run-record.md).\n\n"
      "  chaosdrill report RUN.json [--format FORMAT] [-o FILE]\n"
      "      One record. FORMAT: html (default), md (markdown), junit, json, json-compact.\n"
      "      Without -o, HTML is written next to the record (RUN.html) and its path\n"
      "      printed; the other formats go to standard output. -o - is standard output.\n"
      "  chaosdrill report --history DIR [-o OUT.html] [--markdown OUT.md]\n"
      "      The game-day trend: RTO, RPO and availability per scenario over time, from\n"
      "      every *.json run record under DIR (recursively). -o defaults to\n"
      "      DIR/history.html. Unreadable or corrupt files are named on stderr with the\n"
      "      reason and skipped.\n"
      "  chaosdrill report --merge A.json B.json ... -o M.json [--scenario FILE]\n"
      "      Records of one scenario from several load-generating runners: request and\n"
      "      write logs, buckets and histograms merged exactly, then RTO/RPO/SLOs computed\n"
      "      afresh with the scenario embedded in A.json (or FILE). One record re-analyses\n"
      "      it with this chaosdrill.\n\n"
      "Exit: 0 written, 2 bad usage or an unreadable/invalid record (the file and what is\n"
      "wrong are printed), 4 an output could not be written.",
      kName};
  std::vector<std::string> files;
  std::string format, output, history, markdown, scenario;
  bool merge = false;
  app.add_option("RUN", files, "Run record files (RUN.json)");
  app.add_option("-f,--format", format, "html (default), md, markdown, junit, json, json-compact")
      ->check(CLI::IsMember({"html", "md", "markdown", "junit", "json", "json-compact"}));
  app.add_option("-o,--output", output, "Output file ('-' for standard output)");
  app.add_option("--history", history, "Render the trend of every run record under this DIR");
  app.add_option("--markdown", markdown, "With --history: also write the Markdown table here");
  app.add_flag("--merge", merge, "Merge the given records (same scenario) into -o");
  app.add_option("--scenario", scenario,
                 "With --merge: the scenario file whose SLOs to analyse with");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;

  if (!history.empty() && merge)
    return Usage("--history and --merge are different modes; pick one");
  if (!history.empty()) {
    if (!files.empty()) {
      return Usage(absl::StrCat("--history reads every record under ", history,
                                "; do not also name records (", files[0], ")"));
    }
    if (!format.empty()) {
      return Usage(
          "--format is for one record; --history writes HTML (-o) and Markdown "
          "(--markdown)");
    }
    if (!scenario.empty()) return Usage("--scenario goes with --merge");
    return History(history, output, markdown);
  }
  if (!markdown.empty()) {
    return Usage("--markdown goes with --history (for one record use --format md)");
  }
  if (merge) {
    if (files.empty()) return Usage("--merge needs the run records to merge");
    if (output.empty()) return Usage("--merge needs -o M.json (where the merged record goes)");
    if (!format.empty() && format != "json") {
      return Usage(
          "--merge writes a run record (JSON); render it afterwards with "
          "'chaosdrill report M.json --format ...'");
    }
    return Merge(files, output, scenario);
  }
  if (!scenario.empty()) return Usage("--scenario goes with --merge");
  if (files.empty()) {
    return Usage("give a run record (RUN.json), --history DIR, or --merge A.json B.json ...");
  }
  if (files.size() > 1) {
    return Usage(absl::StrCat("one run record at a time (got ", files.size(),
                              "); to combine several runners' records use --merge"));
  }
  return RenderOne(files[0], format, output);
}

}  // namespace chaosdrill::cli
