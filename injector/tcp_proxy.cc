#include "injector/tcp_proxy.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/status.h"

namespace chaosdrill::injector {
namespace {

constexpr uint64_t kWakeTag = ~uint64_t{0};
constexpr uint64_t kListenTag = ~uint64_t{0} - 1;
constexpr size_t kReadBuffer = 64 * 1024;
// Per direction and connection: stop reading (TCP back-pressure) above this.
constexpr size_t kMaxQueued = 256 * 1024;
constexpr int64_t kNanosPerSecond = 1'000'000'000;

int64_t NowNanos() { return MonotonicClock::Get().NowNanos(); }
int64_t ToNanos(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Closes with RST instead of FIN.
void AbortFd(int fd) {
  if (fd < 0) return;
  linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);
}

}  // namespace

struct TcpProxy::Chunk {
  int64_t release = 0;  // not written before this time
  std::string data;
  size_t offset = 0;
  // Slicer settings captured when the chunk was read (slice_size 0: not sliced).
  uint64_t slice_size = 0;
  uint64_t slice_variation = 0;
  int64_t slice_delay = 0;
  uint64_t slice_left = 0;  // bytes left in the slice being written
};

struct TcpProxy::Pipe {
  explicit Pipe(ProxyDirection f) : flow(f) {}
  const ProxyDirection flow;  // kUpstream: client -> upstream
  std::deque<Chunk> queue;
  size_t queued = 0;
  bool eof = false;      // the reading side sent FIN
  bool shut = false;     // we sent FIN on the writing side
  bool blocked = false;  // last send hit EAGAIN
  int64_t last_release = 0;
  int64_t not_before = 0;  // slicer spacing between chunks
  bool limited = false;    // a bandwidth rule applied on the last write
  bool starved = false;    // the last write stopped for want of tokens, with data ready
  double tokens = 0;
  int64_t refill_at = 0;
  uint64_t bytes = 0;  // written
};

struct TcpProxy::RuleState {
  bool affected = false;
  bool at_accept = false;  // first seen when the connection was accepted
  uint64_t bytes_at_start = 0;
  int64_t since = 0;
};

struct TcpProxy::Connection {
  uint64_t id = 0;
  int client = -1;
  int upstream = -1;
  bool connected = false;
  bool client_registered = false, upstream_registered = false;
  uint32_t client_events = 0, upstream_events = 0;
  bool client_hup = false, upstream_hup = false;
  Pipe up{ProxyDirection::kUpstream};
  Pipe down{ProxyDirection::kDownstream};
  std::map<uint64_t, RuleState> rules;
  uint64_t rules_generation = 0;
  bool dead = false;
  bool accepting = false;  // rule states created now count as "at accept"
};

// The rules in force for one connection at one moment, folded per direction
// (index 0: upstream flow, 1: downstream flow).
struct TcpProxy::Applied {
  bool reset = false;
  int64_t close_at = 0;  // blackhole timeout; 0: none
  bool blackhole[2] = {false, false};
  int64_t latency[2] = {0, 0};
  int64_t jitter[2] = {0, 0};
  double rate[2] = {0, 0};  // bytes/s; 0: unlimited
  const ProxyEffect* slicer[2] = {nullptr, nullptr};
};

namespace {
int FlowIndex(ProxyDirection flow) { return flow == ProxyDirection::kUpstream ? 0 : 1; }
}  // namespace

absl::StatusOr<int> OpenProxyListener(const ProxyAddress& address) {
  std::string context = absl::StrCat("proxy listen on ", address.ToString());
  int fd = socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(absl::StrCat(context, ": socket"));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, address.sa(), address.length) != 0) {
    absl::Status status = ErrnoStatus(absl::StrCat(context, ": bind"));
    close(fd);
    return status;
  }
  if (listen(fd, SOMAXCONN) != 0) {
    absl::Status status = ErrnoStatus(absl::StrCat(context, ": listen"));
    close(fd);
    return status;
  }
  return fd;
}

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(const ProxyAddress& listen,
                                                          const ProxyAddress& upstream) {
  ASSIGN_OR_RETURN(int listen_fd, OpenProxyListener(listen));
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    absl::Status status = ErrnoStatus("proxy: epoll_create1");
    close(listen_fd);
    return status;
  }
  int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    absl::Status status = ErrnoStatus("proxy: eventfd");
    close(listen_fd);
    close(epoll_fd);
    return status;
  }
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev);
  ev.data.u64 = kListenTag;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
  std::unique_ptr<TcpProxy> proxy(new TcpProxy(listen, upstream, listen_fd, epoll_fd, wake_fd));
  proxy->thread_ = std::thread([p = proxy.get()] { p->Run(); });
  LogInfo("proxy", absl::StrCat("listening on ", listen.ToString(), " -> ", upstream.ToString()));
  return proxy;
}

