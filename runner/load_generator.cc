#include "runner/load_generator.h"

#include <pthread.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runner/analysis.h"

namespace chaosdrill::runner {

using reports::RequestRecord;

class LoadGenerator::InferCall final : public CallPump::Call {
 public:
  InferCall(LoadGenerator& owner, size_t index, bool check)
      : owner_(owner), index(index), check(check) {}
  void Complete() override { owner_.Complete(*this); }

  LoadGenerator& owner_;
  const size_t index;
  const bool check;
  grpc::ClientContext context;
  inference::ModelInferResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<inference::ModelInferResponse>> reader;
};

ArrivalSchedule::ArrivalSchedule(double rate, bool poisson, uint64_t seed, int64_t first_ns)
    : poisson_(poisson),
      interval_ns_(1e9 / rate),
      rng_(seed),
      gap_(rate / 1e9),
      next_ns_(static_cast<double>(first_ns)) {}

int64_t ArrivalSchedule::Next() {
  const int64_t t = static_cast<int64_t>(next_ns_);
  next_ns_ += poisson_ ? gap_(rng_) : interval_ns_;
  return t;
}

LoadGenerator::LoadGenerator(LoadOptions options, Clock& clock, int64_t origin_ns)
    : options_(std::move(options)), clock_(clock), origin_ns_(origin_ns) {}

LoadGenerator::~LoadGenerator() { Stop(); }

absl::Status LoadGenerator::Start(int64_t first_ns) {
  if (started_) return absl::FailedPreconditionError("load generator already started");
  if (!(options_.rate > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("load rate must be positive, got ", options_.rate));
  }
  if (options_.connections < 1) {
    return absl::InvalidArgumentError("load connections must be at least 1");
  }
  auto creds = options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials();
  for (int i = 0; i < options_.connections; ++i) {
    grpc::ChannelArguments args;
    // A private subchannel pool and a distinct argument per channel make each channel
    // its own TCP connection, as `connections` promises.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("chaosdrill.connection", i);
    if (!options_.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options_.tls_server_name);
    }
    stubs_.push_back(inference::GRPCInferenceService::NewStub(
        grpc::CreateCustomChannel(options_.address, creds, args)));
  }
  started_ = true;
  pump_ = std::make_unique<CallPump>("cd-load-recv");
  scheduler_ = std::thread([this, first_ns] {
    pthread_setname_np(pthread_self(), "cd-load-send");
    ScheduleLoop(first_ns);
  });
  return absl::OkStatus();
}

void LoadGenerator::ScheduleLoop(int64_t first_ns) {
  ArrivalSchedule schedule(options_.rate, options_.poisson, options_.seed, first_ns);
  // One request message, re-used: an asynchronous unary call serializes it when it is
  // prepared (CallOpSendMessage::SendMessage), so only `id` changes between calls.
  inference::ModelInferRequest request = options_.request;
  for (size_t k = 0; !stopping_.load(std::memory_order_relaxed); ++k) {
    const int64_t intended = schedule.Next();
    // Sleep in short steps so Stop() is honoured promptly even at very low rates.
    while (Now() < intended && !stopping_.load(std::memory_order_relaxed)) {
      clock_.SleepUntil(origin_ns_ + std::min(intended, Now() + 50'000'000));
    }
    if (stopping_.load(std::memory_order_relaxed)) break;

    bool check = options_.golden_every > 0 && options_.check_answer &&
                 k % static_cast<size_t>(options_.golden_every) == 0;
    auto call = std::make_unique<InferCall>(*this, k, check);
    request.set_id(absl::StrCat(k));
    const int64_t sent = Now();
    call->context.set_deadline(std::chrono::system_clock::now() +
                               absl::ToChronoNanoseconds(options_.timeout));
    {
      std::lock_guard lock(mu_);
      log_.push_back(RequestRecord{.intended_ns = intended, .sent_ns = sent});
      skew_.Record(sent - intended);
    }
    pump_->Started();
    auto& stub = stubs_[k % stubs_.size()];
    call->reader = stub->PrepareAsyncModelInfer(&call->context, request, pump_->cq());
    call->reader->StartCall();
    InferCall* raw = call.release();
    raw->reader->Finish(&raw->response, &raw->status, raw);
  }
}

void LoadGenerator::Complete(const InferCall& call) {
  const int64_t completed = Now();
  uint8_t flags = 0;
  if (call.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    flags |= RequestRecord::kTimeout;
  }
  if (call.check && call.status.ok()) {
    flags |= RequestRecord::kGoldenChecked;
    if (!options_.check_answer(call.response)) flags |= RequestRecord::kGoldenMismatch;
  }
  std::lock_guard lock(mu_);
  RequestRecord& r = log_[call.index];
  r.completed_ns = std::max<int64_t>(completed, 1);  // 0 means in flight
  r.code = static_cast<uint8_t>(call.status.error_code());
  r.flags = flags;
}

void LoadGenerator::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  scheduler_.join();
  pump_->Drain();  // every in-flight call completes by its deadline
}

LoadWindow LoadGenerator::Window(int64_t from_ns, int64_t to_ns, int64_t good_latency_ns) const {
  LoadWindow w;
  LatencyHistogram latency, ok_latency;
  // Binary search for the window's first index, then copy it out in chunks: each lock hold
  // is bounded by kChunk records, and the statistics are computed without the lock.
  constexpr size_t kChunk = 4096;
  std::vector<RequestRecord> chunk;
  chunk.reserve(kChunk);
  size_t next = 0;
  {
    std::lock_guard lock(mu_);
    size_t lo = 0, hi = log_.size();
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (log_[mid].intended_ns < from_ns) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    next = lo;
  }
  bool done = false;
  while (!done) {
    chunk.clear();
    {
      std::lock_guard lock(mu_);
      for (; next < log_.size() && chunk.size() < kChunk; ++next) {
        if (log_[next].intended_ns >= to_ns) {
          done = true;
          break;
        }
        chunk.push_back(log_[next]);
      }
      if (next >= log_.size()) done = true;
    }
    for (const RequestRecord& r : chunk) {
      ++w.sent;
      if (!IsCompleted(r)) continue;
      ++w.completed;
      latency.Record(r.latency_ns());
      if (IsOk(r)) {
        ++w.ok;
        if (r.latency_ns() <= good_latency_ns) ++w.good;
        ok_latency.Record(r.latency_ns());
      } else {
        ++w.errors;
      }
      if (r.flags & RequestRecord::kTimeout) ++w.timeouts;
    }
  }
  w.p99_ns = latency.ValueAtQuantile(0.99);
  w.ok_p50_ns = ok_latency.ValueAtQuantile(0.5);
  w.ok_p99_ns = ok_latency.ValueAtQuantile(0.99);
  return w;
}

std::vector<RequestRecord> LoadGenerator::Log() const {
  std::lock_guard lock(mu_);
  return {log_.begin(), log_.end()};
}

std::vector<RequestRecord> LoadGenerator::Slice(int64_t from_ns, int64_t to_ns) const {
  std::lock_guard lock(mu_);
  auto first = std::partition_point(log_.begin(), log_.end(), [from_ns](const RequestRecord& r) {
    return r.intended_ns < from_ns;
  });
  auto last = std::partition_point(
      first, log_.end(), [to_ns](const RequestRecord& r) { return r.intended_ns < to_ns; });
  return {first, last};
}

LatencyHistogram LoadGenerator::SendSkew() const {
  std::lock_guard lock(mu_);
  return skew_;
}

}  // namespace chaosdrill::runner
