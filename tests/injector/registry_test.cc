// Every fault kind DESIGN §4 names (gpu.* and k8s.* aside) is registered, and each kind's
// description is complete enough for `chaosdrill faults` and docs/faults.md.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "injector/fault_registry.h"
#include "tests/test_support.h"

namespace chaosdrill::injector {
namespace {

TEST_CASE("every kind in DESIGN section 4 except gpu.* and k8s.* is registered", "[registry]") {
  RegisterBuiltinFaults();
  const char* kinds[] = {
      "process.kill",      "process.pause",     "stress.cpu",    "stress.memory", "network.netem",
      "network.bandwidth", "network.partition", "proxy.latency", "proxy.jitter",  "proxy.bandwidth",
      "proxy.reset",       "proxy.blackhole",   "proxy.slicer",
  };
  for (const char* kind : kinds) {
    INFO(kind);
    auto f = FaultRegistry::Global().Find(kind);
    CHECK(f.ok());
  }
}

TEST_CASE("every registered kind documents itself and its parameters", "[registry]") {
  RegisterBuiltinFaults();
  std::ifstream in(testing::SourcePath("docs/faults.md"));
  std::stringstream docs;
  docs << in.rdbuf();
  for (const FaultFactory* f : FaultRegistry::Global().All()) {
    const FaultKindInfo& info = f->info();
    INFO(info.kind);
    CHECK(!info.summary.empty());
    for (const ParamSpec& p : info.params) {
      INFO(p.name);
      CHECK(!p.doc.empty());
    }
    // Kinds owned by this folder are documented in docs/faults.md.
    if (info.kind.rfind("process.", 0) == 0 || info.kind.rfind("stress.", 0) == 0) {
      CHECK(docs.str().find("`" + info.kind + "`") != std::string::npos);
      for (const ParamSpec& p : info.params) {
        INFO(p.name);
        CHECK(docs.str().find("`" + p.name + "`") != std::string::npos);
      }
    }
  }
}

TEST_CASE("an unknown kind is NotFound naming it", "[registry]") {
  RegisterBuiltinFaults();
  auto f = FaultRegistry::Global().Find("process.explode");
  REQUIRE_FALSE(f.ok());
  CHECK(f.status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(f.status().message()).find("process.explode") != std::string::npos);
}

}  // namespace
}  // namespace chaosdrill::injector
