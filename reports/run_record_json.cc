#include "reports/run_record_json.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "reports/run_record_derived.h"

namespace chaosdrill::reports {
namespace {

using nlohmann::json;

json OptionalNs(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }

json FaultResultJson(const FaultResult& f) {
  return {{"name", f.name},
          {"impact", f.impact},
          {"impact_ns", f.impact_ns},
          {"recovered", f.recovered},
          {"recovered_ns", f.recovered_ns},
          {"rto_ns", f.rto_ns},
          {"time_to_impact_ns", f.time_to_impact_ns},
          {"outage_ns", f.outage_ns},
          {"failed_requests", f.failed_requests},
          {"error_budget_consumed", f.error_budget_consumed},
          {"outage_p50_ns", f.outage_p50_ns},
          {"outage_p99_ns", f.outage_p99_ns},
          {"recover_after_revert_ns", OptionalNs(f.recover_after_revert_ns)},
          {"outside_p50_ns", f.outside_p50_ns},
          {"outside_p99_ns", f.outside_p99_ns}};
}

json WriteJson(const WriteRecord& w) {
  return {{"session", w.session},
          {"seq", w.seq},
          {"sent_ns", w.sent_ns},
          {"ack_ns", OptionalNs(w.ack_ns)}};
}

json OptionalNumber(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json ProbesJson(const std::vector<ProbeSeries>& probes) {
  json out = json::array();
  for (const ProbeSeries& p : probes) {
    json samples = json::array();
    for (const ProbeSample& s : p.samples) {
      samples.push_back({{"t_ns", s.t_ns},
                         {"ok", s.ok},
                         {"value", OptionalNumber(s.value)},
                         {"message", s.message}});
    }
    out.push_back({{"name", p.name},
                   {"kind", p.kind},
                   {"check", p.check},
                   {"every_ns", p.every_ns},
                   {"alert", p.alert},
                   {"within_ns", OptionalNs(p.within_ns)},
                   {"faults", p.faults},
                   {"samples", samples}});
  }
  return out;
}

json AlertsJson(const std::vector<AlertDetection>& alerts) {
  json out = json::array();
  for (const AlertDetection& d : alerts) {
    out.push_back({{"probe", d.probe},
                   {"alert", d.alert},
                   {"fault", d.fault},
                   {"injected_ns", d.injected_ns},
                   {"within_ns", d.within_ns},
                   {"already_firing", d.already_firing},
                   {"fired", d.fired},
                   {"detect_ns", d.detect_ns},
                   {"pass", d.pass}});
  }
  return out;
}

// Column-wise request log: intended times delta-encoded, the others relative to intended.
json RequestsJson(const std::vector<RequestRecord>& requests) {
  json intended_delta = json::array(), send_lag = json::array(), latency = json::array(),
       code = json::array(), flags = json::array();
  int64_t previous = 0;
  for (const RequestRecord& r : requests) {
    intended_delta.push_back(r.intended_ns - previous);
    previous = r.intended_ns;
    send_lag.push_back(r.sent_ns - r.intended_ns);
    latency.push_back(r.completed_ns - r.intended_ns);
    code.push_back(r.code);
    flags.push_back(r.flags);
  }
  return {{"count", requests.size()},
          {"intended_delta_ns", intended_delta},
          {"send_lag_ns", send_lag},
          {"latency_ns", latency},
          {"code", code},
          {"flags", flags}};
}

json HistogramsJson(const LatencyHistograms& h) {
  return {{"overall", h.overall.ToJson()},
          {"baseline", h.baseline.ToJson()},
          {"faults", h.faults.ToJson()},
          {"recovery", h.recovery.ToJson()}};
}

// ---- strict reading -------------------------------------------------------------------
// Thrown inside FromJson only, caught at its boundary and turned into a Status.
struct JsonError {
  std::string path;
  std::string message;
};

std::string Join(const std::string& path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}
std::string Index(const std::string& path, size_t i) { return absl::StrCat(path, "[", i, "]"); }

std::string Shown(const json& v) {
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

[[noreturn]] void Fail(const std::string& path, absl::string_view expected, const json& got) {
  throw JsonError{path, absl::StrCat("expected ", expected, ", got ", Shown(got))};
}

void CheckObject(const json& obj, const std::string& path,
                 std::initializer_list<const char*> keys) {
  if (!obj.is_object()) Fail(path.empty() ? "(top level)" : path, "an object", obj);
  for (const char* key : keys) {
    if (!obj.contains(key)) throw JsonError{Join(path, key), "missing"};
  }
  for (const auto& [key, value] : obj.items()) {
    if (std::find_if(keys.begin(), keys.end(), [&](const char* k) { return key == k; }) ==
        keys.end()) {
      throw JsonError{Join(path, key), "unknown field"};
    }
  }
}

// Like CheckObject, but some keys may be absent (derived views).
void CheckOptionalKeys(const json& obj, const std::string& path,
                       std::initializer_list<const char*> required,
                       std::initializer_list<const char*> optional) {
  if (!obj.is_object()) Fail(path.empty() ? "(top level)" : path, "an object", obj);
  for (const char* key : required) {
    if (!obj.contains(key)) throw JsonError{Join(path, key), "missing"};
  }
  auto known = [&](const std::string& key) {
    for (const char* k : required)
      if (key == k) return true;
    for (const char* k : optional)
      if (key == k) return true;
    return false;
  };
  for (const auto& [key, value] : obj.items()) {
    if (!known(key)) throw JsonError{Join(path, key), "unknown field"};
  }
}

int64_t Int(const json& v, const std::string& path) {
  if (!v.is_number_integer()) Fail(path, "an integer", v);
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    Fail(path, "an integer that fits 64 bits", v);
  }
  return v.get<int64_t>();
}
uint64_t UInt(const json& v, const std::string& path) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0)) {
    Fail(path, "a non-negative integer", v);
  }
  return v.get<uint64_t>();
}
double Num(const json& v, const std::string& path) {
  if (!v.is_number()) Fail(path, "a number", v);
  return v.get<double>();
}
bool Bool(const json& v, const std::string& path) {
  if (!v.is_boolean()) Fail(path, "true or false", v);
  return v.get<bool>();
}
std::string Str(const json& v, const std::string& path) {
  if (!v.is_string()) Fail(path, "a string", v);
  return v.get<std::string>();
}
std::optional<int64_t> OptInt(const json& v, const std::string& path) {
  if (v.is_null()) return std::nullopt;
  return Int(v, path);
}
const json& Array(const json& v, const std::string& path) {
  if (!v.is_array()) Fail(path, "an array", v);
  return v;
}

