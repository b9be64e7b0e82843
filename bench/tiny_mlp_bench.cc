// tiny_mlp_bench: what one tiny-mlp inference costs at several sizes, on the model alone and
// through a replica and a gateway over loopback gRPC (sequential, batch 1). Prints one line
// per configuration: width, depth, model µs, replica µs, gateway µs (medians).
//   usage: tiny_mlp_bench [iterations=200]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "inference/grpc_predict_v2.grpc.pb.h"
#include "reference/gateway.h"
#include "reference/model_codec.h"
#include "reference/replica.h"
#include "reference/tiny_mlp.h"

namespace {

using Clock = std::chrono::steady_clock;

double MedianMicros(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

template <typename F>
double Time(int n, F f) {
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    if (!f()) return -1;
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return MedianMicros(us);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace chaosdrill::reference;
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  std::printf("%6s %6s %12s %12s %12s\n", "width", "depth", "model_us", "replica_us", "gateway_us");
  for (auto [width, depth] : std::vector<std::pair<int, int>>{
           {32, 1}, {64, 2}, {256, 4}, {512, 8}, {1024, 8}, {2048, 8}}) {
    auto model = TinyMlp::Create({.width = width, .depth = depth});
    if (!model.ok()) return 1;
    const auto& input = (*model)->golden_input();
    const int iters = width >= 1024 ? std::max(5, n / 10) : n;
    const double model_us = Time(iters, [&] { return (*model)->Infer(input, 1).ok(); });

    ReplicaOptions ro;
    ro.width = width;
    ro.depth = depth;
    auto replica = Replica::Start(ro);
    if (!replica.ok() || !(*replica)->WaitReady(60000)) return 1;
    GatewayOptions go;
    go.replicas = {(*replica)->address()};
    go.model_width = width;
    go.model_depth = depth;
    go.health_interval_ms = 200;
    go.health_timeout_ms = 5000;
    auto gateway = Gateway::Start(go);
    if (!gateway.ok() || !(*gateway)->WaitForRoutable(1, 60000)) return 1;
    const auto request = MakeInferRequest("tiny-mlp", (*model)->info().input, input, true);
    auto call = [&](const std::string& address) {
      auto stub = inference::GRPCInferenceService::NewStub(
          grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
      return Time(iters, [&] {
        grpc::ClientContext ctx;
        inference::ModelInferResponse resp;
        return stub->ModelInfer(&ctx, request, &resp).ok();
      });
    };
    const double replica_us = call((*replica)->address());
    const double gateway_us = call((*gateway)->address());
    std::printf("%6d %6d %12.1f %12.1f %12.1f\n", width, depth, model_us, replica_us, gateway_us);
    std::fflush(stdout);
  }
  return 0;
}
