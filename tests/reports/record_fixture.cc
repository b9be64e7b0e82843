#include "tests/reports/record_fixture.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"

namespace chaosdrill::reports::testing {

RunRecord EmptyRecord() {
  RunRecord r;
  r.run_id = "empty-20261123T190500Z-0000";
  r.scenario_name = "empty";
  return r;
}

RunRecord SmallRecord(bool nasty) {
  RunRecord r;
  std::string n = nasty ? "<&>\"'" : "";
  r.run_id = "kill-20261123T190500Z-ab12";
  r.scenario_name = absl::StrCat("replica-kill", n);
  r.scenario_file = "scenarios/replica-kill.yaml";
  r.scenario_source = "apiVersion: chaosdrill/v1\nkind: Scenario\n";
  r.target = "reference (3 replicas, async)";
  r.started_unix_ns = 1'795'460'700'000'000'000;  // 2026-11-23T19:05:00Z
  r.request_interval_ns = 5'000'000;
  r.write_interval_ns = 20'000'000;
  r.phases = {.baseline_end_ns = 10'000'000'000,
              .faults_end_ns = 20'000'000'000,
              .observe_end_ns = 30'000'000'000};
  r.environment = {.host = "ci-1",
                   .kernel = "6.1.0",
                   .cpu = "Xeon",
                   .cores = 2,
                   .memory_bytes = 4ull << 30,
                   .gpu = "none",
                   .chaosdrill_version = "0.1.0",
                   .chaosdrill_commit = "abc123"};
  r.faults = {{.name = absl::StrCat("kill-one", n),
               .kind = "process.kill",
               .target = "replica[0] (pid 4242)",
               .scheduled_ns = 10'000'000'000,
               .injected_ns = 10'002'000'000},
              {.name = "slow-net",
               .kind = "proxy.latency",
               .target = "gateway",
               .scheduled_ns = 15'000'000'000,
               .injected_ns = 15'001'000'000,
               .reverted_ns = 20'001'000'000,
               .duration_ns = 5'000'000'000}};
  r.events = {{.t_ns = 10'002'000'000,
               .type = "inject",
               .fault = r.faults[0].name,
               .message = "killed pid 4242"}};
  for (int i = 0; i < 20; ++i) {
    RequestRecord q;
    q.intended_ns = i * 5'000'000;
    q.sent_ns = q.intended_ns + 1000;
    q.completed_ns = q.intended_ns + 2'000'000 + i * 1000;
    q.code = i == 7 ? 14 : 0;
    q.flags = i == 9    ? (RequestRecord::kGoldenChecked | RequestRecord::kGoldenMismatch)
              : i == 11 ? RequestRecord::kTimeout
                        : 0;
    if (i == 11) q.code = 4;
    r.requests.push_back(q);
  }
  r.writes = {{.session = "s0", .seq = 1, .sent_ns = 100, .ack_ns = 200},
              {.session = "s0", .seq = 2, .sent_ns = 300, .ack_ns = std::nullopt}};
  r.read_back = {{"s0", {1}}};
  r.verified = true;
  r.send_skew.Record(1000, 20);
  AnalysisResult& a = r.analysis;
  a.requests = 4000;
  a.good = 3988;
  a.availability = 0.997;
  a.good_latency_ns = 50'000'000;
  a.baseline_p99_ns = 10'000'000;
  a.p50_ns = 2'000'000;
  a.p99_ns = 9'500'000;
  a.incomplete = 2;
  a.service_p50_ns = 1'900'000;
  a.service_p99_ns = 8'000'000;
  a.faults = {{.name = r.faults[0].name,
               .impact = true,
               .impact_ns = 10'000'000'000,
               .recovered = true,
               .recovered_ns = 11'842'000'000,
               .rto_ns = 1'840'000'000,
               .time_to_impact_ns = 0,
               .outage_ns = 1'842'000'000,
               .failed_requests = 12,
               .error_budget_consumed = 0.5,
               .outage_p50_ns = 3'000'000,
               .outage_p99_ns = 40'000'000,
               .outside_p50_ns = 2'000'000,
               .outside_p99_ns = 9'000'000},
              {.name = "slow-net",
               .impact = true,
               .impact_ns = 15'001'000'000,
               .recovered = false,
               .failed_requests = 300,
               .recover_after_revert_ns = std::nullopt}};
  a.rpo = RpoResult{.writes = 2,
                    .acknowledged = 1,
                    .lost = 1,
                    .rpo_ns = 20'000'000,
                    .lost_writes = {{.session = "s0", .seq = 7, .sent_ns = 5, .ack_ns = 9}}};
  a.slos = {{.name = "rto",
             .target = "3s",
             .measured = "unrecovered",
             .pass = false,
             .reason = absl::StrCat("fault slow-net did not recover", n)},
            {.name = "availability", .target = "0.99", .measured = "0.997", .pass = true}};
  a.slos_met = false;
  r.exit_status = ExitStatus::kSloFailed;
  r.exit_reason = "SLO failed: rto: fault slow-net did not recover";
  return r;
}

RunRecord SyntheticDrill(const DrillShape& s) {
  RunRecord r;
  r.run_id = absl::StrCat("replica-kill-under-load-20261123T19", 10 + s.seed % 50, "00Z-", s.seed);
  r.scenario_name = "replica-kill-under-load";
  r.scenario_file = "scenarios/examples/replica-kill-under-load.yaml";
  r.scenario_source =
      "apiVersion: chaosdrill/v1\nkind: Scenario\nmetadata: {name: replica-kill-under-load}\n"
      "target:\n  reference: {replicas: 3, replication: async, device: cpu}\n"
      "load: {rate: 200, connections: 4, timeout: 2s, golden_every: 10}\n"
      "writes: {rate: 50, sessions: 8}\nphases: {baseline: 10s, observe: 60s, hold: 5s}\n"
      "faults:\n  - {name: kill-one, kind: process.kill, at: 10s, target: {role: \"replica[0]\"}}\n"
      "slo: {rto: 3s, rpo: 0, availability: 0.99}\n";
  if (s.probes) {
    r.scenario_source +=
        "probes:\n  - {name: ready, every: 500ms, timeout: 250ms, ready: {}}\n"
        "  - name: replica-down\n    every: 1s\n"
        "    alert: {url: \"http://127.0.0.1:9090\", name: ReplicaDown, within: 30s, "
        "faults: [kill-one]}\n";
  }
  r.target = "reference (3 replicas, async)";
  r.started_unix_ns = 1'795'460'700'000'000'000 + static_cast<int64_t>(s.seed) * 86'400'000'000'000;
  r.request_interval_ns = 1'000'000'000 / s.rate;
  r.write_interval_ns = 20'000'000;
  r.phases = {.baseline_end_ns = s.baseline_s * 1'000'000'000,
              .faults_end_ns = (s.baseline_s + 8 * s.faults) * 1'000'000'000,
              .observe_end_ns = s.duration_s * 1'000'000'000};
  r.environment = {.host = "drill-host",
                   .kernel = "6.1.0-27-amd64",
                   .cpu = "AMD EPYC 7B13",
                   .cores = 2,
                   .memory_bytes = 8ull << 30,
                   .gpu = "none",
                   .chaosdrill_version = "0.1.0",
                   .chaosdrill_commit = "8b38c79"};
  std::mt19937_64 rng(s.seed);
  std::lognormal_distribution<double> latency_ms(1.0, 0.35);
  std::vector<std::pair<int64_t, int64_t>> outages;
  for (int i = 0; i < s.faults; ++i) {
    int64_t at = (s.baseline_s + 8 * i) * 1'000'000'000;
    FaultEvent f{.name = i == 0 ? "kill-one" : absl::StrCat("slow-net-", i),
                 .kind = i == 0 ? "process.kill" : "proxy.latency",
                 .target = i == 0 ? "replica[0] (pid 4242)" : "gateway",
                 .scheduled_ns = at,
                 .injected_ns = at + 3'000'000};
    if (i != 0) f.reverted_ns = at + 4'000'000'000;
    outages.push_back({f.injected_ns, f.injected_ns + 1'840'000'000 + i * 300'000'000});
    r.events.push_back({.t_ns = f.injected_ns,
                        .type = "inject",
                        .fault = f.name,
                        .message = absl::StrCat(f.kind, " on ", f.target)});
    if (f.reverted_ns) {
      r.events.push_back(
          {.t_ns = *f.reverted_ns, .type = "revert", .fault = f.name, .message = "reverted"});
    }
    r.faults.push_back(std::move(f));
  }
  if (s.probes) {
    ProbeSeries ready{.name = "ready",
                      .kind = "ready",
                      .check = "ServerReady + ModelReady tiny-mlp",
                      .every_ns = 500'000'000};
    for (int64_t t = 0; t < s.duration_s * 1'000'000'000; t += ready.every_ns) {
      bool down = false;
      for (const auto& [from, to] : outages) down |= t >= from && t < to;
      ready.samples.push_back(
          {.t_ns = t, .ok = !down, .message = down ? "ServerReady: UNAVAILABLE" : ""});
    }
    ProbeSeries alert{.name = "replica-down",
                      .kind = "alert",
                      .check = "ALERTS{alertname=\"ReplicaDown\",alertstate=\"firing\"}",
                      .every_ns = 1'000'000'000,
                      .alert = "ReplicaDown",
                      .within_ns = 30'000'000'000,
                      .faults = {"kill-one"}};
    for (int64_t k = 0; k < s.duration_s; ++k) {
      const bool firing = k >= 13 && k < 16;
      alert.samples.push_back({.t_ns = k * 1'000'000'000,
                               .ok = !firing,
                               .value = firing ? 1.0 : 0.0,
                               .message = firing ? "alert ReplicaDown firing (1 series)" : ""});
    }
    r.probes = {std::move(ready), std::move(alert)};
  }
  int64_t count = s.rate * s.duration_s;
  for (int64_t i = 0; i < count; ++i) {
    if (s.parity >= 0 && i % 2 != s.parity) {
      latency_ms(rng);
      continue;
    }
    RequestRecord q;
    q.intended_ns = s.start_offset_ns + i * r.request_interval_ns;
    q.sent_ns = q.intended_ns + 20'000;
    double ms = latency_ms(rng);
    bool out = false;
    for (const auto& [from, to] : outages) out |= q.intended_ns >= from && q.intended_ns < to;
    if (out) {
      q.code = (i % 3 == 0) ? 4 : 14;
      if (q.code == 4) {
        q.flags = RequestRecord::kTimeout;
        ms = 2000;
      } else {
        ms = 0.4;
      }
    }
    if (i % 10 == 0) q.flags |= RequestRecord::kGoldenChecked;
    q.completed_ns = q.intended_ns + static_cast<int64_t>(ms * 1e6);
    r.requests.push_back(q);
    r.send_skew.Record(20'000);
  }
  for (int64_t i = 0; i < s.duration_s * 50; ++i) {
    WriteRecord w{.session = absl::StrCat("s", i % 8),
                  .seq = i / 8,
                  .sent_ns = i * 20'000'000,
                  .ack_ns = i * 20'000'000 + 1'000'000};
    r.writes.push_back(w);
    bool lost = i >= 500 && i < 503;
    if (!lost) r.read_back[w.session].push_back(w.seq);
  }
  r.verified = true;
  AnalysisResult& a = r.analysis;
  a.requests = static_cast<uint64_t>(count);
  // About two seconds of bad requests per fault (400 at the default 200 rps).
  a.good = a.requests - std::min<uint64_t>(a.requests, 2 * s.rate * s.faults);
  a.availability = static_cast<double>(a.good) / a.requests;
  a.good_latency_ns = 25'000'000;
  a.baseline_p99_ns = 5'000'000;
  a.p50_ns = 2'700'000;
  a.p99_ns = 6'100'000;
  for (size_t i = 0; i < r.faults.size(); ++i) {
    const auto& [from, to] = outages[i];
    a.faults.push_back({.name = r.faults[i].name,
                        .impact = true,
                        .impact_ns = from,
                        .recovered = true,
                        .recovered_ns = to,
                        .rto_ns = to - r.faults[i].injected_ns,
                        .time_to_impact_ns = 0,
                        .outage_ns = to - from,
                        .failed_requests = 368,
                        .outage_p50_ns = 400'000,
                        .outage_p99_ns = 2'000'000'000});
  }
  a.rpo = RpoResult{.writes = r.writes.size(),
                    .acknowledged = r.writes.size(),
                    .lost = 3,
                    .rpo_ns = 60'000'000,
                    .lost_writes = {r.writes[500], r.writes[501], r.writes[502]}};
  a.slos = {{.name = "rto", .target = "3s", .measured = "1.84s", .pass = true},
            {.name = "rpo",
             .target = "0",
             .measured = "3",
             .pass = false,
             .reason = "3 acknowledged writes lost (s4#62, s5#62, s6#62)"},
            {.name = "availability",
             .target = "0.99",
             .measured = std::to_string(a.availability).substr(0, 6),
             .pass = a.availability >= 0.99}};
  if (s.probes) {  // as runner::AddProbeVerdicts derives them from the alert series
    a.alerts = {{.probe = "replica-down",
                 .alert = "ReplicaDown",
                 .fault = "kill-one",
                 .injected_ns = r.faults.at(0).injected_ns,
                 .within_ns = 30'000'000'000,
                 .fired = true,
                 .detect_ns = 13'000'000'000 - r.faults.at(0).injected_ns,
                 .pass = true}};
    a.slos.push_back({.name = "alert[ReplicaDown after kill-one]",
                      .target = "fired within 30s",
                      .measured = "fired after 3.0s",
                      .pass = true});
  }
  a.slos_met = false;
  r.exit_status = ExitStatus::kSloFailed;
  r.exit_reason = "SLO failed: rpo: 3 acknowledged writes lost";
  return r;
}

// See record_fixture.h.
std::pair<RunRecord, RunRecord> SplitBetweenRunners(const RunRecord& full,
                                                    const std::function<int(size_t)>& pick,
                                                    double share0) {
  RunRecord part[2] = {full, full};
  for (int k = 0; k < 2; ++k) {
    RunRecord& p = part[k];
    p.run_id = absl::StrCat(full.run_id, "-runner", k);
    p.requests.clear();
    p.writes.clear();
    p.read_back.clear();
    p.send_skew = LatencyHistogram();
    p.analysis = AnalysisResult();
    double share = k == 0 ? share0 : 1 - share0;
    p.request_interval_ns = std::llround(full.request_interval_ns / share);
  }
  for (size_t i = 0; i < full.requests.size(); ++i) {
    RunRecord& p = part[pick(i)];
    p.requests.push_back(full.requests[i]);
    p.send_skew.Record(full.requests[i].sent_ns - full.requests[i].intended_ns);
  }
  for (const WriteRecord& w : full.writes) {
    int k = (w.session.back() - '0') % 2;
    part[k].writes.push_back(w);
  }
  for (const auto& [session, seqs] : full.read_back) {
    part[(session.back() - '0') % 2].read_back[session] = seqs;
  }
  for (RunRecord& p : part) {  // each runner wrote its share of the sessions' rate
    if (!p.writes.empty()) {
      p.write_interval_ns = std::llround(static_cast<double>(full.write_interval_ns) *
                                         full.writes.size() / p.writes.size());
    }
  }
  return {part[0], part[1]};
}

void StartLater(RunRecord& r, int64_t by) {
  r.started_unix_ns += by;
  for (RequestRecord& q : r.requests) {
    q.intended_ns -= by;
    q.sent_ns -= by;
    q.completed_ns -= by;
  }
  for (WriteRecord& w : r.writes) {
    w.sent_ns -= by;
    if (w.ack_ns) *w.ack_ns -= by;
  }
  for (FaultEvent& f : r.faults) {
    f.scheduled_ns -= by;
    f.injected_ns -= by;
    if (f.reverted_ns) *f.reverted_ns -= by;
  }
  for (Event& e : r.events) e.t_ns -= by;
  for (ProbeSeries& p : r.probes) {
    for (ProbeSample& x : p.samples) x.t_ns -= by;
  }
  r.phases.baseline_end_ns -= by;
  r.phases.faults_end_ns -= by;
  r.phases.observe_end_ns -= by;
}

}  // namespace chaosdrill::reports::testing
