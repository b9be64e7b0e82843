// CreateModel: builds a served model by name and device. The one place a new backend
// (e.g. the CUDA tiny-mlp) is plugged in.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "reference/model.h"

namespace chaosdrill::reference {

struct ModelOptions {
  std::string name = "tiny-mlp";
  std::string device = "cpu";  // "cpu" | "cuda"
  int width = 256;
  int depth = 4;
  uint32_t seed = 42;
};

// NotFound for an unknown model, InvalidArgument for a bad device or size, Unimplemented
// for a device this build lacks.
absl::StatusOr<std::unique_ptr<Model>> CreateModel(const ModelOptions& options);

}  // namespace chaosdrill::reference
