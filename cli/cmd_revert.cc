// `chaosdrill revert`: replays a revert journal, undoing every fault whose holder died
// without reverting it, and prints what it did.
#include <cstdio>
#include <string>

#include "cli/command.h"
#include "injector/fault_registry.h"
#include "injector/journal.h"

namespace chaosdrill::cli {

int RevertCommand(int argc, char** argv) {
  CLI::App app{
      "Undo faults left applied by a crashed `chaosdrill inject` or agent.\n\n"
      "Reads the revert journal and reverts, from the records alone, every fault not\n"
      "marked reverted, newest first; each is verified and then marked reverted. Faults\n"
      "whose holder process is still running are left to it unless --force.\n"
      "Safe to run any number of times.\n\n"
      "Examples:\n"
      "  chaosdrill revert\n"
      "  chaosdrill revert --journal /tmp/drill/journal\n\n"
      "Exit codes: 0 nothing left open (or only faults of live holders); 4 a revert\n"
      "failed (the fault stays in the journal; fix the cause and run again).",
      argv[0]};
  std::string journal_path;
  bool force = false;
  app.add_option("--journal", journal_path,
                 "Revert journal (default " + injector::RevertJournal::DefaultPath() + ")");
  app.add_flag("--force", force, "Also revert faults whose holder process is still running");
  if (auto rc = ParseArgs(app, argc, argv)) return *rc;

  auto journal = injector::RevertJournal::Open(
      journal_path.empty() ? injector::RevertJournal::DefaultPath() : journal_path);
  if (!journal.ok()) {
    std::fprintf(stderr, "revert: %s\n", journal.status().ToString().c_str());
    return kExitInfra;
  }
  auto outcomes = (*journal)->Replay(injector::FaultRegistry::Global(), force);
  if (!outcomes.ok()) {
    std::fprintf(stderr, "revert: %s\n", outcomes.status().ToString().c_str());
    return kExitInfra;
  }
  bool ok = true;
  int reverted = 0;
  for (const injector::ReplayOutcome& o : *outcomes) {
    if (o.skipped) {
      std::printf("skipped  %s (%s): holder pid %d is still running (--force to revert)\n",
                  o.id.c_str(), o.kind.c_str(), o.holder_pid);
    } else if (o.status.ok()) {
      std::printf("reverted %s (%s)\n", o.id.c_str(), o.kind.c_str());
      ++reverted;
    } else {
      std::printf("FAILED   %s (%s): %s\n", o.id.c_str(), o.kind.c_str(),
                  o.status.ToString().c_str());
      ok = false;
    }
  }
  if (outcomes->empty()) {
    std::printf("nothing to revert in %s\n", (*journal)->path().c_str());
  } else {
    std::printf("%d fault(s) reverted from %s\n", reverted, (*journal)->path().c_str());
  }
  return ok ? kExitOk : kExitInfra;
}

}  // namespace chaosdrill::cli