TcpProxy::TcpProxy(const ProxyAddress& listen, const ProxyAddress& upstream, int listen_fd,
                   int epoll_fd, int wake_fd)
    : listen_(listen),
      epoll_fd_(epoll_fd),
      wake_fd_(wake_fd),
      upstream_(upstream),
      listen_fd_(listen_fd),
      rng_(std::random_device{}()) {}

TcpProxy::~TcpProxy() {
  stop_.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  for (auto& [id, c] : connections_) {
    if (c->client >= 0) close(c->client);
    if (c->upstream >= 0) close(c->upstream);
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  close(wake_fd_);
  close(epoll_fd_);
}

bool TcpProxy::finished() const {
  absl::MutexLock lock(&mu_);
  return finished_;
}

TcpProxyStats TcpProxy::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

absl::Status TcpProxy::Call(std::function<absl::Status()> fn) {
  auto command = std::make_shared<Command>();
  command->fn = std::move(fn);
  std::future<absl::Status> done = command->done.get_future();
  {
    absl::MutexLock lock(&mu_);
    if (finished_) {
      return absl::FailedPreconditionError(
          absl::StrCat("proxy on ", listen_.ToString(), " has already stopped"));
    }
    commands_.push_back(command);
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  return done.get();
}

absl::Status TcpProxy::SetRules(std::vector<ProxyRule> rules) {
  return Call([this, rules = std::move(rules)]() mutable {
    rules_ = std::move(rules);
    ++rules_generation_;
    return absl::OkStatus();
  });
}

absl::Status TcpProxy::StopListening() {
  return Call([this] {
    if (listen_fd_ >= 0) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
      close(listen_fd_);
      listen_fd_ = -1;
    }
    listening_.store(false);
    LogInfo("proxy", absl::StrCat("stopped listening on ", listen_.ToString(), "; ",
                                  connections_.size(), " connection(s) left to drain"));
    return absl::OkStatus();
  });
}

absl::Status TcpProxy::Listen(const ProxyAddress& upstream) {
  if (listening()) {
    return Call([this, upstream] {
      upstream_ = upstream;
      return absl::OkStatus();
    });
  }
  ASSIGN_OR_RETURN(int fd, OpenProxyListener(listen_));
  absl::Status status = Call([this, fd, upstream] {
    listen_fd_ = fd;
    upstream_ = upstream;
    listen_paused_until_ = 0;
    epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenTag;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
      absl::Status st = ErrnoStatus("proxy: epoll_ctl add listener");
      close(listen_fd_);
      listen_fd_ = -1;
      return st;
    }
    listening_.store(true);
    return absl::OkStatus();
  });
  if (!status.ok() && absl::IsFailedPrecondition(status)) close(fd);  // loop had finished
  return status;
}

