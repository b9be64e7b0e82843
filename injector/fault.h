// The fault model: a FaultFactory validates a FaultSpec once into an immutable Fault; a
// Fault applies itself, reverts itself (idempotently, verifying that the kernel, process
// or device state is really back), and describes, as plain JSON, everything a fresh
// process needs to undo it after a crash (its revert record). DESIGN §4.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/fault_spec.h"

namespace chaosdrill::injector {

// One applied (or about to be applied) fault. Not copyable; not thread-safe: the owner
// serialises calls. Destroying a Fault does not revert it (the owner decides: a lease
// manager reverts on expiry, the journal reverts after a crash).
class Fault {
 public:
  Fault() = default;
  Fault(const Fault&) = delete;
  Fault& operator=(const Fault&) = delete;
  virtual ~Fault() = default;

  // Resolves what Inject() will touch (target pids, ...) without changing anything, so
  // that RevertRecord() names it before Inject() runs and the owner can journal it first
  // (JournaledFault calls Prepare, journals, then Injects). Kinds whose targets are fixed
  // by the spec need not override it. Inject() must also work without a Prepare() call.
  virtual absl::Status Prepare() { return absl::OkStatus(); }

  // Applies the fault. On error nothing of it is left applied (a partial application is
  // rolled back before returning) -- unless that rollback failed too, which the error
  // then says with WithRollbackFailure() (below), so that the owner keeps it journaled.
  virtual absl::Status Inject() = 0;

  // Removes the fault and re-reads state to verify it is gone. Idempotent: reverting a
  // fault that is not applied (or already reverted) is OK.
  virtual absl::Status Revert() = 0;

  // JSON enough, on its own, for FaultFactory::RevertFromRecord in a fresh process. Valid
  // before Inject() (it is journaled before applying); may gain detail after Inject()
  // (child pids), in which case the owner journals it again.
  virtual nlohmann::json RevertRecord() const = 0;

  // One line for logs and `list`: "netem delay 100ms on veth0".
  virtual std::string Describe() const = 0;
};

using FaultPtr = std::unique_ptr<Fault>;

// Inject()'s error when undoing a partial application failed as well, so something of the
// fault may still be applied: the message gains "; rollback failed: <why>" and the status a
// payload that RollbackFailed() tests (Annotate keeps it). JournaledFault then leaves the
// journal entry open, so `chaosdrill revert` (or the agent's replay) tries again. Returns
// `inject_error` unchanged when `rollback_error` is OK.
absl::Status WithRollbackFailure(const absl::Status& inject_error,
                                 const absl::Status& rollback_error);
bool RollbackFailed(const absl::Status& inject_error);

// Whether this node can apply a kind at all, and if not, why and what would fix it.
struct PreflightResult {
  bool available = false;
  std::string reason;  // "kernel lacks sch_netem (CONFIG_NET_SCH_NETEM)"; empty when ok
  std::string fix;     // "run as root", "modprobe sch_netem"; empty when ok
};

// A named factory per fault kind (the Envoy extension pattern). Stateless and
// thread-safe.
class FaultFactory {
 public:
  virtual ~FaultFactory() = default;
  // Name, summary and parameter description (used by the validator, `faults`, docs).
  virtual const FaultKindInfo& info() const = 0;
  absl::string_view name() const { return info().kind; }
  // Node-level capability check (root, kernel module, device), independent of a spec.
  virtual PreflightResult Preflight() const = 0;
  // Validates the spec into typed settings. InvalidArgument names the parameter.
  virtual absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const = 0;
  // Undoes a fault from its revert record alone (journal replay). Idempotent.
  virtual absl::Status RevertFromRecord(const nlohmann::json& record) const = 0;
};

}  // namespace chaosdrill::injector
