// The typed form of a scenario file (scenarios/SCHEMA.md is the reference for every
// field). A Scenario is produced only by LoadScenario() (scenario_loader.h) after every
// check passed, handed out as shared_ptr<const Scenario>, and never changes afterwards:
// the runner, the reports and the CLI read it, none of them sees YAML (STYLE rule 5).
// Defaults from SCHEMA.md are already applied; optional fields that have no default are
// std::optional. Every YAML node's position is kept in `locations`, keyed by field path,
// so later stages can point at the line a problem came from.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "common/fault_spec.h"
#include "scenarios/role.h"
#include "scenarios/source_location.h"

namespace chaosdrill::scenarios {

inline constexpr absl::string_view kApiVersion = "chaosdrill/v1";
inline constexpr absl::string_view kKind = "Scenario";
// The agent that exists without being listed: the runner's private child on a Unix socket.
inline constexpr absl::string_view kLocalAgentName = "local";

struct Metadata {
  std::string name;  // DNS-label style: [a-z0-9-], at most 63 characters
  std::string description;
  std::vector<std::string> tags;
};

struct TlsFiles {
  std::string ca;
  std::string cert;
  std::string key;
  std::string server_name;  // endpoints only: overrides the name checked in the certificate
};

enum class Replication { kAsync, kSync };
enum class Device { kCpu, kCuda };
// Where the replicas sit on the network: all on loopback, or each in its own network
// namespace on its own veth link (what network.* faults on a replica need; root).
enum class Network { kLoopback, kNetns };

struct ModelOptions {
  std::string name = "tiny-mlp";
  int width = 256;  // hidden units per layer
  int depth = 4;    // hidden layers
  int batch = 1;    // inputs per request
};

// The reference inference service started by the runner (`chaosdrill reference up`).
struct ReferenceTarget {
  int replicas = 3;
  Replication replication = Replication::kAsync;
  Device device = Device::kCpu;
  Network network = Network::kLoopback;
  ModelOptions model;
};

// An existing service speaking the Open Inference Protocol over gRPC.
struct EndpointTarget {
  std::string protocol = "oip-grpc";
  std::string address;  // host:port
  std::string model;
  std::optional<TlsFiles> tls;
};

struct Target {
  std::variant<ReferenceTarget, EndpointTarget> service;

  bool is_reference() const { return std::holds_alternative<ReferenceTarget>(service); }
  const ReferenceTarget* reference() const { return std::get_if<ReferenceTarget>(&service); }
  const EndpointTarget* endpoint() const { return std::get_if<EndpointTarget>(&service); }
};

// A remote agent the runner dials over gRPC with mutual TLS ("unix:PATH" addresses are
// local sockets and need no TLS).
struct Agent {
  std::string name;
  std::string address;
  std::optional<TlsFiles> tls;
  std::map<std::string, std::string> labels;
  SourceLocation location;
};

enum class Arrival { kConstant, kPoisson };

struct Load {
  double rate = 0;  // requests per second, > 0
  Arrival arrival = Arrival::kConstant;
  int connections = 4;
  absl::Duration timeout = absl::Seconds(2);
  int golden_every = 10;                       // check every Nth answer; 0 = never
  std::optional<absl::Duration> good_latency;  // empty: 5 x baseline p99
  std::optional<uint64_t> seed;                // Poisson arrivals; empty: random
};

// Session writes for RPO (DESIGN §7).
struct Writes {
  double rate = 0;  // writes per second over all sessions, > 0
  int sessions = 8;
  uint64_t payload_size = 64;  // bytes per write
};

struct SteadyState {
  double success_ratio = 0.99;
  std::optional<absl::Duration> p50;
  std::optional<absl::Duration> p99;
};

struct Phases {
  absl::Duration baseline = absl::Seconds(10);
  absl::Duration observe = absl::Seconds(60);  // after baseline: faults and recovery
  absl::Duration hold = absl::Seconds(5);
  double recovery_ratio = 0.99;