// Field accessors: obj[key] with the path extended.
#define CD_FIELD(obj, path, key, Getter) Getter((obj).at(key), Join(path, key))

WriteRecord ParseWrite(const json& j, const std::string& path) {
  CheckObject(j, path, {"session", "seq", "sent_ns", "ack_ns"});
  WriteRecord w;
  w.session = CD_FIELD(j, path, "session", Str);
  w.seq = CD_FIELD(j, path, "seq", Int);
  w.sent_ns = CD_FIELD(j, path, "sent_ns", Int);
  w.ack_ns = CD_FIELD(j, path, "ack_ns", OptInt);
  return w;
}

std::vector<RequestRecord> ParseRequests(const json& j, const std::string& path) {
  CheckObject(j, path,
              {"count", "intended_delta_ns", "send_lag_ns", "latency_ns", "code", "flags"});
  uint64_t count = CD_FIELD(j, path, "count", UInt);
  for (const char* key : {"intended_delta_ns", "send_lag_ns", "latency_ns", "code", "flags"}) {
    const json& column = Array(j.at(key), Join(path, key));
    if (column.size() != count) {
      throw JsonError{Join(path, key), absl::StrCat("has ", column.size(),
                                                    " entries but requests.count is ", count)};
    }
  }
  std::vector<RequestRecord> out(count);
  const json& intended = j["intended_delta_ns"];
  const json& lag = j["send_lag_ns"];
  const json& latency = j["latency_ns"];
  const json& code = j["code"];
  const json& flags = j["flags"];
  int64_t previous = 0;
  for (size_t i = 0; i < count; ++i) {
    RequestRecord& r = out[i];
    r.intended_ns = previous + Int(intended[i], Index(Join(path, "intended_delta_ns"), i));
    previous = r.intended_ns;
    r.sent_ns = r.intended_ns + Int(lag[i], Index(Join(path, "send_lag_ns"), i));
    r.completed_ns = r.intended_ns + Int(latency[i], Index(Join(path, "latency_ns"), i));
    uint64_t c = UInt(code[i], Index(Join(path, "code"), i));
    if (c > 255) Fail(Index(Join(path, "code"), i), "a gRPC status code 0..255", code[i]);
    uint64_t f = UInt(flags[i], Index(Join(path, "flags"), i));
    if (f > 7) Fail(Index(Join(path, "flags"), i), "request flags 0..7", flags[i]);
    r.code = static_cast<uint8_t>(c);
    r.flags = static_cast<uint8_t>(f);
  }
  return out;
}

