#include "injector/fault_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace chaosdrill::injector {
FaultRegistry& FaultRegistry::Global() {
  static FaultRegistry registry;
  return registry;
}

void FaultRegistry::Add(std::unique_ptr<FaultFactory> factory) {
  factories_.push_back(std::move(factory));
  std::sort(factories_.begin(), factories_.end(),
            [](const auto& a, const auto& b) { return a->name() < b->name(); });
}

absl::StatusOr<const FaultFactory*> FaultRegistry::Find(absl::string_view kind) const {
  for (const auto& f : factories_) {
    if (f->name() == kind) return f.get();
  }
  std::vector<absl::string_view> names;
  for (const auto& f : factories_) names.push_back(f->name());
  return absl::NotFoundError(
      absl::StrCat("unknown fault kind \"", kind, "\" (known: ", absl::StrJoin(names, ", "), ")"));
}

std::vector<const FaultFactory*> FaultRegistry::All() const {
  std::vector<const FaultFactory*> out;
  for (const auto& f : factories_) out.push_back(f.get());
  return out;
}

std::vector<FaultKindInfo> FaultRegistry::Catalog() const {
  std::vector<FaultKindInfo> out;
  for (const auto& f : factories_) out.push_back(f->info());
  return out;
}

}  // namespace chaosdrill::injector