void TcpProxy::Run() {
  std::string name = absl::StrCat("cd-proxy:", listen_.port());
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  epoll_event events[64];
  while (!stop_.load()) {
    int timeout_ms = -1;
    int64_t now = NowNanos();
    if (next_deadline_ > 0) {
      int64_t wait = next_deadline_ - now;
      timeout_ms =
          wait <= 0 ? 0 : static_cast<int>(std::min<int64_t>((wait + 999'999) / 1'000'000, 60'000));
    }
    int n = epoll_wait(epoll_fd_, events, 64, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      LogError("proxy", ErrnoStatus("epoll_wait").ToString());
      break;
    }
    now = NowNanos();
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof(count));
        RunCommands();
      } else if (tag == kListenTag) {
        AcceptAll(now);
      } else {
        HandleEvent(tag, events[i].events);
      }
    }
    if (listen_fd_ >= 0 && listen_paused_until_ > 0 && now >= listen_paused_until_) {
      listen_paused_until_ = 0;
      epoll_event ev = {};
      ev.events = EPOLLIN;
      ev.data.u64 = kListenTag;
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
    }
    PumpAll(NowNanos());
    if (listen_fd_ < 0 && connections_.empty()) break;
  }
  std::deque<std::shared_ptr<Command>> pending;
  {
    absl::MutexLock lock(&mu_);
    finished_ = true;
    pending.swap(commands_);
  }
  for (auto& command : pending) {
    command->done.set_value(absl::FailedPreconditionError(
        absl::StrCat("proxy on ", listen_.ToString(), " has already stopped")));
  }
}

void TcpProxy::RunCommands() {
  std::deque<std::shared_ptr<Command>> commands;
  {
    absl::MutexLock lock(&mu_);
    commands.swap(commands_);
  }
  for (auto& command : commands) command->done.set_value(command->fn());
}

void TcpProxy::AcceptAll(int64_t now) {
  while (listen_fd_ >= 0) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // Out of descriptors (EMFILE/ENFILE) or memory: stop accepting for 100 ms rather
      // than spin on a readable listener.
      LogWarn("proxy", ErrnoStatus(absl::StrCat("accept on ", listen_.ToString())).ToString());
      epoll_event ev = {};
      ev.data.u64 = kListenTag;
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
      listen_paused_until_ = now + 100'000'000;
      NoteDeadline(listen_paused_until_);
      return;
    }
    SetNoDelay(fd);
    int up = socket(upstream_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (up >= 0) SetNoDelay(up);
    if (up < 0 || (connect(up, upstream_.sa(), upstream_.length) != 0 && errno != EINPROGRESS)) {
      LogWarn("proxy",
              ErrnoStatus(absl::StrCat("connect to upstream ", upstream_.ToString())).ToString());
      {
        absl::MutexLock lock(&mu_);
        ++stats_.accepted;
        ++stats_.upstream_failures;
      }
      if (up >= 0) close(up);
      AbortFd(fd);
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->id = next_connection_id_++;
    c->client = fd;
    c->upstream = up;
    c->accepting = true;
    Evaluate(*c, now);  // creates the rule states of the rules in force at accept
    c->accepting = false;
    SetInterest(*c, /*upstream_side=*/true, EPOLLOUT);  // connect completion
    SetInterest(*c, /*upstream_side=*/false, EPOLLIN);
    {
      absl::MutexLock lock(&mu_);
      ++stats_.accepted;
      ++stats_.open;
    }
    connections_.emplace(c->id, std::move(c));
  }
}

void TcpProxy::HandleEvent(uint64_t tag, uint32_t events) {
  auto it = connections_.find(tag >> 1);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  if (c.dead) return;
  bool upstream_side = (tag & 1) != 0;
  if (upstream_side && !c.connected) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c.upstream, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      LogWarn("proxy", ErrnoStatus(absl::StrCat("connect to upstream ", upstream_.ToString()),
                                   err != 0 ? err : ECONNREFUSED)
                           .ToString());
      {
        absl::MutexLock lock(&mu_);
        ++stats_.upstream_failures;
      }
      Close(c, /*abort=*/true);
      return;
    }
    if (events & EPOLLOUT) c.connected = true;
    return;
  }
  if (events & EPOLLERR) {
    Close(c, /*abort=*/true);
    return;
  }
  if (events & EPOLLHUP) (upstream_side ? c.upstream_hup : c.client_hup) = true;
}

