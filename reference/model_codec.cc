#include "reference/model_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace chaosdrill::reference {
namespace {

std::vector<float> FloatsFromBytes(const std::string& bytes) {
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

}  // namespace

absl::StatusOr<DecodedInput> DecodeInput(const inference::ModelInferRequest& request,
                                         const ModelInfo& info) {
  if (request.inputs_size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model ", info.name, " takes exactly 1 input, request has ", request.inputs_size()));
  }
  const auto& input = request.inputs(0);
  if (input.datatype() != "FP32") {
    return absl::InvalidArgumentError(absl::StrCat(
        "input ", input.name(), ": datatype must be FP32, got '", input.datatype(), "'"));
  }
  const int64_t width = info.input.shape.back();
  if (input.shape_size() != 2 || input.shape(0) < 1 || input.shape(1) != width) {
    return absl::InvalidArgumentError(absl::StrCat("input ", input.name(),
                                                   ": shape must be [batch, ", width, "], got [",
                                                   absl::StrJoin(input.shape(), ", "), "]"));
  }
  DecodedInput decoded;
  decoded.batch = input.shape(0);
  const size_t want = static_cast<size_t>(decoded.batch * width);
  if (request.raw_input_contents_size() > 0) {
    if (request.raw_input_contents_size() != 1 || input.contents().fp32_contents_size() > 0) {
      return absl::InvalidArgumentError(
          "raw_input_contents must hold one entry per input and no input may set contents");
    }
    const std::string& raw = request.raw_input_contents(0);
    if (raw.size() != want * sizeof(float)) {
      return absl::InvalidArgumentError(absl::StrCat("input ", input.name(), ": expected ",
                                                     want * sizeof(float), " raw bytes, got ",
                                                     raw.size()));
    }
    decoded.values = FloatsFromBytes(raw);
    decoded.raw = true;
  } else {
    const auto& contents = input.contents().fp32_contents();
    if (static_cast<size_t>(contents.size()) != want) {
      return absl::InvalidArgumentError(absl::StrCat("input ", input.name(), ": expected ", want,
                                                     " fp32_contents, got ", contents.size()));
    }
    decoded.values.assign(contents.begin(), contents.end());
  }
  return decoded;
}

void EncodeOutput(const ModelInfo& info, const inference::ModelInferRequest& request,
                  absl::Span<const float> values, int64_t batch, bool raw,
                  inference::ModelInferResponse* response) {
  response->set_model_name(info.name);
  response->set_model_version(info.version);
  response->set_id(request.id());
  auto* out = response->add_outputs();
  out->set_name(info.output.name);
  out->set_datatype(info.output.datatype);
  out->add_shape(batch);
  out->add_shape(info.output.shape.back());
  if (raw) {
    response->add_raw_output_contents()->assign(reinterpret_cast<const char*>(values.data()),
                                                values.size() * sizeof(float));
  } else {
    out->mutable_contents()->mutable_fp32_contents()->Add(values.begin(), values.end());
  }
}

absl::StatusOr<std::vector<float>> DecodeOutput(const inference::ModelInferResponse& response) {
  if (response.outputs_size() < 1) {
    return absl::InvalidArgumentError("inference response has no output");
  }
  const auto& out = response.outputs(0);
  if (out.datatype() != "FP32") {
    return absl::InvalidArgumentError(
        absl::StrCat("output ", out.name(), ": datatype ", out.datatype(), ", expected FP32"));
  }
  if (response.raw_output_contents_size() > 0) {
    const std::string& raw = response.raw_output_contents(0);
    if (raw.size() % sizeof(float) != 0) {
      return absl::InvalidArgumentError("raw output is not a whole number of floats");
    }
    return FloatsFromBytes(raw);
  }
  const auto& c = out.contents().fp32_contents();
  return std::vector<float>(c.begin(), c.end());
}

void FillModelMetadata(const ModelInfo& info, inference::ModelMetadataResponse* response) {
  response->set_name(info.name);
  response->add_versions(info.version);
  response->set_platform(info.platform);
  for (const TensorSpec* spec : {&info.input, &info.output}) {
    auto* t = spec == &info.input ? response->add_inputs() : response->add_outputs();
    t->set_name(spec->name);
    t->set_datatype(spec->datatype);
    for (int64_t d : spec->shape) t->add_shape(d);
  }
}

inference::ModelInferRequest MakeInferRequest(const std::string& model_name,
                                              const TensorSpec& input_spec,
                                              absl::Span<const float> input, bool raw) {
  inference::ModelInferRequest request;
  request.set_model_name(model_name);
  auto* in = request.add_inputs();
  in->set_name(input_spec.name);
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(static_cast<int64_t>(input.size()));
  if (raw) {
    request.add_raw_input_contents()->assign(reinterpret_cast<const char*>(input.data()),
                                             input.size() * sizeof(float));
  } else {
    in->mutable_contents()->mutable_fp32_contents()->Add(input.begin(), input.end());
  }
  return request;
}

}  // namespace chaosdrill::reference
