#include "gpu_faults/gpu_fault_settings.h"

#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/quantity.h"
#include "common/status.h"
#include "injector/gpu_kinds.h"

namespace chaosdrill::injector {
namespace {

constexpr uint64_t kMinChunk = 2ull << 20;
constexpr uint64_t kMaxChunk = 64ull << 30;

absl::Status ParamError(const FaultKindInfo& info, absl::string_view param,
                        absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(info.kind, ": parameter ", param, ": ", message));
}

// Rejects parameters the kind does not take, and values that do not fit their type.
absl::Status CheckParams(const FaultKindInfo& info, const FaultSpec& spec) {
  for (const auto& [name, value] : spec.params) {
    const ParamSpec* param = info.Find(name);
    if (param == nullptr) {
      std::vector<std::string> known;
      for (const ParamSpec& p : info.params) known.push_back(p.name);
      return absl::InvalidArgumentError(absl::StrCat(info.kind, ": unknown parameter \"", name,
                                                     "\" (takes: ", absl::StrJoin(known, ", "),
                                                     ")"));
    }
    if (absl::Status st = ValidateParamValue(*param, value); !st.ok()) {
      return ParamError(info, name, st.message());
    }
  }
  for (const ParamSpec& p : info.params) {
    if (p.required && !spec.Get(p.name)) return ParamError(info, p.name, "is required");
  }
  return absl::OkStatus();
}

// The parameter as given, else the kind's default.
std::string Value(const FaultKindInfo& info, const FaultSpec& spec, absl::string_view name) {
  if (std::optional<std::string> v = spec.Get(name)) return *v;
  const ParamSpec* p = info.Find(name);
  return p ? p->default_value : "";
}

absl::StatusOr<int64_t> IntParam(const FaultKindInfo& info, const FaultSpec& spec,
                                 absl::string_view name, int64_t min, int64_t max) {
  std::string text = Value(info, spec, name);
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < min || v > max) {
    return ParamError(
        info, name,
        absl::StrCat("expected an integer in ", min, "..", max, ", found \"", text, "\""));
  }
  return v;
}

absl::StatusOr<int> DeviceParam(const FaultKindInfo& info, const FaultSpec& spec) {
  ASSIGN_OR_RETURN(int64_t device, IntParam(info, spec, "device", 0, kMaxGpuDevice));
  return static_cast<int>(device);
}

absl::StatusOr<double> RatioParam(const FaultKindInfo& info, const FaultSpec& spec,
                                  absl::string_view name, bool allow_zero, bool allow_one) {
  std::string text = Value(info, spec, name);
  absl::StatusOr<double> v = ParseRatio(text);
  if (!v.ok()) return ParamError(info, name, v.status().message());
  if ((!allow_zero && *v <= 0) || (!allow_one && *v >= 1)) {
    return ParamError(info, name,
                      absl::StrCat("must be in ", allow_zero ? "[0" : "(0", ", 1",
                                   allow_one ? "]" : ")", ", found \"", text, "\""));
  }
  return *v;
}

absl::StatusOr<uint64_t> SizeParam(const FaultKindInfo& info, const FaultSpec& spec,
                                   absl::string_view name) {
  absl::StatusOr<uint64_t> v = ParseSize(Value(info, spec, name));
  if (!v.ok()) return ParamError(info, name, v.status().message());
  return *v;
}

absl::StatusOr<absl::Duration> DurationParam(const FaultKindInfo& info, const FaultSpec& spec,
                                             absl::string_view name) {
  absl::StatusOr<absl::Duration> v = ParseDuration(Value(info, spec, name));
  if (!v.ok()) return ParamError(info, name, v.status().message());
  return *v;
}

}  // namespace

