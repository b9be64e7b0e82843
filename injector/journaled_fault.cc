#include "injector/journaled_fault.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"

namespace chaosdrill::injector {

absl::StatusOr<std::unique_ptr<JournaledFault>> JournaledFault::Apply(RevertJournal* journal,
                                                                      std::string kind,
                                                                      FaultPtr fault) {
  std::string id = journal->NewId(kind);
  std::unique_ptr<JournaledFault> f(
      new JournaledFault(journal, std::move(id), std::move(kind), std::move(fault)));
  RETURN_IF_ERROR(f->fault_->Prepare());
  RETURN_IF_ERROR(f->journal_->AppendApply(f->id_, f->kind_, f->fault_->RevertRecord()));
  if (absl::Status s = f->fault_->Inject(); !s.ok()) {
    if (RollbackFailed(s)) {
      // Part of the fault may still be applied: the entry stays open, so that
      // `chaosdrill revert` (or the agent's replay on its next start) retries from the record.
      return Annotate(s, absl::StrCat("applying ", f->id_, " (left open in the revert journal ",
                                      f->journal_->path(), "; run `chaosdrill revert`)"));
    }
    // Inject rolled itself back; the entry is closed so replay does not retry it.
    if (absl::Status m = f->journal_->MarkReverted(f->id_); !m.ok()) {
      LogWarn("journal", absl::StrCat("marking failed fault ", f->id_, ": ", m.ToString()));
    }
    return s;
  }
  f->active_ = true;
  f->applied_at_ = absl::Now();
  if (absl::Status s = f->journal_->AppendUpdate(f->id_, f->fault_->RevertRecord()); !s.ok()) {
    // Without the fuller record a crash could not be undone: do not keep the fault.
    if (absl::Status r = f->Revert(); !r.ok()) s = Annotate(s, r.ToString());
    return s;
  }
  return f;
}

JournaledFault::~JournaledFault() {
  if (!active_) return;
  if (absl::Status s = Revert(); !s.ok()) {
    LogError("injector", absl::StrCat("reverting ", id_, " (", Describe(), "): ", s.ToString(),
                                      "; run `chaosdrill revert` to retry"));
  }
}

absl::Status JournaledFault::Revert() {
  if (!active_) return absl::OkStatus();
  RETURN_IF_ERROR(fault_->Revert());
  active_ = false;
  return journal_->MarkReverted(id_);
}

}  // namespace chaosdrill::injector
