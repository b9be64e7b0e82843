#include "common/status.h"

#include <catch2/catch.hpp>
#include <string>

namespace chaosdrill {
namespace {

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(auto quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int x) {
  RETURN_IF_ERROR(Half(x).status());
  return absl::OkStatus();
}

TEST_CASE("errno values map to the code a caller acts on", "[common]") {
  CHECK(ErrnoToCode(ENOENT) == absl::StatusCode::kNotFound);
  CHECK(ErrnoToCode(EPERM) == absl::StatusCode::kPermissionDenied);
  CHECK(ErrnoToCode(EACCES) == absl::StatusCode::kPermissionDenied);
  CHECK(ErrnoToCode(ENOMEM) == absl::StatusCode::kResourceExhausted);
  CHECK(ErrnoToCode(EAGAIN) == absl::StatusCode::kUnavailable);
  CHECK(ErrnoToCode(EEXIST) == absl::StatusCode::kAlreadyExists);
  absl::Status s = ErrnoStatus("opening /nonexistent", ENOENT);
  CHECK(s.code() == absl::StatusCode::kNotFound);
  CHECK(std::string(s.message()) == "opening /nonexistent: No such file or directory");
}

TEST_CASE("status macros propagate the first error", "[common]") {
  CHECK(*Quarter(8) == 2);
  CHECK(Quarter(6).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(CheckEven(4).ok());
  CHECK_FALSE(CheckEven(3).ok());
  CHECK(Annotate(absl::NotFoundError("no eth9"), "applying netem").message() ==
        "applying netem: no eth9");
  CHECK(Annotate(absl::OkStatus(), "ignored").ok());
}

}  // namespace
}  // namespace chaosdrill
