// Conversions between Open Inference Protocol messages and a Model's FP32 tensors, shared
// by the replica (serving), the gateway's deep probe and tests (building and checking the
// golden request). Inputs are accepted as typed `contents.fp32_contents` or as
// `raw_input_contents` (what Triton's clients send); the output is encoded the same way
// the input came.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "inference/grpc_predict_v2.pb.h"
#include "reference/model.h"

namespace chaosdrill::reference {

struct DecodedInput {
  std::vector<float> values;  // batch * input_width floats, row-major
  int64_t batch = 0;
  bool raw = false;  // came as raw_input_contents
};

// InvalidArgument (naming the problem) unless the request has exactly one FP32 input of
// shape [batch, input_width] with matching contents.
absl::StatusOr<DecodedInput> DecodeInput(const inference::ModelInferRequest& request,
                                         const ModelInfo& info);

// Fills the response's model name/version/id and its single output.
void EncodeOutput(const ModelInfo& info, const inference::ModelInferRequest& request,
                  absl::Span<const float> values, int64_t batch, bool raw,
                  inference::ModelInferResponse* response);

// The first output of a response as floats (typed or raw). InvalidArgument if malformed.
absl::StatusOr<std::vector<float>> DecodeOutput(const inference::ModelInferResponse& response);

void FillModelMetadata(const ModelInfo& info, inference::ModelMetadataResponse* response);

// A batch-1 request carrying `input` for the model called `model_name`.
inference::ModelInferRequest MakeInferRequest(const std::string& model_name,
                                              const TensorSpec& input_spec,
                                              absl::Span<const float> input, bool raw);

}  // namespace chaosdrill::reference
