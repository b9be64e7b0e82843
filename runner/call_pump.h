// A completion queue with the one thread that completes the asynchronous gRPC calls made
// on it, and a drain that waits for every started call. Shared by the open-loop senders
// (load generator, session writer): they decide when to send, the pump finishes.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"

namespace chaosdrill::runner {

class CallPump {
 public:
  // One in-flight call; its address is the tag given to Finish(). Complete() runs on the
  // pump's thread once the call has finished, then the pump deletes it.
  class Call {
   public:
    virtual ~Call() = default;
    virtual void Complete() = 0;
  };

  explicit CallPump(std::string thread_name);
  ~CallPump();  // Drain()s
  CallPump(const CallPump&) = delete;
  CallPump& operator=(const CallPump&) = delete;

  grpc::CompletionQueue* cq() { return &cq_; }
  // Counts one more call in flight; call before Finish(..., tag = the Call*).
  void Started();
  // Waits until every started call has completed (each finishes by its deadline), then
  // shuts the queue down and joins the thread. Idempotent; no Started() after it.
  void Drain();

 private:
  void Loop();

  grpc::CompletionQueue cq_;
  std::mutex mu_;
  std::condition_variable idle_;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool drained_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace chaosdrill::runner