LatencyHistogram ParseHistogram(const json& j, const std::string& path) {
  absl::StatusOr<LatencyHistogram> h = LatencyHistogram::FromJson(j);
  if (!h.ok()) throw JsonError{path, std::string(h.status().message())};
  return *std::move(h);
}

FaultResult ParseFaultResult(const json& j, const std::string& path) {
  // outside_p50/p99_ns arrived after the first records were written: optional.
  CheckOptionalKeys(j, path,
                    {"name", "impact", "impact_ns", "recovered", "recovered_ns", "rto_ns",
                     "time_to_impact_ns", "outage_ns", "failed_requests", "error_budget_consumed",
                     "outage_p50_ns", "outage_p99_ns", "recover_after_revert_ns"},
                    {"outside_p50_ns", "outside_p99_ns"});
  FaultResult f;
  f.name = CD_FIELD(j, path, "name", Str);
  f.impact = CD_FIELD(j, path, "impact", Bool);
  f.impact_ns = CD_FIELD(j, path, "impact_ns", Int);
  f.recovered = CD_FIELD(j, path, "recovered", Bool);
  f.recovered_ns = CD_FIELD(j, path, "recovered_ns", Int);
  f.rto_ns = CD_FIELD(j, path, "rto_ns", Int);
  f.time_to_impact_ns = CD_FIELD(j, path, "time_to_impact_ns", Int);
  f.outage_ns = CD_FIELD(j, path, "outage_ns", Int);
  f.failed_requests = CD_FIELD(j, path, "failed_requests", UInt);
  f.error_budget_consumed = CD_FIELD(j, path, "error_budget_consumed", Num);
  f.outage_p50_ns = CD_FIELD(j, path, "outage_p50_ns", Int);
  f.outage_p99_ns = CD_FIELD(j, path, "outage_p99_ns", Int);
  f.recover_after_revert_ns = CD_FIELD(j, path, "recover_after_revert_ns", OptInt);
  if (j.contains("outside_p50_ns")) f.outside_p50_ns = CD_FIELD(j, path, "outside_p50_ns", Int);
  if (j.contains("outside_p99_ns")) f.outside_p99_ns = CD_FIELD(j, path, "outside_p99_ns", Int);
  return f;
}

