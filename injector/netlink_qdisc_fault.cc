#include "injector/netlink_qdisc_fault.h"

#include <net/if.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace chaosdrill::injector {
namespace {

const QdiscInfo* FindOurs(const std::vector<QdiscInfo>& qdiscs, const QdiscPlacement& where) {
  for (const QdiscInfo& q : qdiscs) {
    if (q.handle == where.handle && q.kind == where.qdisc_kind) return &q;
  }
  return nullptr;
}

}  // namespace

bool HasCapNetAdmin() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "CapEff:")) {
      uint64_t caps = 0;
      std::string hex(absl::StripAsciiWhitespace(line.substr(7)));
      if (!absl::SimpleHexAtoi(hex, &caps)) return geteuid() == 0;
      return (caps >> 12) & 1;  // CAP_NET_ADMIN
    }
  }
  return geteuid() == 0;
}

nlohmann::json QdiscPlacement::ToRecord() const {
  return nlohmann::json{{"kind", fault_kind},
                        {"qdisc", qdisc_kind},
                        {"interface", interface},
                        {"parent", TcHandleToString(parent)},
                        {"handle", TcHandleToString(handle)}};
}

absl::StatusOr<QdiscPlacement> QdiscPlacement::FromRecord(const nlohmann::json& record,
                                                          absl::string_view expected_kind,
                                                          absl::string_view expected_qdisc) {
  QdiscPlacement where;
  try {
    where.fault_kind = record.at("kind").get<std::string>();
    where.qdisc_kind = record.at("qdisc").get<std::string>();
    where.interface = record.at("interface").get<std::string>();
    ASSIGN_OR_RETURN(where.parent, ParseTcHandle(record.at("parent").get<std::string>()));
    ASSIGN_OR_RETURN(where.handle, ParseTcHandle(record.at("handle").get<std::string>()));
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(expected_kind, " revert record: ", e.what(), " in ", record.dump()));
  }
  if (where.fault_kind != expected_kind || where.qdisc_kind != expected_qdisc) {
    return absl::InvalidArgumentError(
        absl::StrCat("revert record is not a ", expected_kind, " record: ", record.dump()));
  }
  return where;
}

absl::Status RevertQdisc(NetlinkClient& client, const QdiscPlacement& where) {
  const std::string context = absl::StrCat("reverting ", where.qdisc_kind, " ",
                                           TcHandleToString(where.handle), " on ", where.interface);
  absl::StatusOr<int> ifindex = client.InterfaceIndex(where.interface);
  if (absl::IsNotFound(ifindex.status())) return absl::OkStatus();  // gone with the link
  if (!ifindex.ok()) return Annotate(ifindex.status(), context);
  absl::StatusOr<std::vector<QdiscInfo>> qdiscs = client.ListQdiscs(*ifindex);
  if (!qdiscs.ok()) return Annotate(qdiscs.status(), context);
  const QdiscInfo* ours = FindOurs(*qdiscs, where);
  if (ours == nullptr) return absl::OkStatus();
  absl::Status st = client.DeleteQdisc(*ifindex, ours->parent, ours->handle);
  if (!st.ok() && !absl::IsNotFound(st)) {
    if (absl::IsPermissionDenied(st)) {
      st = absl::PermissionDeniedError(absl::StrCat(st.message(), " (needs root: CAP_NET_ADMIN)"));
    }
    return Annotate(st, context);
  }
  qdiscs = client.ListQdiscs(*ifindex);
  if (!qdiscs.ok()) return Annotate(qdiscs.status(), absl::StrCat(context, ": verifying"));
  if (FindOurs(*qdiscs, where) != nullptr) {
    return absl::InternalError(absl::StrCat(context, ": still present after deleting it"));
  }
  return absl::OkStatus();
}

QdiscFault::QdiscFault(QdiscPlacement where, QdiscRequest request, std::string description,
                       std::unique_ptr<NetlinkClient> client)
    : where_(std::move(where)),
      request_(std::move(request)),
      description_(std::move(description)),
      client_(std::move(client)) {}

absl::Status QdiscFault::Inject() {
  return Annotate(InjectOnce(),
                  absl::StrCat("applying ", where_.qdisc_kind, " to ", where_.interface));
}

