#include "scenarios/role.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace chaosdrill::scenarios {
namespace {

constexpr absl::string_view kForms =
    "expected gateway, replica, replica[i], store.primary, store.replica, store.link, sentinel "
    "or sentinel[i]";

}  // namespace

std::string Role::ToString() const {
  std::string base;
  switch (kind) {
    case Kind::kGateway:
      return "gateway";
    case Kind::kStorePrimary:
      return "store.primary";
    case Kind::kStoreReplica:
      return "store.replica";
    case Kind::kStoreLink:
      return "store.link";
    case Kind::kReplica:
      base = "replica";
      break;
    case Kind::kSentinel:
      base = "sentinel";
      break;
  }
  if (index) absl::StrAppend(&base, "[", *index, "]");
  return base;
}

absl::StatusOr<Role> ParseRole(absl::string_view text) {
  if (text == "gateway") return Role{.kind = Role::Kind::kGateway};
  if (text == "store.primary") return Role{.kind = Role::Kind::kStorePrimary};
  if (text == "store.replica") return Role{.kind = Role::Kind::kStoreReplica};
  if (text == "store.link") return Role{.kind = Role::Kind::kStoreLink};
  absl::string_view name = text;
  std::optional<int> index;
  size_t bracket = text.find('[');
  if (bracket != absl::string_view::npos) {
    name = text.substr(0, bracket);
    absl::string_view rest = text.substr(bracket + 1);
    int i = -1;
    if (rest.empty() || rest.back() != ']' ||
        !absl::SimpleAtoi(rest.substr(0, rest.size() - 1), &i) || i < 0 ||
        rest.substr(0, rest.size() - 1).find_first_not_of("0123456789") !=
            absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid role \"", text,
                       "\": the index must be a non-negative integer in brackets, "
                       "e.g. ",
                       name, "[0]"));
    }
    index = i;
  }
  if (name == "replica") return Role{.kind = Role::Kind::kReplica, .index = index};
  if (name == "sentinel") return Role{.kind = Role::Kind::kSentinel, .index = index};
  return absl::InvalidArgumentError(absl::StrCat(kForms, "; found \"", text, "\""));
}

absl::Status CheckRoleExists(const Role& role, int replicas) {
  if (!role.index) return absl::OkStatus();
  int limit = role.kind == Role::Kind::kReplica ? replicas : kReferenceSentinels;
  if (*role.index < limit) return absl::OkStatus();
  return absl::OutOfRangeError(absl::StrCat(
      role.ToString(), " does not exist: the reference service has ", limit, " ",
      role.kind == Role::Kind::kReplica ? "replicas" : "sentinels", " (",
      role.kind == Role::Kind::kReplica ? "replica" : "sentinel", "[0] to ",
      role.kind == Role::Kind::kReplica ? "replica" : "sentinel", "[", limit - 1, "])"));
}

}  // namespace chaosdrill::scenarios