std::vector<ProbeSeries> ParseProbes(const json& j, const std::string& path) {
  std::vector<ProbeSeries> out;
  const json& list = Array(j, path);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = Index(path, i);
    const json& o = list[i];
    CheckObject(o, p,
                {"name", "kind", "check", "every_ns", "alert", "within_ns", "faults", "samples"});
    ProbeSeries s;
    s.name = CD_FIELD(o, p, "name", Str);
    s.kind = CD_FIELD(o, p, "kind", Str);
    if (s.kind != "ready" && s.kind != "golden" && s.kind != "prometheus" && s.kind != "alert") {
      Fail(Join(p, "kind"), "one of ready, golden, prometheus, alert", o["kind"]);
    }
    s.check = CD_FIELD(o, p, "check", Str);
    s.every_ns = CD_FIELD(o, p, "every_ns", Int);
    s.alert = CD_FIELD(o, p, "alert", Str);
    s.within_ns = CD_FIELD(o, p, "within_ns", OptInt);
    const std::string fp = Join(p, "faults");
    const json& faults = Array(o.at("faults"), fp);
    for (size_t k = 0; k < faults.size(); ++k) s.faults.push_back(Str(faults[k], Index(fp, k)));
    const std::string sp = Join(p, "samples");
    const json& samples = Array(o.at("samples"), sp);
    for (size_t k = 0; k < samples.size(); ++k) {
      const std::string q = Index(sp, k);
      CheckObject(samples[k], q, {"t_ns", "ok", "value", "message"});
      ProbeSample x;
      x.t_ns = CD_FIELD(samples[k], q, "t_ns", Int);
      x.ok = CD_FIELD(samples[k], q, "ok", Bool);
      if (!samples[k]["value"].is_null()) x.value = CD_FIELD(samples[k], q, "value", Num);
      x.message = CD_FIELD(samples[k], q, "message", Str);
      s.samples.push_back(std::move(x));
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<AlertDetection> ParseAlerts(const json& j, const std::string& path) {
  std::vector<AlertDetection> out;
  const json& list = Array(j, path);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = Index(path, i);
    const json& o = list[i];
    CheckObject(o, p,
                {"probe", "alert", "fault", "injected_ns", "within_ns", "already_firing", "fired",
                 "detect_ns", "pass"});
    out.push_back({.probe = CD_FIELD(o, p, "probe", Str),
                   .alert = CD_FIELD(o, p, "alert", Str),
                   .fault = CD_FIELD(o, p, "fault", Str),
                   .injected_ns = CD_FIELD(o, p, "injected_ns", Int),
                   .within_ns = CD_FIELD(o, p, "within_ns", Int),
                   .already_firing = CD_FIELD(o, p, "already_firing", Bool),
                   .fired = CD_FIELD(o, p, "fired", Bool),
                   .detect_ns = CD_FIELD(o, p, "detect_ns", Int),
                   .pass = CD_FIELD(o, p, "pass", Bool)});
  }
  return out;
}

AnalysisResult ParseAnalysis(const json& j, const std::string& path) {
  // incomplete, service_p50/p99_ns and alerts arrived after the first records: optional.
  CheckOptionalKeys(
      j, path,
      {"requests", "good", "availability", "good_latency_ns", "baseline_p99_ns", "p50_ns", "p99_ns",
       "error_budget_consumed", "faults", "rpo", "slos", "slos_met"},
      {"incomplete", "service_p50_ns", "service_p99_ns", "alerts"});
  AnalysisResult a;
  a.requests = CD_FIELD(j, path, "requests", UInt);
  a.good = CD_FIELD(j, path, "good", UInt);
  if (a.good > a.requests) {
    throw JsonError{Join(path, "good"), absl::StrCat(a.good, " good of ", a.requests, " requests")};
  }
  a.availability = CD_FIELD(j, path, "availability", Num);
  a.good_latency_ns = CD_FIELD(j, path, "good_latency_ns", Int);
  a.baseline_p99_ns = CD_FIELD(j, path, "baseline_p99_ns", Int);
  a.p50_ns = CD_FIELD(j, path, "p50_ns", Int);
  a.p99_ns = CD_FIELD(j, path, "p99_ns", Int);
  if (j.contains("incomplete")) a.incomplete = CD_FIELD(j, path, "incomplete", UInt);
  if (a.incomplete > a.requests - a.good) {
    throw JsonError{Join(path, "incomplete"),
                    absl::StrCat(a.incomplete, " incomplete but only ", a.requests - a.good,
                                 " requests were not good")};
  }
  if (j.contains("service_p50_ns")) a.service_p50_ns = CD_FIELD(j, path, "service_p50_ns", Int);
  if (j.contains("service_p99_ns")) a.service_p99_ns = CD_FIELD(j, path, "service_p99_ns", Int);
  a.error_budget_consumed = CD_FIELD(j, path, "error_budget_consumed", Num);
  const std::string fpath = Join(path, "faults");
  const json& faults = Array(j.at("faults"), fpath);
  for (size_t i = 0; i < faults.size(); ++i) {
    a.faults.push_back(ParseFaultResult(faults[i], Index(fpath, i)));
  }
  const json& rpo = j.at("rpo");
  if (!rpo.is_null()) {
    const std::string rpath = Join(path, "rpo");
    CheckObject(rpo, rpath,
                {"writes", "acknowledged", "lost", "rpo_ns", "duplicated", "reordered", "ambiguous",
                 "lost_writes"});
    RpoResult r;
    r.writes = CD_FIELD(rpo, rpath, "writes", UInt);
    r.acknowledged = CD_FIELD(rpo, rpath, "acknowledged", UInt);
    r.lost = CD_FIELD(rpo, rpath, "lost", UInt);
    r.rpo_ns = CD_FIELD(rpo, rpath, "rpo_ns", Int);
    r.duplicated = CD_FIELD(rpo, rpath, "duplicated", UInt);
    r.reordered = CD_FIELD(rpo, rpath, "reordered", UInt);
    r.ambiguous = CD_FIELD(rpo, rpath, "ambiguous", UInt);
    const std::string lpath = Join(rpath, "lost_writes");
    const json& lost = Array(rpo.at("lost_writes"), lpath);
    for (size_t i = 0; i < lost.size(); ++i)
      r.lost_writes.push_back(ParseWrite(lost[i], Index(lpath, i)));
    a.rpo = std::move(r);
  }
  const std::string spath = Join(path, "slos");
  const json& slos = Array(j.at("slos"), spath);
  for (size_t i = 0; i < slos.size(); ++i) {
    const std::string p = Index(spath, i);
    CheckObject(slos[i], p, {"name", "target", "measured", "pass", "reason"});
    a.slos.push_back({.name = CD_FIELD(slos[i], p, "name", Str),
                      .target = CD_FIELD(slos[i], p, "target", Str),
                      .measured = CD_FIELD(slos[i], p, "measured", Str),
                      .pass = CD_FIELD(slos[i], p, "pass", Bool),
                      .reason = CD_FIELD(slos[i], p, "reason", Str)});
  }
  a.slos_met = CD_FIELD(j, path, "slos_met", Bool);
  if (j.contains("alerts")) a.alerts = ParseAlerts(j["alerts"], Join(path, "alerts"));
  return a;
}

RunRecord ParseRecord(const json& j) {
  CheckOptionalKeys(
      j, "",
      {"schema", "run_id", "scenario", "target", "started_unix_ns", "request_interval_ns",
       "write_interval_ns", "phases", "environment", "faults", "events", "requests", "writes",
       "read_back", "verified", "send_skew", "analysis", "exit"},
      {"timeline", "histograms", "in_progress", "read_back_corrupt", "probes"});
  RunRecord r;
  r.schema = CD_FIELD(j, "", "schema", Str);
  if (r.schema != kRunRecordSchema) {
    throw JsonError{"schema", absl::StrCat("expected \"", kRunRecordSchema, "\", got \"", r.schema,
                                           "\" (not a chaosdrill run record, or a ",
                                           "version this chaosdrill cannot read)")};
  }
  r.run_id = CD_FIELD(j, "", "run_id", Str);
  const json& sc = j.at("scenario");
  CheckObject(sc, "scenario", {"name", "file", "source"});
  r.scenario_name = CD_FIELD(sc, "scenario", "name", Str);
  r.scenario_file = CD_FIELD(sc, "scenario", "file", Str);
  r.scenario_source = CD_FIELD(sc, "scenario", "source", Str);
  r.target = CD_FIELD(j, "", "target", Str);
  r.started_unix_ns = CD_FIELD(j, "", "started_unix_ns", Int);
  r.request_interval_ns = CD_FIELD(j, "", "request_interval_ns", Int);
  r.write_interval_ns = CD_FIELD(j, "", "write_interval_ns", Int);
  const json& ph = j.at("phases");
  CheckObject(ph, "phases", {"baseline_end_ns", "faults_end_ns", "observe_end_ns"});
  r.phases.baseline_end_ns = CD_FIELD(ph, "phases", "baseline_end_ns", Int);
  r.phases.faults_end_ns = CD_FIELD(ph, "phases", "faults_end_ns", Int);
  r.phases.observe_end_ns = CD_FIELD(ph, "phases", "observe_end_ns", Int);
  const json& env = j.at("environment");
  const std::string e = "environment";
  CheckObject(env, e,
              {"host", "kernel", "cpu", "cores", "memory_bytes", "gpu", "chaosdrill_version",
               "chaosdrill_commit"});
  r.environment.host = CD_FIELD(env, e, "host", Str);
  r.environment.kernel = CD_FIELD(env, e, "kernel", Str);
  r.environment.cpu = CD_FIELD(env, e, "cpu", Str);
  int64_t cores = CD_FIELD(env, e, "cores", Int);
  if (cores < 0 || cores > 1'000'000) Fail(Join(e, "cores"), "a core count", env["cores"]);
  r.environment.cores = static_cast<int>(cores);
  r.environment.memory_bytes = CD_FIELD(env, e, "memory_bytes", UInt);
  r.environment.gpu = CD_FIELD(env, e, "gpu", Str);
  r.environment.chaosdrill_version = CD_FIELD(env, e, "chaosdrill_version", Str);
  r.environment.chaosdrill_commit = CD_FIELD(env, e, "chaosdrill_commit", Str);
  const json& faults = Array(j.at("faults"), "faults");
  for (size_t i = 0; i < faults.size(); ++i) {
    const std::string p = Index("faults", i);
    const json& f = faults[i];
    CheckOptionalKeys(f, p,
                      {"name", "kind", "target", "scheduled_ns", "injected_ns", "reverted_ns",
                       "inject_failed", "error"},
                      {"duration_ns"});
    r.faults.push_back({.name = CD_FIELD(f, p, "name", Str),
                        .kind = CD_FIELD(f, p, "kind", Str),
                        .target = CD_FIELD(f, p, "target", Str),
                        .scheduled_ns = CD_FIELD(f, p, "scheduled_ns", Int),
                        .injected_ns = CD_FIELD(f, p, "injected_ns", Int),
                        .reverted_ns = CD_FIELD(f, p, "reverted_ns", OptInt),
                        .duration_ns = f.contains("duration_ns")
                                           ? CD_FIELD(f, p, "duration_ns", OptInt)
                                           : std::optional<int64_t>(),
                        .inject_failed = CD_FIELD(f, p, "inject_failed", Bool),
                        .error = CD_FIELD(f, p, "error", Str)});
  }
  const json& events = Array(j.at("events"), "events");
  for (size_t i = 0; i < events.size(); ++i) {
    const std::string p = Index("events", i);
    CheckObject(events[i], p, {"t_ns", "type", "fault", "message"});
    r.events.push_back({.t_ns = CD_FIELD(events[i], p, "t_ns", Int),
                        .type = CD_FIELD(events[i], p, "type", Str),
                        .fault = CD_FIELD(events[i], p, "fault", Str),
                        .message = CD_FIELD(events[i], p, "message", Str)});
  }
  if (j.contains("probes")) r.probes = ParseProbes(j["probes"], "probes");
  r.requests = ParseRequests(j.at("requests"), "requests");
  const json& writes = Array(j.at("writes"), "writes");
  for (size_t i = 0; i < writes.size(); ++i)
    r.writes.push_back(ParseWrite(writes[i], Index("writes", i)));
  const json& rb = j.at("read_back");
  if (!rb.is_object()) Fail("read_back", "an object of session -> [seq, ...]", rb);
  for (const auto& [session, seqs] : rb.items()) {
    const std::string p = Join("read_back", session);
    std::vector<int64_t>& out = r.read_back[session];
    const json& list = Array(seqs, p);
    for (size_t i = 0; i < list.size(); ++i) out.push_back(Int(list[i], Index(p, i)));
  }
  if (j.contains("read_back_corrupt")) {
    const json& rc = j["read_back_corrupt"];
    if (!rc.is_object()) Fail("read_back_corrupt", "an object of session -> [seq, ...]", rc);
    for (const auto& [session, seqs] : rc.items()) {
      const std::string p = Join("read_back_corrupt", session);
      std::vector<int64_t>& out = r.read_back_corrupt[session];
      const json& list = Array(seqs, p);
      for (size_t i = 0; i < list.size(); ++i) out.push_back(Int(list[i], Index(p, i)));
    }
  }
  if (j.contains("in_progress")) r.in_progress = CD_FIELD(j, "", "in_progress", Bool);
  r.verified = CD_FIELD(j, "", "verified", Bool);
  r.send_skew = ParseHistogram(j.at("send_skew"), "send_skew");
  r.analysis = ParseAnalysis(j.at("analysis"), "analysis");
  const json& ex = j.at("exit");
  CheckObject(ex, "exit", {"code", "status", "reason"});
  int64_t code = CD_FIELD(ex, "exit", "code", Int);
  if (code < 0 || code > 4) Fail("exit.code", "an exit code 0..4", ex["code"]);
  r.exit_status = static_cast<ExitStatus>(code);
  std::string status = CD_FIELD(ex, "exit", "status", Str);
  if (r.in_progress != (status == "running")) {
    throw JsonError{"exit.status", absl::StrCat("\"", status, "\" with in_progress ",
                                                r.in_progress ? "true" : "false",
                                                " (a record in progress has status \"running\", "
                                                "a finished one never)")};
  }
  if (!r.in_progress && status != ExitStatusName(r.exit_status)) {
    throw JsonError{"exit.status", absl::StrCat("\"", status, "\" does not match exit code ", code,
                                                " (\"", ExitStatusName(r.exit_status), "\")")};
  }
  r.exit_reason = CD_FIELD(ex, "exit", "reason", Str);

  // Derived views, when present, must agree with the request log they were derived from.
  if (j.contains("timeline")) {
    absl::StatusOr<TimeBuckets> t = TimeBuckets::FromJson(j["timeline"]);
    if (!t.ok()) throw JsonError{"timeline", std::string(t.status().message())};
    if (!(*t == BuildTimeBuckets(r.requests))) {
      throw JsonError{"timeline", "does not match the request log (edited or corrupt record)"};
    }
  }
  if (j.contains("histograms")) {
    const json& h = j["histograms"];
    CheckObject(h, "histograms", {"overall", "baseline", "faults", "recovery"});
    LatencyHistograms parsed{ParseHistogram(h["overall"], "histograms.overall"),
                             ParseHistogram(h["baseline"], "histograms.baseline"),
                             ParseHistogram(h["faults"], "histograms.faults"),
                             ParseHistogram(h["recovery"], "histograms.recovery")};
    if (!(parsed == BuildHistograms(r.requests, r.phases))) {
      throw JsonError{"histograms", "do not match the request log (edited or corrupt record)"};
    }
  }
  return r;
}

#undef CD_FIELD

}  // namespace

