// The `chaosdrill` subcommand table (STYLE rule 14): each subcommand is one entry
// {name, summary, handler}; each handler lives in its own cmd_<name>.cc, parses its flags
// with CLI11 and calls one library function.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <span>

#include "absl/strings/string_view.h"

namespace chaosdrill::cli {

// Exit codes (DESIGN §7), shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitSloFailed = 1;
inline constexpr int kExitUsage = 2;  // invalid scenario or usage
inline constexpr int kExitAborted = 3;
inline constexpr int kExitInfra = 4;

// argv[0] is "chaosdrill NAME"; the rest are the subcommand's own arguments.
using Handler = int (*)(int argc, char** argv);

struct Command {
  absl::string_view name;
  absl::string_view summary;
  Handler handler;
};

std::span<const Command> Commands();

// Parses; on --help prints it and returns kExitOk, on a usage error prints the error
// with a pointer to --help and returns kExitUsage; returns nullopt when parsing succeeded.
std::optional<int> ParseArgs(CLI::App& app, int argc, char** argv);

int AgentCommand(int argc, char** argv);
int DemoCommand(int argc, char** argv);
int ReferenceCommand(int argc, char** argv);
int DoctorCommand(int argc, char** argv);
int FaultsCommand(int argc, char** argv);
int InjectCommand(int argc, char** argv);
int RevertCommand(int argc, char** argv);
int ReportCommand(int argc, char** argv);
int RunDrillCommand(int argc, char** argv);
int ValidateCommand(int argc, char** argv);
int VersionCommand(int argc, char** argv);

}  // namespace chaosdrill::cli
