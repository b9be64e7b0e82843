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

std::string Verdict(const HistoryEntry& e) {
  return e.in_progress ? "in progress (runner stopped)" : VerdictWords(e.exit_status);
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
                 .in_progress = r.in_progress,
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
  namespace fs = std::filesystem;
  History h;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("listing run records in ", dir, ": ", ec ? ec.message() : "not a directory"));
  }
  std::vector<std::string> files;
  std::vector<std::pair<std::string, std::string>> bad;  // path, reason
  // Depth first with an explicit stack: an unreadable subdirectory is noted and its
  // siblings still listed (recursive_directory_iterator gives up at the first error).
  std::vector<std::pair<fs::path, int>> pending = {{fs::path(dir), 0}};
  constexpr int kMaxDepth = 32;
  while (!pending.empty()) {
    auto [at, depth] = pending.back();
    pending.pop_back();
    fs::directory_iterator it(at, ec);
    if (ec) {
      if (depth == 0) {
        return absl::NotFoundError(
            absl::StrCat("listing run records in ", dir, ": ", ec.message()));
      }
      bad.push_back({at.string(), absl::StrCat("cannot list directory: ", ec.message())});
      ec.clear();
      continue;
    }
    for (const fs::directory_iterator end; it != end; it.increment(ec)) {
      if (ec) break;
      const fs::directory_entry& entry = *it;
      std::error_code e1, e2;
      const bool link = entry.is_symlink(e1);
      if (!link && entry.is_directory(e2)) {
        if (depth + 1 <= kMaxDepth) pending.push_back({entry.path(), depth + 1});
        continue;
      }
      if (entry.path().extension() != ".json") continue;
      if (link && !fs::exists(entry.path(), e1)) {
        bad.push_back({entry.path().string(),
                       absl::StrCat("dangling symbolic link (target ",
                                    fs::read_symlink(entry.path(), e2).string(), " is missing)")});
      } else if (!fs::is_directory(entry.path(), e1)) {
        files.push_back(entry.path().string());
      }
    }
    if (ec) {
      bad.push_back({at.string(), absl::StrCat("listing stopped: ", ec.message())});
      ec.clear();
    }
  }
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) {
    absl::StatusOr<RunRecord> r = ReadRunRecord(file);
    if (!r.ok()) {
      std::string reason(r.status().message());
      // ReadRunRecord's messages start with the path, except OS errors ("reading run
      // record PATH: ..."); every skipped line starts with the path.
      if (reason.rfind(file + ": ", 0) == 0) {
        reason.erase(0, file.size() + 2);
      } else if (std::string prefix = absl::StrCat("reading run record ", file, ": ");
                 reason.rfind(prefix, 0) == 0) {
        reason = absl::StrCat("cannot read: ", reason.substr(prefix.size()));
      }
      bad.push_back({file, reason});
      continue;
    }
    h.entries.push_back(SummariseRun(*r, file));
  }
  std::sort(bad.begin(), bad.end());
  for (const auto& [path, reason] : bad) h.skipped.push_back(absl::StrCat(path, ": ", reason));
  std::stable_sort(h.entries.begin(), h.entries.end(),
                   [](const HistoryEntry& a, const HistoryEntry& b) {
                     if (a.scenario != b.scenario) return a.scenario < b.scenario;
                     if (a.started_unix_ns != b.started_unix_ns) {
                       return a.started_unix_ns < b.started_unix_ns;
                     }
                     return a.file < b.file;
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
                      " | ", Verdict(*e), " | ", Rto(*e), " | ", Rpo(*e), " | ",
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
                      e->exit_status == ExitStatus::kPassed && !e->in_progress ? "pass" : "fail",
                      "\">", Verdict(*e), "</td><td>", Rto(*e), "</td><td>", Rpo(*e), "</td><td>",
                      absl::StrFormat("%.4f", e->availability), "</td></tr>\n");
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
