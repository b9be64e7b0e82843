#include "runner/session_writer.h"

#include <pthread.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/quantity.h"
#include "runner/load_generator.h"

namespace chaosdrill::runner {

class SessionWriter::AppendCall final : public CallPump::Call {
 public:
  AppendCall(SessionWriter& owner, size_t index) : owner_(owner), index(index) {}
  void Complete() override { owner_.Complete(*this); }

  SessionWriter& owner_;
  const size_t index;
  grpc::ClientContext context;
  reference::v1::AppendResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<reference::v1::AppendResponse>> reader;
};

SessionWriter::SessionWriter(WriteOptions options, Clock& clock, int64_t origin_ns)
    : options_(std::move(options)), clock_(clock), origin_ns_(origin_ns) {}

SessionWriter::~SessionWriter() { Stop(); }

std::string SessionWriter::SessionName(int i) const {
  return absl::StrCat(options_.session_prefix, "-", i);
}

std::string SessionWriter::Payload(const std::string& session, int64_t seq, size_t size) {
  std::string p = absl::StrCat(session, ":", seq, ":");
  p.resize(std::max(size, p.size()), '.');
  return p;
}

absl::Status SessionWriter::Start(int64_t first_ns) {
  if (started_) return absl::FailedPreconditionError("session writer already started");
  if (!(options_.rate > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("write rate must be positive, got ", options_.rate));
  }
  if (options_.sessions < 1) return absl::InvalidArgumentError("writes need at least 1 session");
  auto creds = options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (!options_.tls_server_name.empty()) args.SetSslTargetNameOverride(options_.tls_server_name);
  stub_ = reference::v1::SessionService::NewStub(
      grpc::CreateCustomChannel(options_.address, creds, args));
  pump_ = std::make_unique<CallPump>("cd-write-recv");
  started_ = true;
  sender_ = std::thread([this, first_ns] {
    pthread_setname_np(pthread_self(), "cd-write-send");
    Loop(first_ns);
  });
  return absl::OkStatus();
}

void SessionWriter::Loop(int64_t first_ns) {
  ArrivalSchedule schedule(options_.rate, /*poisson=*/false, 0, first_ns);
  std::vector<int64_t> next_seq(options_.sessions, 1);
  for (size_t k = 0; !stopping_.load(std::memory_order_relaxed); ++k) {
    const int64_t intended = schedule.Next();
    while (Now() < intended && !stopping_.load(std::memory_order_relaxed)) {
      clock_.SleepUntil(origin_ns_ + std::min(intended, Now() + 50'000'000));
    }
    if (stopping_.load(std::memory_order_relaxed)) break;
    const int s = static_cast<int>(k % options_.sessions);
    reference::v1::AppendRequest request;
    request.set_session(SessionName(s));
    request.set_seq(next_seq[s]++);
    request.set_payload(Payload(request.session(), request.seq(), options_.payload_size));

    auto call = std::make_unique<AppendCall>(*this, k);
    call->context.set_deadline(std::chrono::system_clock::now() +
                               absl::ToChronoNanoseconds(options_.timeout));
    {
      std::lock_guard lock(mu_);
      log_.push_back(reports::WriteRecord{.session = request.session(),
                                          .seq = static_cast<int64_t>(request.seq()),
                                          .sent_ns = Now()});
    }
    pump_->Started();
    call->reader = stub_->PrepareAsyncAppend(&call->context, request, pump_->cq());
    call->reader->StartCall();
    AppendCall* raw = call.release();
    raw->reader->Finish(&raw->response, &raw->status, raw);
  }
}

void SessionWriter::Complete(const AppendCall& call) {
  if (!call.status.ok()) return;  // not acknowledged: ack_ns stays empty
  const int64_t acked = Now();
  std::lock_guard lock(mu_);
  log_[call.index].ack_ns = acked;
}

void SessionWriter::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  sender_.join();
  pump_->Drain();
}

std::vector<reports::WriteRecord> SessionWriter::Log() const {
  std::lock_guard lock(mu_);
  return log_;
}

absl::StatusOr<SessionWriter::ReadBackResult> SessionWriter::ReadBack(
    absl::Duration timeout, const std::function<bool()>& cancelled) const {
  if (!stub_) return absl::FailedPreconditionError("session writer was never started");
  // A per-try deadline well under the whole timeout, so a read stuck on a dead primary is
  // retried (the gateway follows the sentinels' failover) instead of using up the budget.
  constexpr absl::Duration kTry = absl::Seconds(2);
  constexpr absl::Duration kPoll = absl::Milliseconds(50);
  const absl::Time deadline = absl::Now() + timeout;
  ReadBackResult out;
  for (int s = 0; s < options_.sessions; ++s) {
    reference::v1::ReadRequest request;
    request.set_session(SessionName(s));
    reference::v1::ReadResponse response;
    absl::Duration backoff = absl::Milliseconds(100);
    for (int attempt = 0;; ++attempt) {
      if (cancelled && cancelled()) {
        return absl::CancelledError(
            absl::StrCat("reading back session ", request.session(), ": interrupted"));
      }
      grpc::ClientContext context;
      const absl::Time try_end = std::min(deadline, absl::Now() + kTry);
      context.set_deadline(absl::ToChronoTime(try_end));
      // The async API, so a cancellation is honoured within kPoll, not at the deadline.
      grpc::CompletionQueue cq;
      auto reader = stub_->AsyncRead(&context, request, &cq);
      grpc::Status status;
      response.Clear();
      reader->Finish(&response, &status, reinterpret_cast<void*>(1));
      void* tag = nullptr;
      bool ok = false;
      bool cancelling = false;
      while (true) {
        auto next = cq.AsyncNext(&tag, &ok, absl::ToChronoTime(absl::Now() + kPoll));
        if (next == grpc::CompletionQueue::GOT_EVENT) break;
        if (!cancelling && cancelled && cancelled()) {
          context.TryCancel();
          cancelling = true;
        }
      }
      cq.Shutdown();
      while (cq.Next(&tag, &ok)) {
      }
      if (cancelling) {
        return absl::CancelledError(
            absl::StrCat("reading back session ", request.session(), ": interrupted"));
      }
      if (status.ok()) break;
      const grpc::StatusCode code = status.error_code();
      const bool transient =
          code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
          code == grpc::StatusCode::ABORTED || code == grpc::StatusCode::RESOURCE_EXHAUSTED;
      const absl::Time now = absl::Now();
      if (!transient || now + backoff >= deadline) {
        return absl::UnavailableError(
            absl::StrCat("reading back session ", request.session(), " from ", options_.address,
                         transient ? absl::StrCat(" (", attempt + 1, " tries over ",
                                                  DurationToString(timeout - (deadline - now)), ")")
                                   : "",
                         ": ", status.error_message()));
      }
      ++out.retries;
      // Sleep in short steps so an interrupt is honoured promptly.
      const absl::Time wake = now + backoff;
      while (absl::Now() < wake && !(cancelled && cancelled())) {
        absl::SleepFor(std::min(kPoll, wake - absl::Now()));
      }
      backoff = std::min(backoff * 2, absl::Seconds(1));
    }
    std::vector<int64_t>& seqs = out.sessions[request.session()];
    for (const auto& entry : response.entries()) {
      const int64_t seq = static_cast<int64_t>(entry.seq());
      if (entry.payload() == Payload(request.session(), seq, options_.payload_size)) {
        seqs.push_back(seq);
      } else {
        out.corrupt[request.session()].push_back(seq);
      }
    }
  }
  return out;
}

}  // namespace chaosdrill::runner