void TcpProxy::NoteDeadline(int64_t deadline) {
  if (deadline > 0 && (next_deadline_ == 0 || deadline < next_deadline_)) {
    next_deadline_ = deadline;
  }
}

void TcpProxy::PumpAll(int64_t now) {
  next_deadline_ = listen_paused_until_;
  for (auto& [id, c] : connections_) {
    if (!c->dead) Pump(*c, now);
  }
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->second->dead) {
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

TcpProxy::Applied TcpProxy::Evaluate(Connection& c, int64_t now) {
  Applied a;
  uint64_t total = c.up.bytes + c.down.bytes;
  if (c.rules_generation != rules_generation_) {
    // Forget rules that were removed, so state does not grow with churn.
    for (auto it = c.rules.begin(); it != c.rules.end();) {
      bool present = std::any_of(rules_.begin(), rules_.end(),
                                 [&](const ProxyRule& r) { return r.id == it->first; });
      it = present ? std::next(it) : c.rules.erase(it);
    }
    c.rules_generation = rules_generation_;
  }
  for (const ProxyRule& rule : rules_) {
    const ProxyEffect& e = *rule.effect;
    auto [it, inserted] = c.rules.try_emplace(rule.id);
    RuleState& state = it->second;
    if (inserted) {
      state.affected = e.probability >= 1 || std::bernoulli_distribution(e.probability)(rng_);
      state.at_accept = c.accepting;
      state.bytes_at_start = total;
      state.since = now;
    }
    if (!state.affected) continue;
    for (int i = 0; i < 2; ++i) {
      ProxyDirection flow = i == 0 ? ProxyDirection::kUpstream : ProxyDirection::kDownstream;
      if (!DirectionCovers(e.direction, flow)) continue;
      switch (e.type) {
        case ProxyEffect::Type::kLatency:
          a.latency[i] += ToNanos(e.latency);
          a.jitter[i] += ToNanos(e.jitter);
          break;
        case ProxyEffect::Type::kBandwidth:
          if (a.rate[i] == 0 || e.bytes_per_second < a.rate[i]) a.rate[i] = e.bytes_per_second;
          break;
        case ProxyEffect::Type::kBlackhole:
          a.blackhole[i] = true;
          break;
        case ProxyEffect::Type::kSlicer:
          if (a.slicer[i] == nullptr) a.slicer[i] = &e;
          break;
        case ProxyEffect::Type::kReset:
          break;
      }
    }
    if (e.type == ProxyEffect::Type::kBlackhole && e.blackhole_timeout > absl::ZeroDuration()) {
      int64_t close_at = state.since + ToNanos(e.blackhole_timeout);
      if (a.close_at == 0 || close_at < a.close_at) a.close_at = close_at;
    }
    if (e.type == ProxyEffect::Type::kReset) {
      bool target = e.reset_target == ProxyEffect::ResetTarget::kAll ||
                    (e.reset_target == ProxyEffect::ResetTarget::kNew) == state.at_accept;
      if (target && total - state.bytes_at_start >= e.reset_after_bytes) a.reset = true;
    }
  }
  return a;
}

void TcpProxy::Pump(Connection& c, int64_t now) {
  if (c.accepting) return;
  Applied a = Evaluate(c, now);
  if (a.reset) {
    {
      absl::MutexLock lock(&mu_);  // counted before the peer can see the RST
      ++stats_.reset_by_fault;
    }
    Close(c, /*abort=*/true);
    return;
  }
  if (a.close_at > 0 && now >= a.close_at) {
    {
      absl::MutexLock lock(&mu_);
      ++stats_.closed_by_timeout;
    }
    // Unread bytes in a receive buffer turn close() into a RST; the held peer should see
    // a plain close (FIN), so discard what it sent first.
    for (int fd : {c.client, c.upstream}) {
      char discard[4096];
      while (recv(fd, discard, sizeof(discard), MSG_DONTWAIT) > 0) {
      }
    }
    Close(c, /*abort=*/false);
    return;
  }
  NoteDeadline(a.close_at);
  bool can_read[2] = {false, false};
  char buffer[kReadBuffer];
  for (Pipe* pipe : {&c.up, &c.down}) {
    int i = FlowIndex(pipe->flow);
    bool upstream_flow = i == 0;
    int from = upstream_flow ? c.client : c.upstream;
    int to = upstream_flow ? c.upstream : c.client;
    auto readable = [&] {
      return !a.blackhole[i] && !pipe->eof && pipe->queued < kMaxQueued &&
             (upstream_flow || c.connected);
    };
    while (readable()) {
      ssize_t n = recv(from, buffer, std::min(sizeof(buffer), kMaxQueued - pipe->queued), 0);
      if (n > 0) {
        Enqueue(*pipe, a, buffer, static_cast<size_t>(n), now);
      } else if (n == 0) {
        pipe->eof = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      } else {
        Close(c, /*abort=*/true);  // a reset from one peer is passed on to the other
        return;
      }
    }
    if (a.blackhole[i]) pipe->blocked = false;  // not writing: do not wait for EPOLLOUT
    if (!a.blackhole[i] && c.connected) {
      if (!WritePipe(*pipe, to, a, now)) {
        Close(c, /*abort=*/true);
        return;
      }
    }
    // After the write: a full queue that the write drained must ask for EPOLLIN again,
    // or nothing would ever wake the loop for it.
    can_read[i] = readable();
    if (pipe->eof && pipe->queue.empty() && !pipe->shut && c.connected) {
      shutdown(to, SHUT_WR);
      pipe->shut = true;
    }
  }
  if (c.up.shut && c.down.shut) {
    Close(c, /*abort=*/false);
    return;
  }
  UpdateInterest(c, can_read[0], can_read[1]);
}

void TcpProxy::Enqueue(Pipe& pipe, const Applied& a, const char* data, size_t n, int64_t now) {
  int i = FlowIndex(pipe.flow);
  int64_t delay = a.latency[i];
  if (a.jitter[i] > 0) {
    delay += std::uniform_int_distribution<int64_t>(-a.jitter[i], a.jitter[i])(rng_);
  }
  if (delay < 0) delay = 0;
  Chunk chunk;
  chunk.release = std::max(now + delay, pipe.last_release);
  chunk.data.assign(data, n);
  if (const ProxyEffect* s = a.slicer[i]) {
    chunk.slice_size = s->slice_size;
    chunk.slice_variation = s->slice_variation;
    chunk.slice_delay = ToNanos(s->slice_delay);
  }
  pipe.last_release = chunk.release;
  pipe.queued += n;
  pipe.queue.push_back(std::move(chunk));
}

bool TcpProxy::WritePipe(Pipe& pipe, int to, const Applied& a, int64_t now) {
  int i = FlowIndex(pipe.flow);
  double rate = a.rate[i];
  double burst = std::max(rate * 0.02, 1.0);  // 20 ms worth of bytes
  if (rate > 0) {
    if (!pipe.limited) {
      pipe.limited = true;
      pipe.tokens = 0;
      pipe.refill_at = now;
    }
    // An idle pipe may save up one burst. A pipe that was waiting for tokens with data
    // ready keeps everything it earned while the loop was late (a loaded machine wakes
    // us tens of ms late), up to a second's worth, so the long-run rate holds.
    double cap = pipe.starved ? std::max(rate, burst) : burst;
    pipe.tokens = std::min(
        cap, pipe.tokens + rate * static_cast<double>(now - pipe.refill_at) / kNanosPerSecond);
    pipe.refill_at = now;
  } else {
    pipe.limited = false;
  }
  pipe.blocked = false;
  pipe.starved = false;
  while (!pipe.queue.empty()) {
    Chunk& chunk = pipe.queue.front();
    int64_t ready_at = std::max(chunk.release, pipe.not_before);
    if (ready_at > now) {
      NoteDeadline(ready_at);
      return true;
    }
    size_t want = chunk.data.size() - chunk.offset;
    if (chunk.slice_size > 0) {
      if (chunk.slice_left == 0) {
        uint64_t size = chunk.slice_size;
        if (chunk.slice_variation > 0) {
          int64_t v = static_cast<int64_t>(chunk.slice_variation);
          int64_t s =
              static_cast<int64_t>(size) + std::uniform_int_distribution<int64_t>(-v, v)(rng_);
          size = static_cast<uint64_t>(std::max<int64_t>(s, 1));
        }
        chunk.slice_left = size;
      }
      want = std::min<size_t>(want, chunk.slice_left);
    }
    if (pipe.limited) {
      if (pipe.tokens < 1) {
        pipe.starved = true;
        double need = std::min(static_cast<double>(want), std::max(burst / 4, 1.0));
        NoteDeadline(
            now + static_cast<int64_t>(std::ceil((need - pipe.tokens) / rate * kNanosPerSecond)));
        return true;
      }
      want = std::min(want, static_cast<size_t>(pipe.tokens));
    }
    ssize_t n = send(to, chunk.data.data() + chunk.offset, want, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pipe.blocked = true;
        return true;
      }
      return false;
    }
    size_t written = static_cast<size_t>(n);
    chunk.offset += written;
    pipe.queued -= written;
    pipe.bytes += written;
    if (pipe.limited) pipe.tokens -= static_cast<double>(written);
    {
      absl::MutexLock lock(&mu_);
      (i == 0 ? stats_.bytes_upstream : stats_.bytes_downstream) += written;
    }
    if (chunk.slice_size > 0) {
      chunk.slice_left -= std::min<uint64_t>(chunk.slice_left, written);
      if (chunk.slice_left == 0) {
        // The next slice (of this chunk or the next one) waits slice_delay.
        pipe.not_before = now + chunk.slice_delay;
        if (chunk.offset < chunk.data.size()) chunk.release = pipe.not_before;
      }
    }
    if (chunk.offset == chunk.data.size()) pipe.queue.pop_front();
  }
  return true;
}

