// `chaosdrill inject KIND --set k=v ...`: journals and applies one fault on this node,
// holds it for --duration or until SIGINT/SIGTERM/SIGHUP (read from a signalfd, so no
// work happens in a signal handler), reverts it and exits 0. If the fault cannot be
// applied it exits non-zero with the reason and nothing is left applied.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/command.h"
#include "common/quantity.h"
#include "injector/fault_registry.h"
#include "injector/journal.h"
#include "injector/journaled_fault.h"

namespace chaosdrill::cli {
namespace {

int ExitCodeFor(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitInfra;
}

// Waits until `hold` passes (forever if nullopt) or a signal arrives on `sfd`. Returns the
// signal number, or 0 when the time is up.
int WaitForSignalOrTimeout(int sfd, std::optional<absl::Duration> hold) {
  absl::Time deadline = hold ? absl::Now() + *hold : absl::InfiniteFuture();
  while (true) {
    int timeout_ms = -1;
    if (hold) {
      int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (left <= 0) return 0;
      timeout_ms = static_cast<int>(std::min<int64_t>(left, 1 << 30));
    }
    pollfd p{sfd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return SIGTERM;  // cannot wait: revert now rather than hold blindly
    if (r == 0) continue;       // re-check the deadline
    signalfd_siginfo info;
    if (read(sfd, &info, sizeof(info)) == sizeof(info)) return static_cast<int>(info.ssi_signo);
  }
}

}  // namespace

int InjectCommand(int argc, char** argv) {
  CLI::App app{
      "Apply one fault on this node, hold it, then revert it.\n\n"
      "The fault is journaled (fsynced) before it is applied; it is held for --duration or\n"
      "until Ctrl-C / SIGTERM, then reverted and verified, and the command exits 0. If the\n"
      "fault cannot be applied, the command says why and exits non-zero with nothing\n"
      "left applied. If this process is killed, `chaosdrill revert` undoes the fault from\n"
      "the journal. `chaosdrill faults KIND` lists a kind's parameters.\n\n"
      "Examples:\n"
      "  chaosdrill inject process.pause --set pid=4242 --duration 30s\n"
      "  chaosdrill inject process.kill --set cmdline='replica --port 81' --set count=1\n"
      "  chaosdrill inject stress.cpu --set cores=2 --set load=50% --duration 1m\n"
      "  chaosdrill inject stress.memory --set size=25% --duration 2m\n\n"
      "Exit codes: 0 applied and reverted; 2 bad kind or parameter; 4 could not apply or\n"
      "revert (the message says what to do).",
      argv[0]};
  std::string kind;
  std::vector<std::string> sets;
  std::string duration_text;
  std::string journal_path;
  app.add_option("KIND", kind, "Fault kind, e.g. process.pause (see `chaosdrill faults`)")
      ->required();
  app.add_option("--set", sets, "Parameter KEY=VALUE (repeatable)");
  app.add_option("--duration", duration_text,
                 "How long to hold the fault (250ms, 30s, 2m); default: until Ctrl-C");
  app.add_option("--journal", journal_path,
                 "Revert journal (default " + injector::RevertJournal::DefaultPath() + ")");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;

  auto factory = injector::FaultRegistry::Global().Find(kind);
  if (!factory.ok()) {
    std::fprintf(stderr, "inject: %s\n", std::string(factory.status().message()).c_str());
    return kExitUsage;
  }
  FaultSpec spec;
  spec.kind = kind;
  for (const std::string& s : sets) {
    size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "inject: --set \"%s\": expected KEY=VALUE\n", s.c_str());
      return kExitUsage;
    }
    spec.params[s.substr(0, eq)] = s.substr(eq + 1);
  }
  if (!duration_text.empty()) {
    auto d = ParseDuration(duration_text);
    if (!d.ok()) {
      std::fprintf(stderr, "inject: --duration: %s\n", std::string(d.status().message()).c_str());
      return kExitUsage;
    }
    spec.duration = *d;
  }
  const bool holds = (*factory)->info().takes_duration;
  auto fault = (*factory)->Create(spec);
  if (!fault.ok()) {
    std::fprintf(stderr, "inject: %s\n", fault.status().ToString().c_str());
    return ExitCodeFor(fault.status());
  }
  injector::PreflightResult pre = (*factory)->Preflight();
  if (!pre.available) {
    std::fprintf(stderr, "inject: %s is not available on this node: %s\n  fix: %s\n", kind.c_str(),
                 pre.reason.c_str(), pre.fix.c_str());
    return kExitInfra;
  }

  // Block the stop signals before anything is forked, and read them from a signalfd.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop_signals, sig);
  if (sigprocmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
    std::perror("inject: blocking signals");
    return kExitInfra;
  }
  int sfd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (sfd < 0) {
    std::perror("inject: signalfd");
    return kExitInfra;
  }

  auto journal = injector::RevertJournal::Open(
      journal_path.empty() ? injector::RevertJournal::DefaultPath() : journal_path);
  if (!journal.ok()) {
    std::fprintf(stderr, "inject: %s\n", journal.status().ToString().c_str());
    return kExitInfra;
  }
  auto applied = injector::JournaledFault::Apply(journal->get(), kind, std::move(*fault));
  if (!applied.ok()) {
    std::fprintf(stderr, "inject: could not apply %s: %s\n", kind.c_str(),
                 applied.status().ToString().c_str());
    return ExitCodeFor(applied.status());
  }
  injector::JournaledFault& f = **applied;
  if (!holds) {
    std::printf("applied %s: %s\n", f.id().c_str(), f.Describe().c_str());
    absl::Status s = f.Revert();  // closes the journal entry; nothing to undo
    return s.ok() ? kExitOk : kExitInfra;
  }
  std::printf("applied %s: %s; holding %s (Ctrl-C reverts now)\n", f.id().c_str(),
              f.Describe().c_str(),
              spec.duration ? DurationToString(*spec.duration).c_str() : "until Ctrl-C");
  std::fflush(stdout);
  int sig = WaitForSignalOrTimeout(sfd, spec.duration);
  if (sig != 0) std::printf("signal %d: reverting\n", sig);
  absl::Status s = f.Revert();
  close(sfd);
  if (!s.ok()) {
    std::fprintf(stderr,
                 "inject: revert of %s failed: %s\n  the journal %s still holds it; run "
                 "`chaosdrill revert --journal %s`\n",
                 f.id().c_str(), s.ToString().c_str(), (*journal)->path().c_str(),
                 (*journal)->path().c_str());
    return kExitInfra;
  }
  std::printf("reverted %s\n", f.id().c_str());
  return kExitOk;
}

}  // namespace chaosdrill::cli
