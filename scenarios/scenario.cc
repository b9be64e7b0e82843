#include "scenarios/scenario.h"

namespace chaosdrill::scenarios {

const ScenarioFault* Scenario::FindFault(absl::string_view name) const {
  for (const ScenarioFault& f : faults) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const Agent* Scenario::FindAgent(absl::string_view name) const {
  for (const Agent& a : agents) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

SourceLocation Scenario::LocationOf(absl::string_view path) const {
  auto it = locations.find(std::string(path));
  return it == locations.end() ? SourceLocation{} : it->second;
}

absl::string_view ReplicationName(Replication r) {
  return r == Replication::kSync ? "sync" : "async";
}

absl::string_view DeviceName(Device d) { return d == Device::kCuda ? "cuda" : "cpu"; }

absl::string_view NetworkName(Network n) { return n == Network::kNetns ? "netns" : "loopback"; }

absl::string_view ArrivalName(Arrival a) { return a == Arrival::kPoisson ? "poisson" : "constant"; }

absl::string_view WeekdayName(Weekday d) {
  static constexpr absl::string_view kNames[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  return kNames[static_cast<int>(d)];
}

absl::string_view ReportFormatName(ReportFormat f) {
  switch (f) {
    case ReportFormat::kJson:
      return "json";
    case ReportFormat::kHtml:
      return "html";
    case ReportFormat::kJunit:
      return "junit";
    case ReportFormat::kMarkdown:
      return "markdown";
  }
  return "?";
}

}  // namespace chaosdrill::scenarios
