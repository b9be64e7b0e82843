// The model interface the reference replica serves, and the tensor signature types it
// reports through ModelMetadata. A model is built once, is immutable afterwards, and
// Infer may be called from many threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace chaosdrill::reference {

struct TensorSpec {
  std::string name;
  std::string datatype;        // OIP datatype, e.g. "FP32"
  std::vector<int64_t> shape;  // -1 marks the variable batch dimension
};

struct ModelInfo {
  std::string name;
  std::string version;
  std::string platform;  // e.g. "chaosdrill_cpu"
  TensorSpec input;      // one FP32 input [-1, input_width]
  TensorSpec output;     // one FP32 output [-1, output_width]
};

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelInfo& info() const = 0;
  int64_t input_width() const { return info().input.shape.back(); }
  int64_t output_width() const { return info().output.shape.back(); }

  // Runs `batch` rows of input (row-major, batch * input_width floats) and returns
  // batch * output_width floats. InvalidArgument on a size mismatch; a device backend
  // returns ResourceExhausted/Internal when the device fails. Thread-safe.
  virtual absl::StatusOr<std::vector<float>> Infer(absl::Span<const float> input,
                                                   int64_t batch) const = 0;

  // A fixed input (batch 1) and the output this model must produce for it, used by the
  // replica's warm-up and by the gateway's deep health probe. Outputs of different
  // backends agree to within GoldenTolerance() (relative), not bit for bit.
  virtual const std::vector<float>& golden_input() const = 0;
  virtual const std::vector<float>& golden_output() const = 0;
};

// The relative tolerance two backends' outputs are compared with.
inline constexpr float kGoldenTolerance = 1e-3f;

// True when `got` matches `want` element-wise within kGoldenTolerance (relative to the
// larger magnitude, with an absolute floor of the same value).
bool MatchesGolden(absl::Span<const float> got, absl::Span<const float> want);

}  // namespace chaosdrill::reference