void TcpProxy::SetInterest(Connection& c, bool upstream_side, uint32_t desired) {
  int fd = upstream_side ? c.upstream : c.client;
  bool& registered = upstream_side ? c.upstream_registered : c.client_registered;
  uint32_t& current = upstream_side ? c.upstream_events : c.client_events;
  bool hup = upstream_side ? c.upstream_hup : c.client_hup;
  epoll_event ev = {};
  ev.events = desired;
  ev.data.u64 = (c.id << 1) | (upstream_side ? 1 : 0);
  if (desired == 0 && hup) {
    // A hung-up socket reports EPOLLHUP whatever the mask; leave it out of the set
    // until there is something to do with it, so the loop does not spin.
    if (registered) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    registered = false;
    current = 0;
    return;
  }
  if (!registered) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    registered = true;
  } else if (current != desired) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  }
  current = desired;
}

void TcpProxy::UpdateInterest(Connection& c, bool up_can_read, bool down_can_read) {
  constexpr uint32_t kIn = EPOLLIN;
  constexpr uint32_t kOut = EPOLLOUT;
  uint32_t client = (up_can_read ? kIn : 0u) | (c.down.blocked ? kOut : 0u);
  uint32_t upstream = !c.connected ? kOut : (down_can_read ? kIn : 0u) | (c.up.blocked ? kOut : 0u);
  SetInterest(c, /*upstream_side=*/false, client);
  SetInterest(c, /*upstream_side=*/true, upstream);
}

void TcpProxy::Close(Connection& c, bool abort) {
  if (c.dead) return;
  c.dead = true;
  if (abort) {
    AbortFd(c.client);
    AbortFd(c.upstream);
  } else {
    close(c.client);
    close(c.upstream);
  }
  c.client = c.upstream = -1;
  absl::MutexLock lock(&mu_);
  --stats_.open;
}

}  // namespace chaosdrill::injector
