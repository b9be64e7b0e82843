// AcceptLoop: one named thread that accepts connections on a listening socket and hands
// each, in turn, to a handler (then closes it), until the loop is destroyed. Shared by the
// reference replica's admin socket and the Prometheus endpoints of the reference service
// and of the agent: small local channels where one connection at a time is enough. A wake
// pipe ends the thread's poll on destruction.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace chaosdrill {

class AcceptLoop {
 public:
  using Handler = std::function<void(int connection_fd)>;

  // Takes ownership of `listen_fd` (a bound, listening socket): it is closed on error too.
  // `thread_name` is at most 15 characters (pthread_setname_np).
  static absl::StatusOr<std::unique_ptr<AcceptLoop>> Start(int listen_fd, std::string thread_name,
                                                           Handler handler);
  ~AcceptLoop();  // wakes and joins the thread, closes the sockets
  AcceptLoop(const AcceptLoop&) = delete;
  AcceptLoop& operator=(const AcceptLoop&) = delete;

 private:
  AcceptLoop(int listen_fd, int wake_read, int wake_write, std::string thread_name,
             Handler handler);
  void Serve();

  const int listen_fd_;
  const int wake_read_;
  const int wake_write_;
  const Handler handler_;
  std::thread thread_;
};

// Sets receive and send timeouts on a connection, so a stalled peer cannot hold the loop.
void SetIoTimeouts(int fd, int seconds);
// Sends all of `data` (MSG_NOSIGNAL); false when the peer went away or timed out.
bool SendAll(int fd, const std::string& data);

}  // namespace chaosdrill
