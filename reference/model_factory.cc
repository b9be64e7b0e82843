#include "reference/model_factory.h"

#include "absl/strings/str_cat.h"
#include "reference/tiny_mlp.h"
#include "reference/tiny_mlp_cuda.h"

namespace chaosdrill::reference {

absl::StatusOr<std::unique_ptr<Model>> CreateModel(const ModelOptions& options) {
  if (options.name != "tiny-mlp") {
    return absl::NotFoundError(
        absl::StrCat("unknown model '", options.name, "' (available: tiny-mlp)"));
  }
  const TinyMlpOptions mlp{.width = options.width, .depth = options.depth, .seed = options.seed};
  if (options.device == "cpu") {
    absl::StatusOr<std::unique_ptr<TinyMlp>> model = TinyMlp::Create(mlp);
    if (!model.ok()) return model.status();
    return std::unique_ptr<Model>(std::move(*model));
  }
  if (options.device == "cuda") {
    // reference/tiny_mlp_cuda.h; Unimplemented in a build without the CUDA toolkit,
    // FailedPrecondition without a device.
    return CreateTinyMlpCuda(mlp);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown device '", options.device, "' (valid: cpu, cuda)"));
}

}  // namespace chaosdrill::reference
