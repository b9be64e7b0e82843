// Interop: the server's proto and a client proto typed independently from the public
// KServe v2 definition (tests/reference/interop/kserve_v2) compile to the same wire
// format (descriptors compared field by field), and a Python client built with Debian's
// python3-grpcio, with classes and stub generated from the client proto, talks to the
// gateway (tests/reference/interop).
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "reference/gateway.h"
#include "reference/replica.h"
#include "reference/tiny_mlp.h"
#include "tests/test_support.h"

namespace chaosdrill::reference {
namespace {

using chaosdrill::testing::RunCommand;
using chaosdrill::testing::SkipUnless;
using chaosdrill::testing::SourcePath;

constexpr char kPython[] = "/usr/bin/python3";
constexpr char kProtoc[] = "/usr/bin/protoc";
constexpr char kGrpcPythonPlugin[] = "/usr/bin/grpc_python_plugin";

bool HavePythonGrpc() {
  for (const char* tool : {kPython, kProtoc, kGrpcPythonPlugin}) {
    if (::access(tool, X_OK) != 0) return false;
  }
  return RunCommand({kPython, "-c", "import grpc, google.protobuf"}, 30000).exit_code == 0;
}

constexpr char kSkipReason[] =
    "needs /usr/bin/python3 with python3-grpcio, protoc and grpc_python_plugin "
    "(protobuf-compiler-grpc; scripts/install-deps.sh)";

std::string JsonFloats(const std::vector<float>& v) {
  return absl::StrCat("[",
                      absl::StrJoin(v, ", ",
                                    [](std::string* out, float f) {
                                      absl::StrAppend(out, absl::StrFormat("%.9g", f));
                                    }),
                      "]");
}

TEST_CASE("the server's OIP proto and the client's KServe v2 proto have the same wire format",
          "[reference]") {
  if (SkipUnless(HavePythonGrpc(), kSkipReason)) return;
  chaosdrill::testing::TempDir dir;
  const std::string server_pb = dir.path() + "/server.pb";
  const std::string client_pb = dir.path() + "/client.pb";
  auto server = RunCommand({kProtoc, "-I", SourcePath("proto"), "--descriptor_set_out=" + server_pb,
                            SourcePath("proto/inference/grpc_predict_v2.proto")});
  INFO(server.err);
  REQUIRE(server.exit_code == 0);
  auto client = RunCommand({kProtoc, "-I", SourcePath("tests/reference/interop/kserve_v2"),
                            "--descriptor_set_out=" + client_pb,
                            SourcePath("tests/reference/interop/kserve_v2/grpc_predict_v2.proto")});
  INFO(client.err);
  REQUIRE(client.exit_code == 0);
  auto compare = RunCommand(
      {kPython, SourcePath("tests/reference/interop/compare_protos.py"), server_pb, client_pb});
  INFO(compare.out << compare.err);
  std::printf("%s", compare.out.c_str());
  CHECK(compare.exit_code == 0);
  CHECK(compare.out.find("protos match: 23 messages, 6 rpcs") != std::string::npos);
}

TEST_CASE("python3-grpcio KServe v2 client gets the golden output through the gateway",
          "[reference]") {
  if (SkipUnless(HavePythonGrpc(), kSkipReason)) return;
  chaosdrill::testing::TempDir dir;
  const std::string gen = dir.path() + "/gen";
  REQUIRE(::mkdir(gen.c_str(), 0755) == 0);
  // The client's classes and stub come from the client proto only.
  auto protoc = RunCommand({kProtoc, "-I", SourcePath("tests/reference/interop/kserve_v2"),
                            "--python_out=" + gen, "--grpc_python_out=" + gen,
                            std::string("--plugin=protoc-gen-grpc_python=") + kGrpcPythonPlugin,
                            SourcePath("tests/reference/interop/kserve_v2/grpc_predict_v2.proto")});
  INFO(protoc.err);
  REQUIRE(protoc.exit_code == 0);

  std::vector<std::unique_ptr<Replica>> replicas;
  GatewayOptions options;
  options.health_interval_ms = 100;
  for (int i = 0; i < 2; ++i) {
    auto r = Replica::Start({});
    REQUIRE(r.ok());
    REQUIRE((*r)->WaitReady(20000));
    options.replicas.push_back((*r)->address());
    replicas.push_back(*std::move(r));
  }
  auto gateway = Gateway::Start(options);
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->WaitForRoutable(2, 20000));

  auto model = TinyMlp::Create({});
  REQUIRE(model.ok());
  const std::string golden = dir.Write(
      "golden.json",
      absl::StrCat("{\"model\": \"tiny-mlp\", \"input\": ", JsonFloats((*model)->golden_input()),
                   ", \"output\": ", JsonFloats((*model)->golden_output()),
                   ", \"tolerance\": 1e-3}"));
  auto client = RunCommand({kPython, SourcePath("tests/reference/interop/oip_client.py"), "--gen",
                            gen, "--target", (*gateway)->address(), "--golden", golden},
                           60000);
  INFO(client.out << client.err);
  std::printf("%s", client.out.c_str());
  CHECK(client.exit_code == 0);
  CHECK(client.out.find("interop ok") != std::string::npos);
}

}  // namespace
}  // namespace chaosdrill::reference
