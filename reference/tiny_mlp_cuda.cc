#include "reference/tiny_mlp_cuda.h"

#include <cuda_runtime_api.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "reference/tiny_mlp_cuda_kernels.h"

namespace chaosdrill::reference {
namespace {

// "context: <cuda error text>" as ResourceExhausted for out-of-memory, Internal otherwise
// (after an illegal access or similar the context is unusable).
absl::Status CudaStatus(absl::string_view context, cudaError_t err) {
  std::string message =
      absl::StrCat(context, ": ", cudaGetErrorString(err), " (", cudaGetErrorName(err), ")");
  if (err == cudaErrorMemoryAllocation) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

// Frees a device allocation on scope exit.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept : ptr_(other.ptr_) { other.ptr_ = nullptr; }

  cudaError_t Allocate(size_t floats) {
    return cudaMalloc(reinterpret_cast<void**>(&ptr_), floats * sizeof(float));
  }
  float* get() const { return ptr_; }

 private:
  float* ptr_ = nullptr;
};

class TinyMlpCuda final : public Model {
 public:
  TinyMlpCuda(const TinyMlpOptions& options, int device, const TinyMlp& cpu)
      : info_(TinyMlp::MakeInfo(options, "chaosdrill_cuda")),
        device_(device),
        weights_(TinyMlp::MakeWeights(options)),
        golden_input_(cpu.golden_input()),
        golden_output_(cpu.golden_output()) {}

  absl::Status Upload() {
    for (size_t l = 0; l < weights_.layers.size(); ++l) {
      DeviceBuffer w, b;
      const auto& layer = weights_.layers[l];
      const auto& bias = weights_.biases[l];
      cudaError_t err = w.Allocate(layer.size());
      if (err == cudaSuccess) err = b.Allocate(bias.size());
      if (err == cudaSuccess) {
        err =
            cudaMemcpy(w.get(), layer.data(), layer.size() * sizeof(float), cudaMemcpyHostToDevice);
      }
      if (err == cudaSuccess) {
        err = cudaMemcpy(b.get(), bias.data(), bias.size() * sizeof(float), cudaMemcpyHostToDevice);
      }
      if (err != cudaSuccess) {
        return CudaStatus(absl::StrCat("uploading tiny-mlp layer ", l, " to device ", device_),
                          err);
      }
      device_layers_.push_back(std::move(w));
      device_biases_.push_back(std::move(b));
    }
    return absl::OkStatus();
  }

  const ModelInfo& info() const override { return info_; }
  const std::vector<float>& golden_input() const override { return golden_input_; }
  const std::vector<float>& golden_output() const override { return golden_output_; }

  absl::StatusOr<std::vector<float>> Infer(absl::Span<const float> input,
                                           int64_t batch) const override {
    const int width = weights_.width;
    if (batch < 1 || batch > (1 << 20) || static_cast<int64_t>(input.size()) != batch * width) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tiny-mlp expects batch x ", width, " floats, got ", input.size(), " for batch ", batch));
    }
    // Each thread may be on another device by default; the call is cheap when it is not.
    if (cudaError_t err = cudaSetDevice(device_); err != cudaSuccess) {
      return CudaStatus(absl::StrCat("selecting device ", device_), err);
    }
    const size_t act = static_cast<size_t>(batch) * width;
    const size_t out_floats = static_cast<size_t>(batch) * TinyMlp::kOutputWidth;
    // The per-request workspace: what GPU memory pressure takes away.
    DeviceBuffer workspace;
    if (cudaError_t err = workspace.Allocate(2 * act + out_floats); err != cudaSuccess) {
      return CudaStatus(absl::StrCat("allocating a ", (2 * act + out_floats) * sizeof(float),
                                     "-byte inference workspace on device ", device_),
                        err);
    }
    float* a = workspace.get();
    float* b = a + act;
    float* out = b + act;
    cudaStream_t stream = cudaStreamPerThread;
    cudaError_t err =
        cudaMemcpyAsync(a, input.data(), act * sizeof(float), cudaMemcpyHostToDevice, stream);
    const int n_layers = static_cast<int>(weights_.layers.size());
    for (int l = 0; l < n_layers && err == cudaSuccess; ++l) {
      const bool last = l == n_layers - 1;
      float* dst = last ? out : b;
      err = LaunchDenseLayer(device_layers_[l].get(), device_biases_[l].get(), a, dst,
                             weights_.in_sizes[l], weights_.out_sizes[l], static_cast<int>(batch),
                             /*linear=*/last, stream);
      if (!last) std::swap(a, b);
    }
    std::vector<float> result(out_floats);
    if (err == cudaSuccess) {
      err = cudaMemcpyAsync(result.data(), out, out_floats * sizeof(float), cudaMemcpyDeviceToHost,
                            stream);
    }
    if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
    if (err != cudaSuccess) {
      return CudaStatus(absl::StrCat("tiny-mlp inference on device ", device_), err);
    }
    return result;
  }

 private:
  ModelInfo info_;
  int device_;
  TinyMlpWeights weights_;
  std::vector<DeviceBuffer> device_layers_;
  std::vector<DeviceBuffer> device_biases_;
  std::vector<float> golden_input_;
  std::vector<float> golden_output_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> CreateTinyMlpCuda(const TinyMlpOptions& options,
                                                         int device) {
  absl::StatusOr<std::unique_ptr<TinyMlp>> cpu = TinyMlp::Create(options);  // validates too
  if (!cpu.ok()) return cpu.status();
  int count = 0;
  if (cudaError_t err = cudaGetDeviceCount(&count); err != cudaSuccess || count == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("device cuda: no CUDA device visible (cudaGetDeviceCount: ",
                     err != cudaSuccess ? cudaGetErrorString(err) : "0 devices", ")"));
  }
  if (device < 0 || device >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat("device cuda: device ", device, " not present (", count, " visible)"));
  }
  if (cudaError_t err = cudaSetDevice(device); err != cudaSuccess) {
    return CudaStatus(absl::StrCat("selecting device ", device), err);
  }
  auto model = std::make_unique<TinyMlpCuda>(options, device, **cpu);
  if (absl::Status st = model->Upload(); !st.ok()) return st;
  // The device must agree with the CPU before serving anything.
  absl::StatusOr<std::vector<float>> golden = model->Infer(model->golden_input(), 1);
  if (!golden.ok()) return golden.status();
  if (!MatchesGolden(*golden, model->golden_output())) {
    return absl::InternalError("device cuda: tiny-mlp output differs from the CPU golden output");
  }
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace chaosdrill::reference
