#include "reports/markdown_writer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "reports/report_format.h"

namespace chaosdrill::reports {
namespace {

constexpr size_t kMaxFaultRows = 50;

std::string Icon(const RunRecord& r) {
  if (r.in_progress) return "\xE2\x9A\xA0\xEF\xB8\x8F";  // ⚠️
  switch (r.exit_status) {
    case ExitStatus::kPassed:
      return "\xE2\x9C\x85";  // ✅
    case ExitStatus::kSloFailed:
      return "\xE2\x9D\x8C";  // ❌
    default:
      return "\xE2\x9A\xA0\xEF\xB8\x8F";  // ⚠️
  }
}

}  // namespace

std::string RenderMarkdown(const RunRecord& r, const std::string& links) {
  const AnalysisResult& a = r.analysis;
  std::string out = absl::StrCat("### ", Icon(r), " ", MarkdownCell(r.scenario_name), ": ",
                                 RecordVerdict(r), "\n\n");
  absl::StrAppend(&out, "Run `", MarkdownCell(r.run_id), "` · ", Rfc3339(r.started_unix_ns), " · ",
                  MarkdownCell(r.target.empty() ? "target unknown" : r.target), " · ",
                  WithCommas(a.requests), " requests, availability ",
                  absl::StrFormat("%.4f", a.availability), ", p99 ", HumanDuration(a.p99_ns), "\n");
  if (r.in_progress) {
    absl::StrAppend(&out,
                    "\n> This record was written while the drill ran and the runner stopped "
                    "before it ended (",
                    MarkdownCell(r.exit_reason),
                    "). Every figure below is a partial analysis of what had settled by then.\n");
  } else if (r.exit_status != ExitStatus::kPassed && !r.exit_reason.empty()) {
    absl::StrAppend(&out, "\n> ", MarkdownCell(r.exit_reason), "\n");
  }
  if (!a.slos.empty()) {
    absl::StrAppend(&out, "\n| SLO | Target | Measured | Result |\n|---|---|---|---|\n");
    for (const SloVerdict& v : a.slos) {
      absl::StrAppend(&out, "| ", MarkdownCell(v.name), " | ", MarkdownCell(v.target), " | ",
                      MarkdownCell(v.measured), " | ",
                      v.pass ? "pass" : absl::StrCat("**FAIL**: ", MarkdownCell(v.reason)), " |\n");
    }
  }
  if (!r.faults.empty()) {
    absl::StrAppend(&out,
                    "\n| Fault | Kind | Target | Injected at | RTO | Impact |\n"
                    "|---|---|---|---|---|---|\n");
    size_t shown = 0;
    for (const FaultEvent& f : r.faults) {
      if (shown++ == kMaxFaultRows) {
        absl::StrAppend(&out, "\n… and ", WithCommas(r.faults.size() - kMaxFaultRows),
                        " more faults (see the HTML or JSON report).\n");
        break;
      }
      const FaultResult* res = ResultFor(r, shown - 1);
      bool ok = false;
      std::string outcome = FaultOutcome(r, f, res, &ok);
      std::string rto = f.inject_failed   ? "—"
                        : res == nullptr  ? "?"
                        : !res->impact    ? "0s"
                        : !res->recovered ? "**unrecovered**"
                        : ok              ? HumanDuration(res->rto_ns)
                                          : absl::StrCat("**", HumanDuration(res->rto_ns), "**");
      std::string impact;
      if (f.inject_failed) {
        impact = absl::StrCat("injection failed: ", f.error);
      } else if (res == nullptr || !res->impact) {
        impact = "none";
      } else {
        impact = absl::StrCat(WithCommas(res->failed_requests), " failed requests, outage ",
                              HumanDuration(res->outage_ns));
      }
      absl::StrAppend(&out, "| ", MarkdownCell(f.name), " | ", MarkdownCell(f.kind), " | ",
                      MarkdownCell(f.target), " | ",
                      f.inject_failed ? "—" : HumanDuration(f.injected_ns), " | ", rto, " | ",
                      MarkdownCell(impact), " |\n");
    }
  }
  if (a.rpo) {
    const RpoResult& p = *a.rpo;
    absl::StrAppend(&out, "\n**RPO:** ", WithCommas(p.lost), " of ", WithCommas(p.acknowledged),
                    " acknowledged writes lost (RPO ", HumanDuration(p.rpo_ns), ") · ",
                    WithCommas(p.duplicated), " duplicated · ", WithCommas(p.reordered),
                    " reordered · ", WithCommas(p.ambiguous), " unacknowledged but stored\n");
  } else if (!r.writes.empty()) {
    absl::StrAppend(&out, "\n**RPO:** not verified (the verify phase did not run)\n");
  }
  if (!links.empty()) absl::StrAppend(&out, "\n", links, "\n");
  return out;
}

}  // namespace chaosdrill::reports
