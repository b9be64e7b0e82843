// A fault kind registered only in the agent's test binaries: "test.pause" SIGSTOPs the
// process given by `pid` and SIGCONTs it on revert (verified through /proc/PID/stat). It
// gives the agent tests a real, cheap, observable witness (a stopped `sleep`) that does not
// depend on root or on another fault kind's implementation.
#pragma once

#include <sys/types.h>

namespace chaosdrill::testing {

// Adds "test.pause" and "testslow.inject" (an Inject that sleeps `ms`, in a kind family of
// its own) to FaultRegistry::Global(). Idempotent.
void RegisterTestPauseFault();

// The state letter of /proc/PID/stat ('S', 'T', ...), or '?' when unreadable.
char ProcessState(pid_t pid);

}  // namespace chaosdrill::testing