absl::StatusOr<MemoryPressureSettings> ParseMemoryPressureSettings(const FaultSpec& spec) {
  const FaultKindInfo& info = GpuMemoryPressureInfo();
  RETURN_IF_ERROR(CheckParams(info, spec));
  MemoryPressureSettings s;
  ASSIGN_OR_RETURN(s.device, DeviceParam(info, spec));
  int given = spec.Get("size").has_value() + spec.Get("fraction").has_value() +
              spec.Get("leave_free").has_value();
  if (given != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        info.kind, ": give exactly one of size, fraction, leave_free (found ", given, ")"));
  }
  if (spec.Get("size")) {
    s.target.mode = gpu::MemoryTarget::Mode::kSize;
    ASSIGN_OR_RETURN(s.target.bytes, SizeParam(info, spec, "size"));
    if (s.target.bytes == 0) return ParamError(info, "size", "must be more than 0 bytes");
  } else if (spec.Get("fraction")) {
    s.target.mode = gpu::MemoryTarget::Mode::kFraction;
    ASSIGN_OR_RETURN(s.target.fraction, RatioParam(info, spec, "fraction", /*allow_zero=*/false,
                                                   /*allow_one=*/false));
  } else {
    s.target.mode = gpu::MemoryTarget::Mode::kLeaveFree;
    ASSIGN_OR_RETURN(s.target.bytes, SizeParam(info, spec, "leave_free"));
  }
  ASSIGN_OR_RETURN(s.chunk, SizeParam(info, spec, "chunk"));
  if (s.chunk < kMinChunk || s.chunk > kMaxChunk) {
    return ParamError(info, "chunk", "must be between 2MiB and 64GiB");
  }
  ASSIGN_OR_RETURN(s.ramp, DurationParam(info, spec, "ramp"));
  if (s.ramp > absl::Hours(1)) return ParamError(info, "ramp", "must be at most 1h");
  return s;
}

absl::StatusOr<ComputeBurnSettings> ParseComputeBurnSettings(const FaultSpec& spec) {
  const FaultKindInfo& info = GpuComputeBurnInfo();
  RETURN_IF_ERROR(CheckParams(info, spec));
  ComputeBurnSettings s;
  ASSIGN_OR_RETURN(s.device, DeviceParam(info, spec));
  ASSIGN_OR_RETURN(s.sm_fraction, RatioParam(info, spec, "sm_fraction", false, true));
  ASSIGN_OR_RETURN(s.duty_cycle, RatioParam(info, spec, "duty_cycle", false, true));
  ASSIGN_OR_RETURN(s.period, DurationParam(info, spec, "period"));
  if (s.period < absl::Milliseconds(1) || s.period > absl::Seconds(10)) {
    return ParamError(info, "period", "must be between 1ms and 10s");
  }
  return s;
}

absl::StatusOr<CudaErrorsSettings> ParseCudaErrorsSettings(const FaultSpec& spec) {
  const FaultKindInfo& info = GpuCudaErrorsInfo();
  RETURN_IF_ERROR(CheckParams(info, spec));
  CudaErrorsSettings s;
  s.control_path = Value(info, spec, "control");
  if (s.control_path.empty() || s.control_path[0] != '/') {
    return ParamError(info, "control", "must be an absolute path");
  }
  if (s.control_path.back() == '/') return ParamError(info, "control", "names a directory");
  for (absl::string_view name : absl::StrSplit(Value(info, spec, "calls"), ',')) {
    std::string trimmed(absl::StripAsciiWhitespace(name));
    std::optional<gpu::CudaCall> call = gpu::CudaCallFromName(trimmed);
    if (!call) {
      return ParamError(info, "calls",
                        absl::StrCat("unknown call \"", trimmed,
                                     "\" (known: cudaMalloc, cudaMemcpy, cudaMemcpyAsync, "
                                     "cudaLaunchKernel)"));
    }
    s.control.calls_mask |= 1u << static_cast<int>(*call);
  }
  std::string error = Value(info, spec, "error");
  std::optional<int> code = gpu::CudaErrorFromName(error);
  if (!code) {
    return ParamError(info, "error",
                      absl::StrCat("unknown error \"", error, "\" (a number 1..10000 or one of ",
                                   absl::StrJoin(gpu::KnownCudaErrorNames(), ", "), ")"));
  }
  s.control.error = *code;
  ASSIGN_OR_RETURN(s.control.probability, RatioParam(info, spec, "probability", true, true));
  std::string seed = Value(info, spec, "seed");
  if (!absl::SimpleAtoi(seed, &s.control.seed)) {
    return ParamError(info, "seed",
                      absl::StrCat("expected a non-negative integer, found \"", seed, "\""));
  }
  return s;
}

