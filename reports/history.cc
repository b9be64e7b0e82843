#include "reports/history.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "reports/html_writer.h"
#include "reports/report_format.h"
#include "reports/run_record_json.h"

namespace chaosdrill::reports {
namespace {

std::string Rto(const HistoryEntry& e) {
  if (e.faults == 0) return "—";
  return e.worst_rto_ns ? HumanDuration(*e.worst_rto_ns) : "unrecovered";
}
std::string Rpo(const HistoryEntry& e) {
  if (!e.rpo_writes) return "—";
  return absl::StrCat(*e.rpo_writes, " (", HumanDuration(e.rpo_ns), ")");
}

std::map<std::string, std::vector<const HistoryEntry*>> ByScenario(const History& h) {
  std::map<std::string, std::vector<const HistoryEntry*>> out;
  for (const HistoryEntry& e : h.entries) out[e.scenario].push_back(&e);
  return out;
}

// A small chart of worst RTO per run (unrecovered runs drawn at the top in red).
std::string TrendSvg(const std::vector<const HistoryEntry*>& runs) {
  constexpr int kW = 600, kH = 120, kPad = 24;
  int64_t max_rto = 1;
  for (const HistoryEntry* e : runs) {
    if (e->worst_rto_ns) max_rto = std::max(max_rto, *e->worst_rto_ns);
  }
  std::string s =
      absl::StrCat("<svg class=\"trend\" viewBox=\"0 0 ", kW, " ", kH,
                   "\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" "
                   "aria-label=\"worst RTO per run\">",
                   "<text x=\"4\" y=\"14\">worst RTO (max ", HumanDuration(max_rto), ")</text>");
  double step = runs.size() > 1 ? (kW - 2.0 * kPad) / (runs.size() - 1) : 0;
  std::string d;
  for (size_t i = 0; i < runs.size(); ++i) {
    const HistoryEntry* e = runs[i];
    double x = kPad + step * i;
    double y = e->worst_rto_ns ? kH - kPad - (kH - 2.0 * kPad) * *e->worst_rto_ns / max_rto : kPad;
    absl::StrAppend(&d, i == 0 ? "M" : "L", absl::StrFormat("%.1f %.1f ", x, y));
    absl::StrAppend(&s, "<circle class=\"", e->worst_rto_ns ? "pt" : "pt bad",
                    absl::StrFormat("\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\">", x, y), "<title>",
                    XmlEscape(e->run_id), ": ", Rto(*e), "</title></circle>");
  }
  absl::StrAppend(&s, "<path class=\"s-rps\" d=\"", d, "\"/></svg>");
  return s;
}

}  // namespace

HistoryEntry SummariseRun(const RunRecord& r, const std::string& file) {
  HistoryEntry e{.file = file,
                 .run_id = r.run_id,
                 .scenario = r.scenario_name,
                 .started_unix_ns = r.started_unix_ns,
                 .exit_status = r.exit_status,
                 .requests = r.analysis.requests,
                 .availability = r.analysis.availability,
                 .faults = r.faults.size()};
  int64_t worst = 0;
  bool unrecovered = false;
  for (const FaultResult& f : r.analysis.faults) {
    worst = std::max(worst, f.rto_ns);
    unrecovered |= f.impact && !f.recovered;
  }
  if (!unrecovered) e.worst_rto_ns = worst;
  if (r.analysis.rpo) {
    e.rpo_writes = r.analysis.rpo->lost;
    e.rpo_ns = r.analysis.rpo->rpo_ns;
  }
  return e;
}

absl::StatusOr<History> LoadHistory(const std::string& dir) {
  History h;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec)
    return absl::NotFoundError(absl::StrCat("listing run records in ", dir, ": ", ec.message()));
  std::vector<std::string> files;
  for (const auto& entry : it) {
    if (entry.path().extension() == ".json") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) {
    absl::StatusOr<RunRecord> r = ReadRunRecord(file);
    if (!r.ok()) {
      h.skipped.push_back(std::string(r.status().message()));
      continue;
    }
    h.entries.push_back(SummariseRun(*r, file));
  }
  std::stable_sort(h.entries.begin(), h.entries.end(),
                   [](const HistoryEntry& a, const HistoryEntry& b) {
                     if (a.scenario != b.scenario) return a.scenario < b.scenario;
                     return a.started_unix_ns < b.started_unix_ns;
                   });
  return h;
}

std::string RenderHistoryMarkdown(const History& h) {
  std::string out = absl::StrCat("### chaosdrill history: ", h.entries.size(), " runs\n");
  for (const auto& [scenario, runs] : ByScenario(h)) {
    absl::StrAppend(&out, "\n#### ", MarkdownCell(scenario), "\n\n",
                    "| Started | Run | Verdict | Worst RTO | RPO (writes) | Availability |\n"
                    "|---|---|---|---|---|---|\n");
    for (const HistoryEntry* e : runs) {
      absl::StrAppend(&out, "| ", Rfc3339(e->started_unix_ns), " | ", MarkdownCell(e->run_id),
                      " | ", VerdictWords(e->exit_status), " | ", Rto(*e), " | ", Rpo(*e), " | ",
                      absl::StrFormat("%.4f", e->availability), " |\n");
    }
  }
  if (!h.skipped.empty()) {
    absl::StrAppend(&out, "\nSkipped ", h.skipped.size(), " unreadable files:\n");
    for (const std::string& s : h.skipped) absl::StrAppend(&out, "- ", MarkdownCell(s), "\n");
  }
  return out;
}

std::string RenderHistoryHtml(const History& h) {
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>chaosdrill history</title>\n",
      ReportStyle(),
      "<style>svg.trend{width:100%;max-width:600px;height:auto}svg .pt{fill:var(--rps)}"
      "svg .pt.bad{fill:var(--bad)}</style>\n</head>\n<body>\n<main>\n<h1>chaosdrill history</h1>\n"
      "<p class=\"muted\">",
      h.entries.size(), " runs, ", h.skipped.size(), " unreadable files skipped</p>\n");
  for (const auto& [scenario, runs] : ByScenario(h)) {
    absl::StrAppend(&out, "<h2>", XmlEscape(scenario), "</h2>\n", TrendSvg(runs),
                    "\n<table><thead><tr><th>Started</th><th>Run</th><th>Verdict</th>"
                    "<th>Worst RTO</th><th>RPO (writes)</th><th>Availability</th></tr></thead>"
                    "<tbody>\n");
    for (const HistoryEntry* e : runs) {
      absl::StrAppend(&out, "<tr><td>", Rfc3339(e->started_unix_ns), "</td><td>",
                      XmlEscape(e->run_id), "</td><td class=\"",
                      e->exit_status == ExitStatus::kPassed ? "pass" : "fail", "\">",
                      VerdictWords(e->exit_status), "</td><td>", Rto(*e), "</td><td>", Rpo(*e),
                      "</td><td>", absl::StrFormat("%.4f", e->availability), "</td></tr>\n");
    }
    absl::StrAppend(&out, "</tbody></table>\n");
  }
  if (!h.skipped.empty()) {
    absl::StrAppend(&out, "<h2>Skipped files</h2>\n<ul>\n");
    for (const std::string& s : h.skipped) absl::StrAppend(&out, "<li>", XmlEscape(s), "</li>\n");
    absl::StrAppend(&out, "</ul>\n");
  }
  absl::StrAppend(&out, "</main>\n</body>\n</html>\n");
  return out;
}

}  // namespace chaosdrill::reports
