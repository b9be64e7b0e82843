#include "runner/probe_analysis.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/quantity.h"

namespace chaosdrill::runner {
namespace {

using reports::AlertDetection;
using reports::FaultEvent;
using reports::ProbeSample;
using reports::ProbeSeries;

bool Firing(const ProbeSample& s) { return s.value && *s.value > 0; }

std::string Secs(int64_t ns) { return absl::StrFormat("%.1fs", ns / 1e9); }

bool Judged(const ProbeSeries& p, const std::string& fault) {
  if (p.faults.empty()) return true;
  for (const std::string& f : p.faults) {
    if (f == fault) return true;
  }
  return false;
}

// The last sample time at or after `from`, or -1.
int64_t LastSampleAfter(const ProbeSeries& p, int64_t from) {
  return !p.samples.empty() && p.samples.back().t_ns >= from ? p.samples.back().t_ns : -1;
}

}  // namespace

std::vector<AlertDetection> DetectAlerts(const std::vector<ProbeSeries>& probes,
                                         const std::vector<FaultEvent>& faults) {
  std::vector<AlertDetection> out;
  for (const ProbeSeries& p : probes) {
    if (p.kind != "alert" || !p.within_ns) continue;
    for (const FaultEvent& f : faults) {
      if (f.inject_failed || f.name.empty() || !Judged(p, f.name)) continue;
      AlertDetection d{.probe = p.name,
                       .alert = p.alert,
                       .fault = f.name,
                       .injected_ns = f.injected_ns,
                       .within_ns = *p.within_ns};
      const ProbeSample* before = nullptr;
      for (const ProbeSample& s : p.samples) {
        if (s.t_ns < f.injected_ns) {
          before = &s;
        } else if (Firing(s)) {
          d.fired = true;
          d.detect_ns = s.t_ns - f.injected_ns;
          break;
        }
      }
      d.already_firing = before != nullptr && Firing(*before);
      d.pass = d.fired && !d.already_firing && d.detect_ns <= d.within_ns;
      out.push_back(std::move(d));
    }
  }
  return out;
}

void AddProbeVerdicts(const std::vector<ProbeSeries>& probes, const std::vector<FaultEvent>& faults,
                      reports::AnalysisResult& analysis) {
  std::vector<AlertDetection> detections = DetectAlerts(probes, faults);
  for (const AlertDetection& d : detections) {
    const std::string within = DurationToString(absl::Nanoseconds(d.within_ns));
    reports::SloVerdict v{.name = absl::StrCat("alert[", d.alert, " after ", d.fault, "]"),
                          .target = absl::StrCat("fired within ", within),
                          .pass = d.pass};
    if (d.already_firing) {
      v.measured = "already firing";
      v.reason = absl::StrCat("alert ", d.alert, " was already firing before ", d.fault,
                              " was injected; its time to detect cannot be attributed");
    } else if (d.fired) {
      v.measured = absl::StrCat("fired after ", Secs(d.detect_ns));
      if (!d.pass) {
        v.reason = absl::StrCat("alert ", d.alert, " fired ", Secs(d.detect_ns), " after ", d.fault,
                                ", later than ", within);
      }
    } else {
      int64_t last = -1;
      for (const ProbeSeries& p : probes) {
        if (p.name == d.probe) last = LastSampleAfter(p, d.injected_ns);
      }
      v.measured = "not fired";
      v.reason = last < 0 ? absl::StrCat("no sample of probe ", d.probe, " after ", d.fault,
                                         " was injected")
                 : last - d.injected_ns < d.within_ns
                     ? absl::StrCat("alert ", d.alert, " had not fired when the drill ended ",
                                    Secs(last - d.injected_ns), " after ", d.fault,
                                    " (less than the ", within, " allowed)")
                     : absl::StrCat("alert ", d.alert, " did not fire within ", within, " of ",
                                    d.fault, " (watched for ", Secs(last - d.injected_ns), ")");
    }
    if (!v.pass) analysis.slos_met = false;
    analysis.slos.push_back(std::move(v));
  }
  analysis.alerts.insert(analysis.alerts.end(), detections.begin(), detections.end());
}

}  // namespace chaosdrill::runner
