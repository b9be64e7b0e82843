#include "injector/fault.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace chaosdrill::injector {
namespace {

constexpr absl::string_view kRollbackFailedUrl = "chaosdrill/injector/rollback-failed";

}  // namespace

absl::Status WithRollbackFailure(const absl::Status& inject_error,
                                 const absl::Status& rollback_error) {
  if (inject_error.ok() || rollback_error.ok()) return inject_error;
  absl::Status out(
      inject_error.code(),
      absl::StrCat(inject_error.message(), "; rollback failed: ", rollback_error.message()));
  inject_error.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  out.SetPayload(kRollbackFailedUrl, absl::Cord(rollback_error.ToString()));
  return out;
}

bool RollbackFailed(const absl::Status& inject_error) {
  return inject_error.GetPayload(kRollbackFailedUrl).has_value();
}

}  // namespace chaosdrill::injector