absl::Status QdiscFault::InjectOnce() {
  ASSIGN_OR_RETURN(int ifindex, client_->InterfaceIndex(where_.interface));
  ASSIGN_OR_RETURN(std::vector<QdiscInfo> qdiscs, client_->ListQdiscs(ifindex));
  for (const QdiscInfo& q : qdiscs) {
    if (q.handle == where_.handle) {
      return absl::AlreadyExistsError(absl::StrCat(
          "a chaosdrill qdisc (", q.kind, " ", TcHandleToString(q.handle),
          ") is already there: another fault holds it, or a crashed run left it (chaosdrill "
          "revert removes it)"));
    }
  }
  if (where_.parent == kTcRoot) {
    for (const QdiscInfo& q : qdiscs) {
      // The kernel's default root qdisc (noqueue, pfifo_fast, mq, fq_codel) has handle 0;
      // it comes back by itself when ours is deleted. Anything else was configured by
      // somebody and is not ours to replace.
      if (q.parent == kTcRoot && q.handle != 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the interface already has a root qdisc (", q.kind, " ", TcHandleToString(q.handle),
            ") that chaosdrill did not create; refusing to replace it (set parent to one of its "
            "classes to attach under it)"));
      }
    }
  }
  request_.ifindex = ifindex;
  request_.parent = where_.parent;
  request_.handle = where_.handle;
  absl::Status st = client_->AddQdisc(request_);
  if (!st.ok()) {
    std::string why;
    if (absl::IsNotFound(st) && !KernelHasQdiscKind(where_.qdisc_kind, &why)) {
      return absl::FailedPreconditionError(why);
    }
    if (absl::IsNotFound(st) && where_.parent != kTcRoot) {
      return absl::NotFoundError(absl::StrCat("parent ", TcHandleToString(where_.parent),
                                              " not found (", st.message(), ")"));
    }
    if (absl::IsPermissionDenied(st)) {
      return absl::PermissionDeniedError(
          absl::StrCat(st.message(), ": changing qdiscs needs root (CAP_NET_ADMIN)"));
    }
    if (absl::IsAlreadyExists(st)) {
      return absl::AlreadyExistsError(absl::StrCat("another qdisc is already at parent ",
                                                   TcHandleToString(where_.parent), " (",
                                                   st.message(), "); refusing to replace it"));
    }
    return st;
  }
  absl::StatusOr<std::vector<QdiscInfo>> after = client_->ListQdiscs(ifindex);
  if (!after.ok() || FindOurs(*after, where_) == nullptr) {
    absl::Status rollback = RevertQdisc(*client_, where_);
    return WithRollbackFailure(
        absl::InternalError(
            absl::StrCat("the kernel accepted the qdisc but it is not there when re-read",
                         after.ok() ? "" : absl::StrCat(" (", after.status().message(), ")"))),
        rollback);
  }
  return absl::OkStatus();
}

absl::Status QdiscFault::Revert() { return RevertQdisc(*client_, where_); }

nlohmann::json QdiscFault::RevertRecord() const { return where_.ToRecord(); }

absl::Status CheckSpecParams(const FaultSpec& spec, const FaultKindInfo& info) {
  for (const auto& [name, value] : spec.params) {
    const ParamSpec* p = info.Find(name);
    if (p == nullptr) {
      std::string known;
      for (const ParamSpec& q : info.params)
        absl::StrAppend(&known, known.empty() ? "" : ", ", q.name);
      return absl::InvalidArgumentError(
          absl::StrCat(info.kind, ": unknown parameter '", name, "' (known: ", known, ")"));
    }
    if (absl::Status st = ValidateParamValue(*p, value); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(info.kind, ": ", name, ": ", st.message()));
    }
  }
  for (const ParamSpec& p : info.params) {
    if (p.required && !spec.Get(p.name).has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(info.kind, ": ", p.name, ": required (", p.doc, ")"));
    }
  }
  return absl::OkStatus();
}

std::string ParamOrDefault(const FaultSpec& spec, const FaultKindInfo& info,
                           absl::string_view name) {
  if (std::optional<std::string> v = spec.Get(name)) return *v;
  const ParamSpec* p = info.Find(name);
  return p != nullptr ? p->default_value : "";
}

absl::Status ValidateInterfaceName(absl::string_view name) {
  if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == ".." ||
      absl::StrContains(name, "/") || absl::StrContains(name, " ")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "interface: '", name, "' is not an interface name (1 to 15 characters, no '/' or space)"));
  }
  return absl::OkStatus();
}

PreflightResult QdiscPreflight(absl::string_view qdisc_kind) {
  PreflightResult r;
  if (!HasCapNetAdmin()) {
    r.reason = "not root: changing qdiscs needs CAP_NET_ADMIN";
    r.fix = "run as root (sudo chaosdrill ...) or grant CAP_NET_ADMIN";
    return r;
  }
  std::string why;
  if (!KernelHasQdiscKind(qdisc_kind, &why)) {
    r.reason = why;
    r.fix =
        absl::StrCat("modprobe sch_", qdisc_kind, ", or boot a kernel built with CONFIG_NET_SCH_",
                     absl::AsciiStrToUpper(qdisc_kind), " (e.g. Debian's linux-image-cloud-amd64)");
    return r;
  }
  r.available = true;
  return r;
}

}  // namespace chaosdrill::injector
