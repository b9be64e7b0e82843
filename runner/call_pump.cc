#include "runner/call_pump.h"

#include <pthread.h>

#include <memory>

namespace chaosdrill::runner {

CallPump::CallPump(std::string thread_name) {
  thread_ = std::thread([this, name = std::move(thread_name)] {
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    Loop();
  });
}

CallPump::~CallPump() { Drain(); }

void CallPump::Started() {
  std::lock_guard lock(mu_);
  ++in_flight_;
}

void CallPump::Loop() {
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    call->Complete();
    call.reset();
    std::lock_guard lock(mu_);
    if (--in_flight_ == 0) idle_.notify_all();
  }
}

void CallPump::Drain() {
  {
    std::unique_lock lock(mu_);
    if (drained_) return;
    drained_ = true;
    idle_.wait(lock, [this] { return in_flight_ == 0; });
  }
  cq_.Shutdown();
  thread_.join();
}

}  // namespace chaosdrill::runner
