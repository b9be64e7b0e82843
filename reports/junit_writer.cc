#include "reports/junit_writer.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "reports/report_format.h"
#include "reports/run_record_json.h"

namespace chaosdrill::reports {
namespace {

struct Case {
  std::string name;     // stable across runs: no measured value (docs/architecture.md)
  std::string failure;  // empty: passed
  std::string detail;   // <system-out>: what was measured
  bool error = false;   // <error> (did not run properly) rather than <failure>
};

// "slo availability ≥ 0.99", "slo rto[kill-one] ≤ 3s", "slo alert[X after f]: fired within
// 30s": the check, with its target and never its measured value.
std::string SloCaseName(const SloVerdict& v) {
  constexpr char kLe[] = " \xE2\x89\xA4 ";  // ≤
  constexpr char kGe[] = " \xE2\x89\xA5 ";  // ≥
  if (v.name == "availability") return absl::StrCat("slo ", v.name, kGe, v.target);
  if (v.name == "rpo") return absl::StrCat("slo rpo", kLe, v.target, " lost writes");
  if (v.name == "p99" || v.name == "error_budget" || v.name == "rto" ||
      absl::StartsWith(v.name, "rto[")) {
    return absl::StrCat("slo ", v.name, kLe, v.target);
  }
  return absl::StrCat("slo ", v.name, ": ", v.target);  // alert[...]: "fired within 30s"
}

}  // namespace

std::string RenderJunit(const RunRecord& record, const std::string& report_path) {
  std::vector<Case> cases;
  const bool completed = !record.in_progress && (record.exit_status == ExitStatus::kPassed ||
                                                 record.exit_status == ExitStatus::kSloFailed);
  Case drill{.name = "drill completed"};
  if (!completed) {
    drill.error = true;
    drill.failure = absl::StrCat(RecordVerdict(record), ": ", record.exit_reason);
  }
  cases.push_back(drill);
  // A record written mid-drill has the analysis of what had settled then.
  const std::string partial =
      record.in_progress ? "partial analysis (the runner stopped before the drill ended): " : "";
  for (const SloVerdict& v : record.analysis.slos) {
    Case c{.name = SloCaseName(v),
           .detail = absl::StrCat("measured ", v.measured, ", target ", v.target)};
    if (!v.pass) {
      c.failure = absl::StrCat(partial, "measured ", v.measured, ", target ", v.target,
                               v.reason.empty() ? "" : ": ", v.reason);
    }
    cases.push_back(std::move(c));
  }
  for (size_t i = 0; i < record.faults.size(); ++i) {
    const FaultEvent& f = record.faults[i];
    const FaultResult* r = ResultFor(record, i);
    bool ok = false;
    const std::string outcome = FaultOutcome(record, f, r, &ok);
    const SloVerdict* rto = RtoVerdictFor(record.analysis, f.name);
    Case c{.name = absl::StrCat("fault ", f.name, ": ",
                                rto != nullptr && TargetNs(*rto)
                                    ? absl::StrCat("RTO \xE2\x89\xA4 ", rto->target)
                                    : "recovers")};
    if (f.inject_failed) c.error = true;
    if (!ok) {
      c.failure = absl::StrCat(partial, f.kind, " on ", f.target, " injected at ",
                               HumanDuration(f.injected_ns), ": ", outcome);
    }
    c.detail = outcome;
    if (r != nullptr && r->impact) {
      absl::StrAppend(&c.detail, "; time to impact ", HumanDuration(r->time_to_impact_ns),
                      ", outage ", HumanDuration(r->outage_ns), ", failed requests ",
                      r->failed_requests);
    }
    cases.push_back(std::move(c));
  }
  size_t failures = 0, errors = 0;
  for (const Case& c : cases) {
    if (c.failure.empty()) continue;
    (c.error ? errors : failures)++;
  }
  std::string seconds =
      absl::StrFormat("%.3f", static_cast<double>(record.phases.observe_end_ns) / 1e9);
  std::string suite = XmlEscape(record.scenario_name);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  absl::StrAppend(&out, "<testsuites name=\"chaosdrill\" tests=\"", cases.size(), "\" failures=\"",
                  failures, "\" errors=\"", errors, "\" skipped=\"0\" time=\"", seconds, "\">\n");
  absl::StrAppend(&out, "  <testsuite name=\"", suite, "\" tests=\"", cases.size(),
                  "\" failures=\"", failures, "\" errors=\"", errors, "\" skipped=\"0\" time=\"",
                  seconds, "\" timestamp=\"", Rfc3339(record.started_unix_ns), "\" hostname=\"",
                  XmlEscape(record.environment.host), "\">\n");
  absl::StrAppend(&out, "    <properties>\n");
  auto property = [&](absl::string_view name, absl::string_view value) {
    absl::StrAppend(&out, "      <property name=\"", name, "\" value=\"", XmlEscape(value),
                    "\"/>\n");
  };
  property("run_id", record.run_id);
  property("report", report_path);
  property("scenario_file", record.scenario_file);
  property("target", record.target);
  property("exit_status",
           record.in_progress ? "running" : std::string(ExitStatusName(record.exit_status)));
  property("chaosdrill_version", record.environment.chaosdrill_version);
  absl::StrAppend(&out, "    </properties>\n");
  for (const Case& c : cases) {
    absl::StrAppend(&out, "    <testcase classname=\"chaosdrill.", suite, "\" name=\"",
                    XmlEscape(c.name), "\" time=\"0\"");
    if (c.failure.empty() && c.detail.empty()) {
      absl::StrAppend(&out, "/>\n");
      continue;
    }
    absl::StrAppend(&out, ">\n");
    if (!c.failure.empty()) {
      const char* tag = c.error ? "error" : "failure";
      absl::StrAppend(&out, "      <", tag, " message=\"", XmlEscape(c.failure), "\" type=\"",
                      c.error ? "drill" : "slo", "\">", XmlEscape(c.failure), "</", tag, ">\n");
    }
    if (!c.detail.empty()) {
      absl::StrAppend(&out, "      <system-out>", XmlEscape(c.detail), "</system-out>\n");
    }
    absl::StrAppend(&out, "    </testcase>\n");
  }
  absl::StrAppend(&out, "  </testsuite>\n</testsuites>\n");
  return out;
}

}  // namespace chaosdrill::reports
