#include "reference/tiny_mlp.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace chaosdrill::reference {

uint64_t SplitMix64::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

float SplitMix64::NextSigned() {
  const uint32_t bits = static_cast<uint32_t>(Next() >> 40);  // 24 bits
  return static_cast<float>(bits) / static_cast<float>(1u << 23) - 1.0f;
}

absl::Status TinyMlp::Validate(const TinyMlpOptions& options) {
  if (options.width < 1 || options.width > 8192) {
    return absl::InvalidArgumentError(
        absl::StrCat("tiny-mlp width must be in [1, 8192], got ", options.width));
  }
  if (options.depth < 0 || options.depth > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("tiny-mlp depth must be in [0, 64], got ", options.depth));
  }
  return absl::OkStatus();
}

TinyMlpWeights TinyMlp::MakeWeights(const TinyMlpOptions& options) {
  TinyMlpWeights w;
  w.width = options.width;
  w.depth = options.depth;
  SplitMix64 rng(options.seed);
  // Hidden layers keep the activations' scale roughly constant (uniform with variance
  // 2/fan_in, He-style); the output layer is scaled by 1/sqrt(fan_in).
  for (int l = 0; l <= options.depth; ++l) {
    const int in = options.width;
    const int out = l == options.depth ? kOutputWidth : options.width;
    const float scale = l == options.depth ? std::sqrt(3.0f / static_cast<float>(in))
                                           : std::sqrt(6.0f / static_cast<float>(in));
    std::vector<float> layer(static_cast<size_t>(in) * out);
    for (float& x : layer) x = rng.NextSigned() * scale;
    std::vector<float> bias(out);
    for (float& x : bias) x = rng.NextSigned() * 0.1f;
    w.layers.push_back(std::move(layer));
    w.biases.push_back(std::move(bias));
    w.in_sizes.push_back(in);
    w.out_sizes.push_back(out);
  }
  return w;
}

std::vector<float> TinyMlp::MakeGoldenInput(const TinyMlpOptions& options) {
  SplitMix64 rng(static_cast<uint64_t>(options.seed) ^ 0x676f6c64656e0000ULL);  // "golden"
  std::vector<float> input(options.width);
  for (float& x : input) x = rng.NextSigned();
  return input;
}

ModelInfo TinyMlp::MakeInfo(const TinyMlpOptions& options, const std::string& platform) {
  // Built by initialisation, not assignment: GCC 12 at -O3 warns falsely (-Wrestrict, bug
  // 105329) on assigning a literal to a std::string member.
  return ModelInfo{.name = std::string("tiny-mlp"),
                   .version = std::string("1"),
                   .platform = platform,
                   .input = {"INPUT0", "FP32", {-1, options.width}},
                   .output = {"OUTPUT0", "FP32", {-1, kOutputWidth}}};
}

TinyMlp::TinyMlp(const TinyMlpOptions& options)
    : info_(MakeInfo(options, "chaosdrill_cpu")),
      weights_(MakeWeights(options)),
      golden_input_(MakeGoldenInput(options)) {}

absl::StatusOr<std::unique_ptr<TinyMlp>> TinyMlp::Create(const TinyMlpOptions& options) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  std::unique_ptr<TinyMlp> model(new TinyMlp(options));
  absl::StatusOr<std::vector<float>> golden = model->Infer(model->golden_input_, 1);
  if (!golden.ok()) return golden.status();
  model->golden_output_ = *std::move(golden);
  return model;
}

absl::StatusOr<std::vector<float>> TinyMlp::Infer(absl::Span<const float> input,
                                                  int64_t batch) const {
  const int64_t in_width = weights_.width;
  if (batch < 1 || static_cast<int64_t>(input.size()) != batch * in_width) {
    return absl::InvalidArgumentError(absl::StrCat("tiny-mlp expects batch x ", in_width,
                                                   " floats, got ", input.size(), " for batch ",
                                                   batch));
  }
  std::vector<float> out(static_cast<size_t>(batch) * kOutputWidth);
  std::vector<float> a(in_width), b(in_width);
  for (int64_t row = 0; row < batch; ++row) {
    std::copy_n(input.begin() + row * in_width, in_width, a.begin());
    const int n_layers = static_cast<int>(weights_.layers.size());
    for (int l = 0; l < n_layers; ++l) {
      const int in = weights_.in_sizes[l];
      const int n_out = weights_.out_sizes[l];
      const float* w = weights_.layers[l].data();
      const bool last = l == n_layers - 1;
      float* dst = last ? out.data() + row * kOutputWidth : b.data();
      for (int j = 0; j < n_out; ++j) {
        float acc = weights_.biases[l][j];
        const float* wj = w + static_cast<size_t>(j) * in;
        for (int i = 0; i < in; ++i) acc += wj[i] * a[i];
        dst[j] = last ? acc : std::max(acc, 0.0f);
      }
      if (!last) std::swap(a, b);
    }
  }
  return out;
}

}  // namespace chaosdrill::reference
