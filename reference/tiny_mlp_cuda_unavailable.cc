// CreateTinyMlpCuda for builds without the CUDA toolkit (CMake compiles this instead of
// tiny_mlp_cuda.cc).
#include "reference/tiny_mlp_cuda.h"

namespace chaosdrill::reference {

absl::StatusOr<std::unique_ptr<Model>> CreateTinyMlpCuda(const TinyMlpOptions& /*options*/,
                                                         int /*device*/) {
  return absl::UnimplementedError(
      "device cuda: chaosdrill was built without CUDA (use --device cpu, or rebuild with the "
      "CUDA toolkit)");
}

}  // namespace chaosdrill::reference
