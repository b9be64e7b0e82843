// chaosdrill: failover drills for AI inference services. This file is the subcommand
// table and the dispatcher; each subcommand's code is in cmd_<name>.cc.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "cli/command.h"
#include "injector/fault_registry.h"

namespace chaosdrill::cli {
namespace {

constexpr Command kCommands[] = {
    {"run", "Run drills: load, faults on schedule, RTO/RPO/SLO verdicts, run record",
     &RunDrillCommand},
    {"demo", "Run the default drill against the built-in reference service (make demo)",
     &DemoCommand},
    {"agent", "Node agent: serve, init-pki, halt, resume, list (DESIGN 5)", &AgentCommand},
    {"reference", "Run the reference inference service: up, down, status, replica, gateway",
     &ReferenceCommand},
    {"doctor", "Which fault kinds this node can apply, and what is missing for the others",
     &DoctorCommand},
    {"faults", "List fault kinds and their parameters", &FaultsCommand},
    {"inject", "Apply one fault, hold it for a duration or until Ctrl-C, revert it",
     &InjectCommand},
    {"revert", "Undo faults left in the revert journal by a crashed inject or agent",
     &RevertCommand},
    {"report", "Render a run record (HTML, Markdown, JUnit, JSON); --history; --merge runners",
     &ReportCommand},
    {"validate", "Check scenario files: schema, values, fault parameters (exit 2 if invalid)",
     &ValidateCommand},
    {"version", "Print version, git commit, build type and whether CUDA is built in",
     &VersionCommand},
};

void PrintUsage(std::FILE* out) {
  std::fprintf(out,
               "chaosdrill: failover drills for AI inference services.\n"
               "Drives load at a service, injects faults on its nodes, and measures what users\n"
               "saw: RTO, RPO, error budget and latency, against the scenario's SLOs.\n\n"
               "Usage: chaosdrill COMMAND [ARGS...]\n"
               "       chaosdrill COMMAND --help\n\nCommands:\n");
  for (const Command& c : kCommands) {
    std::fprintf(out, "  %-10s %.*s\n", std::string(c.name).c_str(),
                 static_cast<int>(c.summary.size()), c.summary.data());
  }
  std::fprintf(out,
               "\nExit codes: 0 SLOs met, 1 SLO failed, 2 invalid scenario or usage, 3 aborted,\n"
               "4 infrastructure error.\n");
}

}  // namespace

std::span<const Command> Commands() { return kCommands; }

std::optional<int> ParseArgs(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::cerr << app.get_name() << ": " << e.what() << "\nRun '" << app.get_name()
              << " --help' for usage.\n";
    return kExitUsage;
  }
  return std::nullopt;
}

}  // namespace chaosdrill::cli

int main(int argc, char** argv) {
  using namespace chaosdrill::cli;
  chaosdrill::injector::RegisterBuiltinFaults();
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    if (argc >= 3 && std::strcmp(argv[1], "help") == 0) {
      // "chaosdrill help CMD" is "chaosdrill CMD --help".
      for (const Command& c : Commands()) {
        if (c.name == argv[2]) {
          std::string name = "chaosdrill " + std::string(c.name);
          char help_flag[] = "--help";
          char* args[] = {name.data(), help_flag, nullptr};
          return c.handler(2, args);
        }
      }
    }
    PrintUsage(argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    std::string name = "chaosdrill version";
    char* args[] = {name.data(), nullptr};
    return VersionCommand(1, args);
  }
  for (const Command& c : Commands()) {
    if (c.name == argv[1]) {
      std::string name = "chaosdrill " + std::string(c.name);
      argv[1] = name.data();
      return c.handler(argc - 1, argv + 1);
    }
  }
  std::fprintf(stderr, "chaosdrill: unknown command '%s'. Run 'chaosdrill --help'.\n", argv[1]);
  return kExitUsage;
}