std::optional<std::string> DefaultXidMessage(int xid) {
  switch (xid) {
    case 13:
      return "Graphics SM Warp Exception on (GPC 0, TPC 0, SM 0): Out Of Range Address";
    case 31:
      return "MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x0_00000000. Fault is of "
             "type FAULT_PDE ACCESS_TYPE_VIRT_READ";
    case 43:
      return "Ch 00000008, engmask 00000101";
    case 45:
      return "Preemptive Cleanup, due to previous errors -- Most likely 68 or 109";
    case 48:
      return "An uncorrectable double bit error (DBE) has been detected on GPU in the "
             "framebuffer at partition 0, subpartition 0.";
    case 63:
      return "Row Remapper: New row (0x0000000000000000) was marked for remapping, reset gpu "
             "to activate.";
    case 64:
      return "Row Remapper: Error Remapping (0x0000000000000000)";
    case 74:
      return "NVLink: fatal error detected on link 0(0x10000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)";
    case 79:
      return "GPU has fallen off the bus.";
    case 92:
      return "High single-bit ECC error rate";
    case 94:
      return "Contained: SM (0x1). RST: No, D-RST: No";
    case 95:
      return "Uncontained: FBHUB. RST: Yes, D-RST: No";
    case 119:
      return "Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 "
             "(GSP_RM_CONTROL) (0x20800a4c 0x4).";
    default:
      return std::nullopt;
  }
}

std::string XidPciFromBusId(absl::string_view bus_id) {
  std::string out = absl::AsciiStrToLower(bus_id);
  if (size_t dot = out.rfind('.'); dot != std::string::npos) out.resize(dot);
  // cudaDeviceGetPCIBusId may print an 8-digit domain ("00000000:3B:00.0").
  if (out.size() == 14 && out.compare(0, 4, "0000") == 0) out.erase(0, 4);
  return out;
}

absl::StatusOr<XidSettings> ParseXidSettings(const FaultSpec& spec) {
  const FaultKindInfo& info = GpuXidInfo();
  RETURN_IF_ERROR(CheckParams(info, spec));
  XidSettings s;
  ASSIGN_OR_RETURN(int64_t xid, IntParam(info, spec, "xid", 1, 1000));
  s.xid = static_cast<int>(xid);
  if (std::optional<std::string> message = spec.Get("message")) {
    s.message = *message;
  } else if (std::optional<std::string> text = DefaultXidMessage(s.xid)) {
    s.message = *text;
  } else {
    return ParamError(info, "message",
                      absl::StrCat("required for Xid ", s.xid, " (no default text known)"));
  }
  if (s.message.empty() || s.message.find_first_of("\n\r") != std::string::npos ||
      s.message.size() > 512) {
    return ParamError(info, "message", "must be one line of 1..512 characters");
  }
  if (std::optional<std::string> pci = spec.Get("pci")) {
    static const std::regex kPci("[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}");
    std::string lower = absl::AsciiStrToLower(*pci);
    if (!std::regex_match(lower, kPci)) {
      return ParamError(
          info, "pci",
          absl::StrCat("expected domain:bus:device like 0000:3b:00, found \"", *pci, "\""));
    }
    s.pci = lower;
  }
  ASSIGN_OR_RETURN(s.device, DeviceParam(info, spec));
  ASSIGN_OR_RETURN(int64_t count, IntParam(info, spec, "count", 1, 1000));
  s.count = static_cast<int>(count);
  ASSIGN_OR_RETURN(s.interval, DurationParam(info, spec, "interval"));
  if (s.interval > absl::Minutes(10)) return ParamError(info, "interval", "must be at most 10m");
  return s;
}

}  // namespace chaosdrill::injector
