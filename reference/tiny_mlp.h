// tiny-mlp: the reference model. A dense network on FP32 with deterministic weights:
// `depth` hidden layers of width x width with ReLU, then a linear layer to kOutputWidth
// outputs. Weights, biases and the golden input come from a SplitMix64 stream seeded with
// `seed`, so every platform builds the same network and (on CPU) the same golden output.
// Cost per row is about depth * width^2 multiply-adds: width 64/depth 1 is microseconds,
// width 256/depth 4 (the default) a fraction of a millisecond, width 2048/depth 8 tens of
// milliseconds.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "reference/model.h"

namespace chaosdrill::reference {

struct TinyMlpOptions {
  int width = 256;
  int depth = 4;
  uint32_t seed = 42;
};

// The weights of a tiny-mlp, shared by the CPU model and any device backend (which
// uploads them). layers[i] is out x in row-major, biases[i] has `out` entries.
struct TinyMlpWeights {
  int width = 0;
  int depth = 0;
  std::vector<std::vector<float>> layers;
  std::vector<std::vector<float>> biases;
  std::vector<int> in_sizes;
  std::vector<int> out_sizes;
};

// SplitMix64: a tiny, well-mixed PRNG whose sequence is fixed by its definition.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [-1, 1), from the top 24 bits (exactly representable in a float).
  float NextSigned();

 private:
  uint64_t state_;
};

class TinyMlp final : public Model {
 public:
  static constexpr int kOutputWidth = 16;

  // InvalidArgument unless 1 <= width <= 8192 and 0 <= depth <= 64.
  static absl::Status Validate(const TinyMlpOptions& options);
  static TinyMlpWeights MakeWeights(const TinyMlpOptions& options);
  static std::vector<float> MakeGoldenInput(const TinyMlpOptions& options);
  // The ModelInfo of a tiny-mlp with these options on `platform`.
  static ModelInfo MakeInfo(const TinyMlpOptions& options, const std::string& platform);

  static absl::StatusOr<std::unique_ptr<TinyMlp>> Create(const TinyMlpOptions& options);

  const ModelInfo& info() const override { return info_; }
  absl::StatusOr<std::vector<float>> Infer(absl::Span<const float> input,
                                           int64_t batch) const override;
  const std::vector<float>& golden_input() const override { return golden_input_; }
  const std::vector<float>& golden_output() const override { return golden_output_; }

 private:
  TinyMlp(const TinyMlpOptions& options);

  ModelInfo info_;
  TinyMlpWeights weights_;
  std::vector<float> golden_input_;
  std::vector<float> golden_output_;
};

}  // namespace chaosdrill::reference
