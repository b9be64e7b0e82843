#include "runner/live_record.h"

#include <pthread.h>

#include <algorithm>

#include "reports/run_record_json.h"

namespace chaosdrill::runner {

LiveRecord::LiveRecord(std::string path, Prepare prepare)
    : path_(std::move(path)), prepare_(std::move(prepare)) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "cd-record");
    Main();
  });
}

LiveRecord::~LiveRecord() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LiveRecord::Offer(reports::RunRecord snapshot) {
  {
    std::lock_guard lock(mu_);
    if (final_written_) return;
    pending_ = std::move(snapshot);
    last_offer_ = absl::Now();
  }
  cv_.notify_all();
}

bool LiveRecord::Due(absl::Duration period) const {
  std::lock_guard lock(mu_);
  return !final_written_ && absl::Now() - last_offer_ >= std::max(period, 4 * last_cost_);
}

void LiveRecord::Main() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || pending_.has_value(); });
    if (!pending_) return;  // stopping, nothing left to write
    reports::RunRecord snapshot = std::move(*pending_);
    pending_.reset();
    writing_ = true;
    lock.unlock();
    const absl::Time start = absl::Now();
    if (prepare_) prepare_(snapshot);
    absl::Status st = reports::WriteRunRecord(snapshot, path_, /*pretty=*/false);
    const absl::Duration cost = absl::Now() - start;
    lock.lock();
    writing_ = false;
    last_cost_ = cost;
    if (!st.ok() && error_.ok()) error_ = st;
    cv_.notify_all();
  }
}

absl::Status LiveRecord::WriteFinal(const reports::RunRecord& record) {
  {
    std::unique_lock lock(mu_);
    final_written_ = true;
    pending_.reset();  // superseded by the final record
    cv_.wait(lock, [this] { return !writing_; });
  }
  return reports::WriteRunRecord(record, path_);
}

absl::Status LiveRecord::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

}  // namespace chaosdrill::runner
