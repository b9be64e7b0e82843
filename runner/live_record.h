// Keeps a drill's run record on disk while the drill runs, so a runner that crashes or is
// SIGKILLed still leaves a usable record (marked in_progress, exit.status "running").
// The drill hands snapshots to Offer(); one thread ("cd-record") finishes each (the
// caller's `prepare`, e.g. a partial analysis) and writes it atomically (temp file +
// rename), so a reader never sees half a record. A snapshot offered while a write is in
// progress replaces any not yet written: the file lags by at most one write. WriteFinal()
// writes the finished record after any pending one.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "reports/run_record.h"

namespace chaosdrill::runner {

class LiveRecord {
 public:
  using Prepare = std::function<void(reports::RunRecord&)>;
  LiveRecord(std::string path, Prepare prepare);
  ~LiveRecord();  // writes a pending snapshot, then stops the thread
  LiveRecord(const LiveRecord&) = delete;
  LiveRecord& operator=(const LiveRecord&) = delete;

  const std::string& path() const { return path_; }
  // Queues a snapshot; replaces one not yet picked up.
  void Offer(reports::RunRecord snapshot);
  // Whether a periodic snapshot is worth taking now: at most once a `period`, and never
  // more often than every 4 x the last write's cost (a long drill's record grows; writing
  // it must not take over the machine the drill measures).
  bool Due(absl::Duration period = absl::Seconds(1)) const;
  // Writes `record` after any pending snapshot and waits for it; drops later Offer()s.
  absl::Status WriteFinal(const reports::RunRecord& record);
  // The first error a snapshot write met (OK if none).
  absl::Status error() const;

 private:
  void Main();

  const std::string path_;
  const Prepare prepare_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<reports::RunRecord> pending_;
  bool writing_ = false;
  bool stop_ = false;
  bool final_written_ = false;
  absl::Time last_offer_ = absl::InfinitePast();
  absl::Duration last_cost_ = absl::ZeroDuration();
  absl::Status error_;
  std::thread thread_;
};

}  // namespace chaosdrill::runner
