#include "reports/html_writer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/histogram.h"
#include "common/time_buckets.h"
#include "reports/report_format.h"
#include "reports/run_record_derived.h"

namespace chaosdrill::reports {
namespace {

constexpr size_t kMaxRows = 1000;       // per table; the JSON has everything
constexpr size_t kMaxFaultLabels = 40;  // labels on the chart
constexpr int kW = 1200;                // SVG user units
constexpr int kLeft = 64, kRight = 64, kTop = 34;
constexpr int kPanel = 170, kGap = 46;
// Probe strips, between the panels: one row per probe (at most kMaxProbeStrips).
constexpr int kStripTop = 26, kStripRow = 20, kStrip = 10;
constexpr size_t kMaxProbeStrips = 24;

struct Window {
  uint64_t count = 0;
  uint64_t bad = 0;
  LatencyHistogram latency;  // requests that got an answer
};

std::string E(absl::string_view s) { return XmlEscape(s); }
std::string F(double v) { return absl::StrFormat("%.1f", v); }

// A round axis maximum and tick step for values up to `max`.
double NiceMax(double max) {
  if (max <= 0) return 1;
  double p = std::pow(10, std::floor(std::log10(max)));
  for (double m : {1.0, 1.2, 1.6, 2.0, 2.4, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0}) {
    if (m * p >= max) return m * p;
  }
  return 10 * p;
}

int64_t WindowNs(int64_t duration) {
  for (int64_t w : {10'000'000LL, 20'000'000LL, 50'000'000LL, 100'000'000LL, 200'000'000LL,
                    500'000'000LL, 1'000'000'000LL, 2'000'000'000LL, 5'000'000'000LL,
                    10'000'000'000LL, 30'000'000'000LL, 60'000'000'000LL}) {
    if (duration / w <= 600) return w;
  }
  return ((duration / 600) / 60'000'000'000LL + 1) * 60'000'000'000LL;
}

std::string TimeTick(int64_t ns) {
  int64_t s = ns / 1'000'000'000;
  if (s >= 60) return absl::StrFormat("%d:%02d", s / 60, s % 60);
  return absl::StrCat(HumanDuration(ns));
}

}  // namespace

std::string RenderTimelineSvg(const RunRecord& r) {
  int64_t duration = std::max<int64_t>(r.phases.observe_end_ns, 1'000'000'000);
  for (const FaultEvent& f : r.faults) {
    duration = std::max(duration, f.reverted_ns.value_or(f.injected_ns));
  }
  const TimeBuckets buckets = BuildTimeBuckets(r.requests);
  if (!buckets.buckets().empty()) {
    duration = std::max<int64_t>(duration, buckets.buckets().size() * TimeBuckets::kBucketNs);
  }
  const int64_t window = WindowNs(duration);
  const size_t n = static_cast<size_t>((duration + window - 1) / window);
  std::vector<Window> w(n);
  const int64_t per = window / TimeBuckets::kBucketNs;
  for (size_t i = 0; i < buckets.buckets().size(); ++i) {
    const TimeBuckets::Bucket& b = buckets.buckets()[i];
    size_t k = std::min(n - 1, static_cast<size_t>(i / per));
    w[k].count += b.count;
    w[k].bad += b.count - b.ok;
  }
  for (const RequestRecord& q : r.requests) {
    if (q.flags & RequestRecord::kTimeout) continue;
    size_t k =
        std::min<size_t>(n - 1, static_cast<size_t>(std::max<int64_t>(0, q.intended_ns) / window));
    w[k].latency.Record(q.latency_ns());
  }
  double max_rps = 0, max_ms = 0;
  for (const Window& x : w) {
    max_rps = std::max(max_rps, x.count * 1e9 / window);
    max_ms = std::max(max_ms, x.latency.ValueAtQuantile(0.99) / 1e6);
  }
  max_rps = NiceMax(max_rps * 1.05);
  max_ms = NiceMax(max_ms * 1.05);
  const double plot_w = kW - kLeft - kRight;
  auto X = [&](int64_t t) {
    return kLeft + plot_w * std::clamp<double>(static_cast<double>(t) / duration, 0, 1);
  };
  const size_t strips = std::min(r.probes.size(), kMaxProbeStrips);
  const int strips_h = strips == 0 ? 0 : kStripTop + kStripRow * static_cast<int>(strips) - 12;
  const int top1 = kTop, top2 = kTop + kPanel + kGap + strips_h, bottom = top2 + kPanel;
  const int height = bottom + 30;
  auto Y1 = [&](double rps) { return top1 + kPanel - kPanel * rps / max_rps; };
  auto Yerr = [&](double ratio) { return top1 + kPanel - kPanel * ratio; };
  auto Y2 = [&](double ms) { return top2 + kPanel - kPanel * std::min(ms, max_ms) / max_ms; };

  std::string s =
      absl::StrCat("<svg class=\"timeline\" viewBox=\"0 0 ", kW, " ", height,
                   "\" role=\"img\" aria-label=\"Timeline of throughput, error rate and latency\" "
                   "xmlns=\"http://www.w3.org/2000/svg\">\n");
  // Panels, grid and axes.
  for (int top : {top1, top2}) {
    absl::StrAppend(&s, "<rect class=\"panel\" x=\"", kLeft, "\" y=\"", top, "\" width=\"",
                    F(plot_w), "\" height=\"", kPanel, "\"/>\n");
    for (int k = 1; k < 4; ++k) {
      double y = top + kPanel * k / 4.0;
      absl::StrAppend(&s, "<line class=\"grid\" x1=\"", kLeft, "\" x2=\"", kW - kRight, "\" y1=\"",
                      F(y), "\" y2=\"", F(y), "\"/>\n");
    }
  }
  for (int k = 0; k <= 4; ++k) {
    double y1 = top1 + kPanel - kPanel * k / 4.0, y2 = top2 + kPanel - kPanel * k / 4.0;
    absl::StrAppend(&s, "<text class=\"axis\" x=\"", kLeft - 6, "\" y=\"", F(y1 + 4),
                    "\" text-anchor=\"end\">", absl::StrFormat("%g", max_rps * k / 4), "</text>");
    absl::StrAppend(&s, "<text class=\"axis err\" x=\"", kW - kRight + 6, "\" y=\"", F(y1 + 4),
                    "\">", k * 25, "%</text>");
    absl::StrAppend(&s, "<text class=\"axis\" x=\"", kLeft - 6, "\" y=\"", F(y2 + 4),
                    "\" text-anchor=\"end\">", absl::StrFormat("%g", max_ms * k / 4), "</text>\n");
  }
  absl::StrAppend(&s, "<text class=\"title\" x=\"", kLeft, "\" y=\"", top1 - 8,
                  "\">requests/s (intended)  ·  error rate %</text>\n");
  absl::StrAppend(&s, "<text class=\"title\" x=\"", kLeft, "\" y=\"", top2 - 8,
                  "\">latency ms (from intended send): p50, p99</text>\n");
  const int ticks = 8;
  for (int k = 0; k <= ticks; ++k) {
    int64_t t = duration * k / ticks;
    absl::StrAppend(&s, "<text class=\"axis\" x=\"", F(X(t)), "\" y=\"", bottom + 18,
                    "\" text-anchor=\"middle\">", TimeTick(t), "</text>");
  }
  absl::StrAppend(&s, "\n");
  // Phase boundaries, with the phase names under the top panel.
  for (int64_t t : {r.phases.baseline_end_ns, r.phases.faults_end_ns}) {
    if (t <= 0 || t >= duration) continue;
    absl::StrAppend(&s, "<line class=\"phase\" x1=\"", F(X(t)), "\" x2=\"", F(X(t)), "\" y1=\"",
                    top1, "\" y2=\"", bottom, "\"/>\n");
  }
  {
    const int64_t edges[] = {0, r.phases.baseline_end_ns, r.phases.faults_end_ns, duration};
    const char* names[] = {"baseline", "faults", "recovery"};
    for (int k = 0; k < 3; ++k) {
      if (edges[k + 1] <= edges[k] || edges[k] >= duration) continue;
      absl::StrAppend(&s, "<text class=\"phase-label\" x=\"",
                      F((X(edges[k]) + X(edges[k + 1])) / 2), "\" y=\"", top1 + kPanel + 16,
                      "\" text-anchor=\"middle\">", names[k], "</text>\n");
    }
  }
  // Fault bands, then RTO markers and labels on top.
  std::string labels;
  for (size_t i = 0; i < r.faults.size(); ++i) {
    const FaultEvent& f = r.faults[i];
    const FaultResult* res = ResultFor(r, i);
    int64_t end = f.reverted_ns.value_or(
        res != nullptr && res->recovered ? res->recovered_ns : r.phases.observe_end_ns);
    double x0 = X(f.injected_ns), x1 = std::max(X(end), x0 + 2);
    absl::StrAppend(&s, "<rect class=\"fault-band", f.inject_failed ? " failed" : "", "\" x=\"",
                    F(x0), "\" y=\"", top1, "\" width=\"", F(x1 - x0), "\" height=\"",
                    bottom - top1, "\"><title>", E(f.name), " (", E(f.kind), ") ",
                    HumanDuration(f.injected_ns), " – ", HumanDuration(end), "</title></rect>\n");
    if (i < kMaxFaultLabels) {
      double ly = top1 + 14 + 14 * (i % 3);
      absl::StrAppend(&labels, "<text class=\"fault-label\" x=\"", F(x0 + 3), "\" y=\"", F(ly),
                      "\">", E(f.name), "</text>\n");
    }
    if (res != nullptr && res->impact && res->recovered) {
      double xr = X(res->recovered_ns);
      absl::StrAppend(&labels, "<line class=\"rto-marker\" x1=\"", F(xr), "\" x2=\"", F(xr),
                      "\" y1=\"", top1, "\" y2=\"", bottom, "\"/>\n");
      if (i < kMaxFaultLabels) {
        absl::StrAppend(&labels, "<text class=\"rto-label\" x=\"", F(xr + 3), "\" y=\"",
                        F(top2 + 14 + 14 * (i % 3)), "\">RTO ", HumanDuration(res->rto_ns),
                        "</text>\n");
      }
    }
  }
  // Series, broken where a window has no requests.
  auto series = [&](const char* cls, auto value, auto y) {
    std::string d;
    bool pen = false;
    for (size_t k = 0; k < n; ++k) {
      std::optional<double> v = value(w[k]);
      if (!v) {
        pen = false;
        continue;
      }
      int64_t mid = static_cast<int64_t>(k) * window + window / 2;
      absl::StrAppend(&d, pen ? "L" : "M", F(X(mid)), " ", F(y(*v)), " ");
      pen = true;
    }
    absl::StrAppend(&s, "<path class=\"", cls, "\" d=\"", d, "\"/>\n");
  };
  series(
      "s-rps", [&](const Window& x) -> std::optional<double> { return x.count * 1e9 / window; },
      Y1);
  series(
      "s-err",
      [&](const Window& x) -> std::optional<double> {
        if (x.count == 0) return std::nullopt;
        return static_cast<double>(x.bad) / x.count;
      },
      Yerr);
  series(
      "s-p50",
      [&](const Window& x) -> std::optional<double> {
        if (x.latency.count() == 0) return std::nullopt;
        return x.latency.ValueAtQuantile(0.5) / 1e6;
      },
      Y2);
  series(
      "s-p99",
      [&](const Window& x) -> std::optional<double> {
        if (x.latency.count() == 0) return std::nullopt;
        return x.latency.ValueAtQuantile(0.99) / 1e6;
      },
      Y2);
  // Probe strips: a row per probe, red where its samples failed (a sample covers the time
  // to the next one, the last one `every`), and a marker wherever an alert started firing.
  for (size_t p = 0; p < strips; ++p) {
    const ProbeSeries& probe = r.probes[p];
    const int y = top1 + kPanel + kStripTop + kStripRow * static_cast<int>(p);
    const bool is_alert = probe.kind == "alert";
    absl::StrAppend(&s, "<text class=\"probe-label\" x=\"", kLeft - 6, "\" y=\"", y + kStrip - 1,
                    "\" text-anchor=\"end\">", E(probe.name.substr(0, 9)),
                    probe.name.size() > 9 ? "\xE2\x80\xA6" : "", "<title>", E(probe.name), " (",
                    E(probe.kind), "): ", E(probe.check), "</title></text>");
    absl::StrAppend(&s, "<rect class=\"probe-strip\" x=\"", kLeft, "\" y=\"", y, "\" width=\"",
                    F(plot_w), "\" height=\"", kStrip, "\"><title>probe ", E(probe.name), " (",
                    E(probe.kind), ", every ", HumanDuration(probe.every_ns), ")</title></rect>\n");
    const std::vector<ProbeSample>& samples = probe.samples;
    for (size_t i = 0; i < samples.size();) {
      if (samples[i].ok) {
        ++i;
        continue;
      }
      size_t j = i;  // [i, j]: a run of failing samples
      while (j + 1 < samples.size() && !samples[j + 1].ok) ++j;
      const int64_t from = samples[i].t_ns;
      const int64_t to = j + 1 < samples.size()
                             ? samples[j + 1].t_ns
                             : samples[j].t_ns + std::max<int64_t>(probe.every_ns, 1);
      const double x0 = X(from), x1 = std::max(X(to), x0 + 1);
      absl::StrAppend(&s, "<rect class=\"probe-fail\" x=\"", F(x0), "\" y=\"", y, "\" width=\"",
                      F(x1 - x0), "\" height=\"", kStrip, "\"><title>", E(probe.name), " ",
                      is_alert ? "firing" : "failing", " ", HumanDuration(from), " \xE2\x80\x93 ",
                      HumanDuration(to), ": ", E(samples[i].message), "</title></rect>\n");
      if (is_alert) {
        absl::StrAppend(&labels, "<line class=\"alert-marker\" x1=\"", F(x0), "\" x2=\"", F(x0),
                        "\" y1=\"", top1, "\" y2=\"", y + kStrip, "\"/>",
                        "<text class=\"alert-label\" x=\"", F(x0 + 3), "\" y=\"", y - 2,
                        "\">alert ", E(probe.alert), " fired<title>", E(probe.alert),
                        " first seen firing at ", HumanDuration(from), "</title></text>\n");
      }
      i = j + 1;
    }
  }
  absl::StrAppend(&s, labels, "</svg>\n");
  return s;
}

std::string ReportStyle() {
  return R"(<style>
:root{--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#f6f8fa;--ok:#1a7f37;
--bad:#cf222e;--warn:#9a6700;--rps:#0969da;--err:#cf222e;--p50:#1a7f37;--p99:#bc4c00;
--band:rgba(212,167,44,.22);--bandline:#bf8700;--probe-ok:rgba(26,127,55,.35);
color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--line:#3d444d;--card:#151b23;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--rps:#4493f8;
--err:#f85149;--p50:#3fb950;--p99:#f0883e;--band:rgba(210,153,34,.22);--bandline:#d29922;
--probe-ok:rgba(63,185,80,.35)}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,sans-serif}
main{max-width:1200px;margin:0 auto;padding:16px}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.4em 0 .5em;border-bottom:1px solid var(--line)}
.verdict{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:center;padding:12px 16px;
border-radius:8px;border:2px solid var(--line);background:var(--card)}
.verdict .badge{font-weight:700;font-size:1.3em;padding:2px 12px;border-radius:6px;color:#fff}
.passed .badge{background:var(--ok)}.failed .badge{background:var(--bad)}.other .badge{background:var(--warn)}
.passed{border-color:var(--ok)}.failed{border-color:var(--bad)}.other{border-color:var(--warn)}
.muted{color:var(--muted)}.reason{flex-basis:100%;margin:0}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px;margin:12px 0}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:6px 10px}
.kpi b{display:block;font-size:1.25em}
table{width:100%;border-collapse:collapse;margin:.3em 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top;
overflow-wrap:break-word}
th{background:var(--card);white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%}
td.pass{color:var(--ok);font-weight:600}td.fail{color:var(--bad);font-weight:700}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--card);border:1px solid var(--line);
padding:10px;border-radius:6px;font-size:13px}
code{overflow-wrap:anywhere}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:13px;margin:4px 0}
.legend i{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}
.legend .band{height:12px;background:var(--band);border:1px solid var(--bandline)}
.legend .strip{height:10px;background:var(--probe-ok)}.legend .strip.fail{background:var(--bad)}
svg.timeline{width:100%;height:auto;display:block}
svg .panel{fill:none;stroke:var(--line)}svg .grid{stroke:var(--line);stroke-dasharray:2 4}
svg text{fill:var(--muted);font-size:12px}svg .title{fill:var(--fg);font-size:13px}
svg .axis.err{fill:var(--err)}
svg .phase{stroke:var(--muted);stroke-dasharray:6 4}svg .phase-label{font-style:italic}
svg .fault-band{fill:var(--band);stroke:var(--bandline);stroke-width:.5}
svg .fault-band.failed{fill:none;stroke:var(--bad);stroke-dasharray:3 3}
svg .fault-label{fill:var(--fg);font-weight:600}
svg .rto-marker{stroke:var(--bad);stroke-width:1.5;stroke-dasharray:4 3}
svg .rto-label{fill:var(--bad);font-weight:600}
svg .probe-strip{fill:var(--probe-ok);stroke:var(--line);stroke-width:.5}
svg .probe-fail{fill:var(--bad)}svg .probe-label{font-size:11px}
svg .alert-marker{stroke:var(--warn);stroke-width:1.5;stroke-dasharray:2 2}
svg .alert-label{fill:var(--warn);font-size:11px;font-weight:600}
svg path{fill:none;stroke-width:1.6;stroke-linejoin:round}
.s-rps{stroke:var(--rps)}.s-err{stroke:var(--err)}.s-p50{stroke:var(--p50)}.s-p99{stroke:var(--p99)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
@media (max-width:640px){body{font-size:14px}main{padding:8px}th,td{padding:3px 4px}
dl{grid-template-columns:1fr}}
@media print{body{background:#fff;color:#000;font-size:11pt}main{max-width:none;padding:0}
h2{break-after:avoid}tr,svg,.verdict{break-inside:avoid}pre{max-height:none}
.verdict .badge{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
</style>
)";
}

std::string RenderHtml(const RunRecord& r) {
  const AnalysisResult& a = r.analysis;
  // A record written mid-drill is incomplete whatever its status so far says.
  const char* cls = r.in_progress                             ? "other incomplete"
                    : r.exit_status == ExitStatus::kPassed    ? "passed"
                    : r.exit_status == ExitStatus::kSloFailed ? "failed"
                                                              : "other";
  const std::string badge = r.in_progress ? "INCOMPLETE" : VerdictWords(r.exit_status);
  std::string h = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>",
      E(r.scenario_name), " — ", RecordVerdict(r), " — chaosdrill</title>\n", ReportStyle(),
      "</head>\n<body>\n<main>\n");
  absl::StrAppend(&h, "<header class=\"verdict ", cls, "\"><span class=\"badge\">", badge,
                  "</span><h1>", E(r.scenario_name), "</h1><span class=\"muted\">run <code>",
                  E(r.run_id), "</code> · ", Rfc3339(r.started_unix_ns), " · ", E(r.target),
                  "</span>");
  if (r.in_progress) {
    absl::StrAppend(&h, "<p class=\"reason\"><b>", kIncompleteVerdict,
                    ".</b> This record was written while the drill ran (", E(r.exit_reason),
                    "); every figure below is a partial analysis of what had settled by "
                    "then.</p>");
  } else if (r.exit_status != ExitStatus::kPassed && !r.exit_reason.empty()) {
    absl::StrAppend(&h, "<p class=\"reason\">", E(r.exit_reason), "</p>");
  }
  absl::StrAppend(&h, "</header>\n<section class=\"kpis\">");
  auto kpi = [&](absl::string_view label, const std::string& value) {
    absl::StrAppend(&h, "<div class=\"kpi\"><span class=\"muted\">", label, "</span><b>", value,
                    "</b></div>");
  };
  kpi("requests", WithCommas(a.requests));
  kpi("availability", absl::StrFormat("%.4f", a.availability));
  kpi("p50 / p99", absl::StrCat(HumanDuration(a.p50_ns), " / ", HumanDuration(a.p99_ns)));
  int64_t worst_rto = 0;
  bool unrecovered = false;
  for (const FaultResult& f : a.faults) {
    worst_rto = std::max(worst_rto, f.rto_ns);
    unrecovered |= f.impact && !f.recovered;
  }
  kpi("worst RTO", unrecovered ? "unrecovered" : HumanDuration(worst_rto));
  kpi("RPO", a.rpo ? absl::StrCat(a.rpo->lost, " writes / ", HumanDuration(a.rpo->rpo_ns))
                   : "not measured");
  absl::StrAppend(&h,
                  "</section>\n<h2>Timeline</h2>\n<div class=\"legend\">"
                  "<span><i style=\"background:var(--rps)\"></i>requests/s</span>"
                  "<span><i style=\"background:var(--err)\"></i>error rate</span>"
                  "<span><i style=\"background:var(--p50)\"></i>p50</span>"
                  "<span><i style=\"background:var(--p99)\"></i>p99</span>"
                  "<span><i class=\"band\"></i>fault active</span>"
                  "<span><i style=\"background:var(--bad)\"></i>recovered (RTO)</span>",
                  r.probes.empty() ? ""
                                   : "<span><i class=\"strip\"></i>probe ok</span>"
                                     "<span><i class=\"strip fail\"></i>probe failing</span>"
                                     "<span><i style=\"background:var(--warn)\"></i>alert "
                                     "fired</span>",
                  "</div>\n", RenderTimelineSvg(r));

  absl::StrAppend(&h, "<h2>SLOs</h2>\n");
  if (a.slos.empty()) {
    absl::StrAppend(&h, "<p class=\"muted\">The scenario sets no SLOs.</p>\n");
  } else {
    absl::StrAppend(
        &h,
        "<div class=\"scroll\"><table><thead><tr><th>SLO</th><th>Target</th><th>Measured</th>"
        "<th>Result</th></tr></thead><tbody>\n");
    for (const SloVerdict& v : a.slos) {
      absl::StrAppend(&h, "<tr><td>", E(v.name), "</td><td>", E(v.target), "</td><td>",
                      E(v.measured), "</td><td class=\"", v.pass ? "pass\">pass" : "fail\">FAIL",
                      v.pass || v.reason.empty() ? "" : ": ", v.pass ? "" : E(v.reason),
                      "</td></tr>\n");
    }
    absl::StrAppend(&h, "</tbody></table></div>\n");
  }

  absl::StrAppend(&h, "<h2>Faults</h2>\n");
  if (r.faults.empty()) {
    absl::StrAppend(&h, "<p class=\"muted\">No faults were injected.</p>\n");
  } else {
    absl::StrAppend(
        &h,
        "<div class=\"scroll\"><table><thead><tr><th>Fault</th><th>Kind</th><th>Target</th>"
        "<th>Injected</th><th>Reverted</th><th>RTO</th><th>Impact</th></tr></thead>"
        "<tbody>\n");
    for (size_t i = 0; i < r.faults.size() && i < kMaxRows; ++i) {
      const FaultEvent& f = r.faults[i];
      const FaultResult* res = ResultFor(r, i);
      bool ok = false;
      std::string outcome = FaultOutcome(r, f, res, &ok);
      std::string impact = "none";
      if (res != nullptr && res->impact) {
        impact = absl::StrCat(WithCommas(res->failed_requests), " failed, outage ",
                              HumanDuration(res->outage_ns), ", time to impact ",
                              HumanDuration(res->time_to_impact_ns), ", outage p99 ",
                              HumanDuration(res->outage_p99_ns));
        if (res->recover_after_revert_ns) {
          absl::StrAppend(&impact, ", recovered ", HumanDuration(*res->recover_after_revert_ns),
                          " after revert");
        }
      }
      absl::StrAppend(&h, "<tr><td>", E(f.name), "</td><td>", E(f.kind), "</td><td>", E(f.target),
                      "</td><td>", f.inject_failed ? "failed" : HumanDuration(f.injected_ns),
                      "</td><td>", f.reverted_ns ? HumanDuration(*f.reverted_ns) : "—",
                      "</td><td class=\"", ok ? "pass" : "fail", "\">", E(outcome), "</td><td>",
                      E(impact), "</td></tr>\n");
    }
    absl::StrAppend(&h, "</tbody></table></div>\n");
    if (r.faults.size() > kMaxRows) {
      absl::StrAppend(&h, "<p class=\"muted\">", WithCommas(r.faults.size() - kMaxRows),
                      " more faults in the JSON record.</p>\n");
    }
  }

  absl::StrAppend(&h, "<h2>RPO</h2>\n");
  if (!a.rpo) {
    absl::StrAppend(&h, "<p class=\"muted\">",
                    r.writes.empty() ? "The scenario writes no session data."
                                     : "Not verified: the verify phase did not run.",
                    "</p>\n");
  } else {
    const RpoResult& p = *a.rpo;
    absl::StrAppend(&h, "<p><b>", WithCommas(p.lost), "</b> of ", WithCommas(p.acknowledged),
                    " acknowledged writes lost (", WithCommas(p.writes), " sent) · RPO <b>",
                    HumanDuration(p.rpo_ns), "</b> · ", WithCommas(p.duplicated), " duplicated · ",
                    WithCommas(p.reordered), " reordered · ", WithCommas(p.ambiguous),
                    " unacknowledged but stored</p>\n");
    if (!p.lost_writes.empty()) {
      absl::StrAppend(
          &h,
          "<div class=\"scroll\"><table><thead><tr><th>Session</th><th>Seq</th><th>Sent</th>"
          "<th>Acknowledged</th></tr></thead><tbody>\n");
      for (size_t i = 0; i < p.lost_writes.size() && i < kMaxRows; ++i) {
        const WriteRecord& w = p.lost_writes[i];
        absl::StrAppend(&h, "<tr><td>", E(w.session), "</td><td>", w.seq, "</td><td>",
                        HumanDuration(w.sent_ns), "</td><td>",
                        w.ack_ns ? HumanDuration(*w.ack_ns) : "—", "</td></tr>\n");
      }
      absl::StrAppend(&h, "</tbody></table></div>\n");
    }
  }

  if (!r.events.empty()) {
    absl::StrAppend(
        &h,
        "<h2>Events</h2>\n<div class=\"scroll\"><table><thead><tr><th>Time</th><th>Type</th>"
        "<th>Fault</th><th>Message</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < r.events.size() && i < kMaxRows; ++i) {
      const Event& e = r.events[i];
      absl::StrAppend(&h, "<tr><td>", HumanDuration(e.t_ns), "</td><td>", E(e.type), "</td><td>",
                      E(e.fault), "</td><td>", E(e.message), "</td></tr>\n");
    }
    absl::StrAppend(&h, "</tbody></table></div>\n");
  }

  const Environment& env = r.environment;
  absl::StrAppend(&h, "<h2>Environment</h2>\n<dl>", "<dt>host</dt><dd>", E(env.host), "</dd>",
                  "<dt>kernel</dt><dd>", E(env.kernel), "</dd>", "<dt>CPU</dt><dd>", E(env.cpu),
                  " (", env.cores, " cores)</dd>", "<dt>memory</dt><dd>",
                  absl::StrFormat("%.1f GiB", env.memory_bytes / 1073741824.0), "</dd>",
                  "<dt>GPU</dt><dd>", E(env.gpu), "</dd>", "<dt>chaosdrill</dt><dd>",
                  E(env.chaosdrill_version), " (", E(env.chaosdrill_commit), ")</dd>",
                  "<dt>good latency</dt><dd>", HumanDuration(a.good_latency_ns), " (baseline p99 ",
                  HumanDuration(a.baseline_p99_ns), ")</dd>", "<dt>send skew p99</dt><dd>",
                  HumanDuration(r.send_skew.ValueAtQuantile(0.99)), "</dd></dl>\n");
  absl::StrAppend(&h, "<h2>Scenario</h2>\n<p class=\"muted\">", E(r.scenario_file), "</p>\n<pre>",
                  E(r.scenario_source), "</pre>\n");
  absl::StrAppend(&h, "<p class=\"muted\">chaosdrill run record ", E(r.schema),
                  "</p>\n</main>\n</body>\n</html>\n");
  return h;
}

}  // namespace chaosdrill::reports
