// The stand-in gpu.* factories of builds without CUDA (injector/gpu_unavailable.cc), built
// into this test directly so they are tested in CUDA builds too.
#include <catch2/catch.hpp>

#include "injector/gpu_kinds.h"

namespace chaosdrill::injector {
namespace {

TEST_CASE("without CUDA every gpu kind is described but says built without CUDA", "[gpu]") {
  FaultRegistry registry;
  RegisterGpuFaults(registry);
  std::vector<FaultKindInfo> catalog = registry.Catalog();
  REQUIRE(catalog.size() == 4);
  for (const FaultKindInfo* info : GpuKindInfos()) {
    INFO(info->kind);
    absl::StatusOr<const FaultFactory*> f = registry.Find(info->kind);
    REQUIRE(f.ok());
    CHECK_FALSE(info->params.empty());
    PreflightResult preflight = (*f)->Preflight();
    CHECK_FALSE(preflight.available);
    CHECK(preflight.reason == "built without CUDA");
    CHECK_FALSE(preflight.fix.empty());
    absl::StatusOr<FaultPtr> fault = (*f)->Create({.kind = info->kind});
    CHECK(fault.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK(fault.status().message() == info->kind + ": built without CUDA");
    CHECK((*f)->RevertFromRecord({}).code() == absl::StatusCode::kFailedPrecondition);
  }
}

TEST_CASE("gpu kind descriptions validate their defaults", "[gpu]") {
  for (const FaultKindInfo* info : GpuKindInfos()) {
    for (const ParamSpec& p : info->params) {
      if (p.default_value.empty()) continue;
      INFO(info->kind << "." << p.name);
      CHECK(ValidateParamValue(p, p.default_value).ok());
    }
  }
}

}  // namespace
}  // namespace chaosdrill::injector
