// JournaledFault owns one applied fault and the order of its life, which the agent,
// `chaosdrill inject` and the runner all share: Prepare -> journal "apply" (fsynced) ->
// Inject -> journal "update" (the fuller revert record) ... Revert -> journal "reverted".
// A crash anywhere in between leaves a journal that `chaosdrill revert` (or the agent on
// its next start) can replay.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "injector/fault.h"
#include "injector/journal.h"

namespace chaosdrill::injector {

class JournaledFault {
 public:
  // Journals and applies `fault` of kind `kind`. On error nothing is left applied and the
  // journal says so (the fault is marked reverted once Inject's own rollback is done) --
  // except when Inject reports that its rollback failed (RollbackFailed()): then the entry
  // stays open, so a journal replay retries the revert.
  // `journal` must outlive the returned object.
  static absl::StatusOr<std::unique_ptr<JournaledFault>> Apply(RevertJournal* journal,
                                                               std::string kind, FaultPtr fault);

  // Reverts if still applied (errors are logged; call Revert() to see them).
  ~JournaledFault();
  JournaledFault(const JournaledFault&) = delete;
  JournaledFault& operator=(const JournaledFault&) = delete;

  // Reverts, verifies, and marks the journal entry reverted. Idempotent. On error the
  // entry stays open (a later Revert() or a journal replay retries).
  absl::Status Revert();

  bool active() const { return active_; }
  const std::string& id() const { return id_; }
  const std::string& kind() const { return kind_; }
  std::string Describe() const { return fault_->Describe(); }
  nlohmann::json RevertRecord() const { return fault_->RevertRecord(); }
  absl::Time applied_at() const { return applied_at_; }

 private:
  JournaledFault(RevertJournal* journal, std::string id, std::string kind, FaultPtr fault)
      : journal_(journal), id_(std::move(id)), kind_(std::move(kind)), fault_(std::move(fault)) {}

  RevertJournal* const journal_;
  const std::string id_;
  const std::string kind_;
  const FaultPtr fault_;
  bool active_ = false;
  absl::Time applied_at_;
};

}  // namespace chaosdrill::injector
