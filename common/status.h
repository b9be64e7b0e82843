// Status helpers shared by every folder: OS errors become absl::Status values at the
// boundary, with the context of what was being done, and two macros to propagate them.
#pragma once

#include <cerrno>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chaosdrill {

// Maps an errno value to the absl code a caller acts on (ENOENT -> NotFound,
// EPERM/EACCES -> PermissionDenied, ENOMEM/ENOSPC -> ResourceExhausted, EAGAIN/EBUSY ->
// Unavailable, EINVAL -> InvalidArgument, EEXIST -> AlreadyExists, ...).
absl::StatusCode ErrnoToCode(int err);

// "context: strerror(err)" with the mapped code. `err` defaults to the current errno.
absl::Status ErrnoStatus(absl::string_view context, int err = errno);

// Prefixes the message with "context: ", keeping the code and any payloads. OK stays OK.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace chaosdrill

#define CHAOSDRILL_CONCAT_INNER_(a, b) a##b
#define CHAOSDRILL_CONCAT_(a, b) CHAOSDRILL_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                                                              \
  do {                                                                                     \
    if (absl::Status _chaosdrill_st = (expr); !_chaosdrill_st.ok()) return _chaosdrill_st; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, F())` or `ASSIGN_OR_RETURN(x, F())`: unwraps a StatusOr or
// returns its status from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  CHAOSDRILL_ASSIGN_OR_RETURN_IMPL_(CHAOSDRILL_CONCAT_(_chaosdrill_or_, __LINE__), lhs, rexpr)
#define CHAOSDRILL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                      \
  if (!tmp.ok()) return std::move(tmp).status();           \
  lhs = std::move(tmp).value()
