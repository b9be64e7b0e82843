// TerminationSignals: the serve-until-signalled pattern of RunReplica/RunGateway. The
// constructor blocks SIGTERM and SIGINT in the calling thread, so every thread started
// after it inherits the mask and the signal is taken only by Wait() (sigwait), never by
// a gRPC thread; the destructor restores the previous mask. Construct it before starting
// any server thread.
#pragma once

#include <signal.h>

namespace chaosdrill::reference {

class TerminationSignals {
 public:
  TerminationSignals();
  ~TerminationSignals();
  TerminationSignals(const TerminationSignals&) = delete;
  TerminationSignals& operator=(const TerminationSignals&) = delete;

  // Blocks until SIGTERM or SIGINT arrives; returns the signal number.
  int Wait();

 private:
  sigset_t set_;
  sigset_t old_;
};

}  // namespace chaosdrill::reference