  absl::Duration End() const { return baseline + observe; }
};

// Where a fault goes. Exactly one of role, agent, selector is set; count/percent pick a
// subset of what matched (role families "replica"/"sentinel", or selected agents).
struct FaultTarget {
  std::optional<Role> role;                     // reference targets only
  std::optional<std::string> agent;             // an agent's name (or "local")
  std::map<std::string, std::string> selector;  // agent labels, all must match
  std::optional<int> count;
  std::optional<double> percent;  // 0 < percent <= 100
};

struct ScenarioFault {
  std::string name;
  FaultSpec spec;     // kind, parameters as written (strings), duration
  absl::Duration at;  // from drill start; baseline <= at
  FaultTarget target;
  bool allow_majority = false;
  SourceLocation location;
};

// An instant PromQL query that must return one number, compared with a threshold.
struct PrometheusProbe {
  std::string url;  // http://host[:port][/prefix] (the /api/v1/query endpoint is added)
  std::string query;
  std::optional<double> below;  // healthy while the value is below this
  std::optional<double> above;  // healthy while the value is above this
};
struct GoldenProbe {};  // a golden inference, answer compared with the model's golden output
struct ReadyProbe {};   // OIP ServerReady + ModelReady
// "Alert `alert` fired within `within` of each fault's injection": queries
// ALERTS{alertname="<alert>",alertstate="firing"} and judges the time to detect.
struct AlertProbe {
  std::string url;  // as PrometheusProbe::url
  std::string alert;
  absl::Duration within;
  std::vector<std::string> faults;  // the faults it is judged against; empty = every fault
};

struct Probe {
  std::string name;
  absl::Duration every = absl::Seconds(1);
  absl::Duration timeout = absl::Seconds(1);  // not written: 1s, or `every` if shorter
  std::variant<PrometheusProbe, GoldenProbe, ReadyProbe, AlertProbe> check;
  SourceLocation location;
};

// Stop the drill (revert everything, exit 3) when a condition holds for `for_duration`.
struct AbortCondition {
  std::optional<double> success_ratio_below;
  std::optional<absl::Duration> p99_above;
  absl::Duration for_duration = absl::Seconds(5);
  SourceLocation location;
};

// A share of a long-running error budget: "this drill may burn at most max_consumed of
// the budget that `objective` leaves over `window` at the scenario's load rate".
struct ErrorBudget {
  double objective = 0.999;
  absl::Duration window = absl::Hours(24 * 30);
  double max_consumed = 0.05;
};

struct Slo {
  std::optional<absl::Duration> rto;   // every fault recovers within this
  std::optional<int64_t> rpo;          // acknowledged writes lost, at most (0 = none)
  std::optional<double> availability;  // good / all requests over the drill
  std::optional<absl::Duration> p99;   // over the whole drill
  std::optional<ErrorBudget> error_budget;
};

enum class Weekday { kMon, kTue, kWed, kThu, kFri, kSat, kSun };

// When the drill may run; `chaosdrill run` refuses outside it.
struct Guard {
  int start_minute = 0;       // minutes after midnight, local to `timezone`
  int end_minute = 0;         // end < start wraps over midnight
  std::vector<Weekday> days;  // empty = every day
  std::string timezone = "UTC";
};

enum class ReportFormat { kJson, kHtml, kJunit, kMarkdown };

struct ReportOptions {
  std::vector<ReportFormat> formats = {ReportFormat::kJson, ReportFormat::kHtml};
  std::string dir = "chaosdrill-reports";
};

struct Scenario {
  std::string api_version;
  Metadata metadata;
  Target target;
  std::vector<Agent> agents;  // empty: only the private local agent
  Load load;
  std::optional<Writes> writes;
  SteadyState steady_state;
  Phases phases;
  std::vector<ScenarioFault> faults;
  std::vector<Probe> probes;
  std::vector<AbortCondition> abort;
  Slo slo;
  std::optional<Guard> guard;
  ReportOptions report;

  std::string file;  // where it was loaded from ("<memory>" for strings)
  // Every node's position, keyed by its field path ("faults[1].duration", "load").
  std::map<std::string, SourceLocation> locations;

  const ScenarioFault* FindFault(absl::string_view name) const;
  const Agent* FindAgent(absl::string_view name) const;
  // The position of `path`, or {0, 0} when it was not written (a default).
  SourceLocation LocationOf(absl::string_view path) const;
};

absl::string_view ReplicationName(Replication r);
absl::string_view DeviceName(Device d);
absl::string_view NetworkName(Network n);
absl::string_view ArrivalName(Arrival a);
absl::string_view WeekdayName(Weekday d);
absl::string_view ReportFormatName(ReportFormat f);

}  // namespace chaosdrill::scenarios