absl::StatusOr<RunRecord> FromJson(const json& j) {
  try {
    return ParseRecord(j);
  } catch (const JsonError& e) {
    return absl::InvalidArgumentError(absl::StrCat(e.path, ": ", e.message));
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed run record: ", e.what()));
  }
}

absl::StatusOr<RunRecord> ReadRunRecord(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(absl::StrCat("reading run record ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  json j = json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not JSON (truncated or corrupt run record)"));
  }
  absl::StatusOr<RunRecord> r = FromJson(j);
  if (!r.ok()) return Annotate(r.status(), path);
  return r;
}

absl::string_view ExitStatusName(ExitStatus status) {
  switch (status) {
    case ExitStatus::kPassed:
      return "passed";
    case ExitStatus::kSloFailed:
      return "slo_failed";
    case ExitStatus::kInvalid:
      return "invalid";
    case ExitStatus::kAborted:
      return "aborted";
    case ExitStatus::kInfraError:
      return "infra_error";
  }
  return "unknown";
}

json ToJson(const RunRecord& r) {
  json faults = json::array();
  for (const FaultEvent& f : r.faults) {
    faults.push_back({{"name", f.name},
                      {"kind", f.kind},
                      {"target", f.target},
                      {"scheduled_ns", f.scheduled_ns},
                      {"injected_ns", f.injected_ns},
                      {"reverted_ns", OptionalNs(f.reverted_ns)},
                      {"duration_ns", OptionalNs(f.duration_ns)},
                      {"inject_failed", f.inject_failed},
                      {"error", f.error}});
  }
  json events = json::array();
  for (const Event& e : r.events) {
    events.push_back(
        {{"t_ns", e.t_ns}, {"type", e.type}, {"fault", e.fault}, {"message", e.message}});
  }
  json writes = json::array();
  for (const WriteRecord& w : r.writes) writes.push_back(WriteJson(w));
  const AnalysisResult& a = r.analysis;
  json fault_results = json::array();
  for (const FaultResult& f : a.faults) fault_results.push_back(FaultResultJson(f));
  json slos = json::array();
  for (const SloVerdict& v : a.slos) {
    slos.push_back({{"name", v.name},
                    {"target", v.target},
                    {"measured", v.measured},
                    {"pass", v.pass},
                    {"reason", v.reason}});
  }
  json rpo = nullptr;
  if (a.rpo) {
    json lost = json::array();
    for (const WriteRecord& w : a.rpo->lost_writes) lost.push_back(WriteJson(w));
    rpo = {{"writes", a.rpo->writes},
           {"acknowledged", a.rpo->acknowledged},
           {"lost", a.rpo->lost},
           {"rpo_ns", a.rpo->rpo_ns},
           {"duplicated", a.rpo->duplicated},
           {"reordered", a.rpo->reordered},
           {"ambiguous", a.rpo->ambiguous},
           {"lost_writes", lost}};
  }
  const Environment& env = r.environment;
  json out = {
      {"schema", r.schema},
      {"run_id", r.run_id},
      {"scenario",
       {{"name", r.scenario_name}, {"file", r.scenario_file}, {"source", r.scenario_source}}},
      {"target", r.target},
      {"started_unix_ns", r.started_unix_ns},
      {"request_interval_ns", r.request_interval_ns},
      {"write_interval_ns", r.write_interval_ns},
      {"phases",
       {{"baseline_end_ns", r.phases.baseline_end_ns},
        {"faults_end_ns", r.phases.faults_end_ns},
        {"observe_end_ns", r.phases.observe_end_ns}}},
      {"environment",
       {{"host", env.host},
        {"kernel", env.kernel},
        {"cpu", env.cpu},
        {"cores", env.cores},
        {"memory_bytes", env.memory_bytes},
        {"gpu", env.gpu},
        {"chaosdrill_version", env.chaosdrill_version},
        {"chaosdrill_commit", env.chaosdrill_commit}}},
      {"faults", faults},
      {"events", events},
      {"requests", RequestsJson(r.requests)},
      {"writes", writes},
      {"read_back", r.read_back},
      {"verified", r.verified},
      {"send_skew", r.send_skew.ToJson()},
      {"timeline", BuildTimeBuckets(r.requests).ToJson()},
      {"histograms", HistogramsJson(BuildHistograms(r.requests, r.phases))},
      {"analysis",
       {{"requests", a.requests},
        {"good", a.good},
        {"availability", a.availability},
        {"good_latency_ns", a.good_latency_ns},
        {"baseline_p99_ns", a.baseline_p99_ns},
        {"p50_ns", a.p50_ns},
        {"p99_ns", a.p99_ns},
        {"incomplete", a.incomplete},
        {"service_p50_ns", a.service_p50_ns},
        {"service_p99_ns", a.service_p99_ns},
        {"error_budget_consumed", a.error_budget_consumed},
        {"faults", fault_results},
        {"rpo", rpo},
        {"slos", slos},
        {"slos_met", a.slos_met}}},
      {"exit",
       {{"code", static_cast<int>(r.exit_status)},
        {"status", r.in_progress ? "running" : ExitStatusName(r.exit_status)},
        {"reason", r.exit_reason}}},
  };
  // Optional keys, present only when they say something (older records lack them).
  if (!r.read_back_corrupt.empty()) out["read_back_corrupt"] = r.read_back_corrupt;
  if (r.in_progress) out["in_progress"] = true;
  if (!r.probes.empty()) out["probes"] = ProbesJson(r.probes);
  if (!a.alerts.empty()) out["analysis"]["alerts"] = AlertsJson(a.alerts);
  return out;
}

absl::Status WriteRunRecord(const RunRecord& record, const std::string& path, bool pretty) {
  std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return ErrnoStatus(absl::StrCat("writing run record ", tmp));
    // Non-finite numbers become null (nlohmann's rule); invalid UTF-8 in captured text is replaced.
    out << ToJson(record).dump(pretty ? 2 : -1, ' ', false, json::error_handler_t::replace) << "\n";
    if (!out.flush()) return ErrnoStatus(absl::StrCat("writing run record ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("renaming ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace chaosdrill::reports
