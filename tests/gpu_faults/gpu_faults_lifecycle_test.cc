// The gpu.* faults end to end through the registry, without a GPU: memory pressure and
// compute burn run against fake_gpu_holder (the real helper's protocol over a simulated
// device whose memory a dead process stops using), cuda_errors writes and removes its real
// control file, xid writes the exact record to a stand-in kmsg file. Tests tagged [cuda]
// use the real helper on a real device and skip without one.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gpu_faults/cuda_errors_fault.h"
#include "gpu_faults/cuda_fault_control.h"
#include "gpu_faults/gpu_helper_client.h"
#include "gpu_faults/gpu_status.h"
#include "gpu_faults/memory_pressure_fault.h"
#include "gpu_faults/xid_fault.h"
#include "injector/fault_registry.h"
#include "injector/gpu_kinds.h"
#include "tests/test_support.h"

namespace chaosdrill::injector {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

// Points the faults at fake_gpu_holder with its own simulated device for the test's life.
class FakeGpu {
 public:
  FakeGpu() {
    setenv("CHAOSDRILL_GPU_HELPER", FAKE_GPU_HOLDER, 1);
    setenv("FAKE_GPU_DIR", dir_.path().c_str(), 1);
    unsetenv("FAKE_GPU_NO_DEVICE");
    unsetenv("FAKE_GPU_HOLD_FAIL");
  }
  ~FakeGpu() {
    unsetenv("CHAOSDRILL_GPU_HELPER");
    unsetenv("FAKE_GPU_DIR");
    unsetenv("FAKE_GPU_NO_DEVICE");
    unsetenv("FAKE_GPU_HOLD_FAIL");
  }
  // Free memory as a separate process sees it.
  uint64_t ObserverFree() const {
    gpu::GpuInfo info;
    gpu::GpuError error;
    REQUIRE(gpu::ProbeGpu(FAKE_GPU_HOLDER, 0, &info, &error));
    return info.free;
  }

 private:
  testing::TempDir dir_;
};

const FaultFactory& Factory(absl::string_view kind) {
  RegisterBuiltinFaults();
  absl::StatusOr<const FaultFactory*> f = FaultRegistry::Global().Find(kind);
  REQUIRE(f.ok());
  return **f;
}

FaultPtr Create(absl::string_view kind, std::map<std::string, std::string> params) {
  absl::StatusOr<FaultPtr> fault =
      Factory(kind).Create(FaultSpec{.kind = std::string(kind), .params = std::move(params)});
  INFO(fault.status().ToString());
  REQUIRE(fault.ok());
  return std::move(*fault);
}

bool ProcessExists(pid_t pid) { return gpu::ProcessStartTime(pid) != 0; }

TEST_CASE("every gpu kind is registered and described", "[gpu]") {
  RegisterBuiltinFaults();
  for (const FaultKindInfo* info : GpuKindInfos()) {
    absl::StatusOr<const FaultFactory*> f = FaultRegistry::Global().Find(info->kind);
    REQUIRE(f.ok());
    CHECK((*f)->info().params.size() == info->params.size());
  }
  CHECK(GpuKindInfos().size() == 4);
}

TEST_CASE("gpu preflight says no CUDA device visible and why", "[gpu]") {
  unsetenv("CHAOSDRILL_GPU_HELPER");
  PreflightResult preflight = GpuDevicePreflight();
  if (testing::SkipUnless(!preflight.available, "a CUDA device is visible here")) return;
  CHECK_THAT(preflight.reason, Catch::StartsWith("no CUDA device visible (cudaGetDeviceCount: "));
  CHECK_FALSE(preflight.fix.empty());
  // The same answer from Create+Inject, as FailedPrecondition, with nothing left behind.
  FaultPtr fault = Create("gpu.memory_pressure", {{"fraction", "0.5"}});
  absl::Status st = fault->Inject();
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(st.message()), Catch::Contains("no CUDA device visible"));
  CHECK(fault->RevertRecord()["pid"] == 0);
  CHECK(fault->Revert().ok());
}

TEST_CASE("memory pressure holds what other processes see as the target and frees on revert",
          "[gpu]") {
  FakeGpu gpu;
  const uint64_t baseline = gpu.ObserverFree();
  FaultPtr fault = Create("gpu.memory_pressure", {{"fraction", "90%"}});
  REQUIRE(fault->Inject().ok());
  nlohmann::json record = fault->RevertRecord();
  pid_t pid = record["pid"].get<pid_t>();
  REQUIRE(pid > 0);
  CHECK(record["pgid"] == pid);
  CHECK(record["start_time"].get<uint64_t>() == gpu::ProcessStartTime(pid));
  CHECK(getpgid(pid) == pid);  // its own process group
  // A separate process sees 10% of 80 GiB free, within the fault's tolerance (0.05%).
  const double target = 0.1 * 80 * kGiB;
  CHECK(std::abs(static_cast<double>(gpu.ObserverFree()) - target) <= 40.0 * (1 << 20));
  CHECK_THAT(fault->Describe(), Catch::Contains("holder pid"));
  REQUIRE(fault->Revert().ok());
  CHECK_FALSE(ProcessExists(pid));
  CHECK(gpu.ObserverFree() == baseline);
  CHECK(fault->Revert().ok());  // idempotent
}

TEST_CASE("memory pressure size and leave_free aim at the observer's view", "[gpu]") {
  FakeGpu gpu;
  const uint64_t baseline = gpu.ObserverFree();
  {
    FaultPtr fault = Create("gpu.memory_pressure", {{"size", "10GiB"}});
    REQUIRE(fault->Inject().ok());
    CHECK(baseline - gpu.ObserverFree() == 10 * kGiB);
    REQUIRE(fault->Revert().ok());
  }
  {
    FaultPtr fault = Create("gpu.memory_pressure", {{"leave_free", "2GiB"}});
    REQUIRE(fault->Inject().ok());
    CHECK(gpu.ObserverFree() == 2 * kGiB);
    REQUIRE(fault->Revert().ok());
  }
  CHECK(gpu.ObserverFree() == baseline);
}

TEST_CASE("memory pressure fails cleanly when the device cannot give the target", "[gpu]") {
  FakeGpu gpu;
  const uint64_t baseline = gpu.ObserverFree();
  SECTION("asking to leave more free than is free") {
    FaultPtr fault = Create("gpu.memory_pressure", {{"leave_free", "79GiB"}});
    absl::Status st = fault->Inject();
    CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(st.message()), Catch::Contains("less than the target"));
  }
  SECTION("more than there is") {
    FaultPtr fault = Create("gpu.memory_pressure", {{"size", "100GiB"}});
    CHECK(fault->Inject().code() == absl::StatusCode::kResourceExhausted);
  }
  SECTION("running out of memory on the way") {
    setenv("FAKE_GPU_HOLD_FAIL", "oom", 1);
    FaultPtr fault = Create("gpu.memory_pressure", {{"fraction", "0.5"}});
    absl::Status st = fault->Inject();
    CHECK(st.code() == absl::StatusCode::kResourceExhausted);
    CHECK_THAT(std::string(st.message()), Catch::Contains("out of memory"));
    CHECK(fault->RevertRecord()["pid"] == 0);
  }
  SECTION("a device index that is not there") {
    FaultPtr fault = Create("gpu.memory_pressure", {{"size", "1GiB"}, {"device", "5"}});
    absl::Status st = fault->Inject();
    CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(st.message()), Catch::Contains("device 5 not present (1 visible)"));
  }
  CHECK(gpu.ObserverFree() == baseline);  // nothing left holding memory
}

TEST_CASE("memory pressure is undone from its revert record alone", "[gpu]") {
  FakeGpu gpu;
  const uint64_t baseline = gpu.ObserverFree();
  FaultPtr fault = Create("gpu.memory_pressure", {{"size", "20GiB"}});
  REQUIRE(fault->Inject().ok());
  nlohmann::json record = fault->RevertRecord();
  pid_t pid = record["pid"].get<pid_t>();
  // As a fresh process after a crash would: only the JSON.
  REQUIRE(
      Factory("gpu.memory_pressure").RevertFromRecord(nlohmann::json::parse(record.dump())).ok());
  CHECK_FALSE(ProcessExists(pid));
  CHECK(gpu.ObserverFree() == baseline);
  // Again, and with a record whose process is long gone: nothing to do.
  CHECK(Factory("gpu.memory_pressure").RevertFromRecord(record).ok());
  CHECK(fault->Revert().ok());
  CHECK_FALSE(Factory("gpu.memory_pressure").RevertFromRecord({{"pid", 5}}).ok());
}

TEST_CASE("memory pressure holder killed from outside: revert still verifies memory back",
          "[gpu]") {
  FakeGpu gpu;
  const uint64_t baseline = gpu.ObserverFree();
  pid_t holder = 0;
  {
    FaultPtr fault = Create("gpu.memory_pressure", {{"size", "4GiB"}});
    REQUIRE(fault->Inject().ok());
    holder = fault->RevertRecord()["pid"].get<pid_t>();
    // SIGKILL from outside (the drill's "holder crashed" case).
    REQUIRE(kill(holder, SIGKILL) == 0);
    CHECK(fault->Revert().ok());
  }
  CHECK_FALSE(ProcessExists(holder));
  CHECK(gpu.ObserverFree() == baseline);
}

TEST_CASE("memory pressure holder dies with the process that started it", "[gpu]") {
  FakeGpu gpu;
  const uint64_t baseline = gpu.ObserverFree();
  int report[2];
  REQUIRE(pipe(report) == 0);
  pid_t owner = fork();
  REQUIRE(owner >= 0);
  if (owner == 0) {
    // The "agent": injects, tells the test its holder's pid, and dies without reverting.
    close(report[0]);
    auto fault = Factory("gpu.memory_pressure")
                     .Create({.kind = "gpu.memory_pressure", .params = {{"size", "8GiB"}}});
    pid_t holder = 0;
    if (fault.ok() && (*fault)->Inject().ok()) holder = (*fault)->RevertRecord()["pid"];
    ssize_t ignored = write(report[1], &holder, sizeof(holder));
    (void)ignored;
    _exit(0);  // no destructors: the fault is never reverted
  }
  close(report[1]);
  pid_t holder = 0;
  REQUIRE(read(report[0], &holder, sizeof(holder)) == sizeof(holder));
  close(report[0]);
  REQUIRE(holder > 0);
  int status = 0;
  REQUIRE(waitpid(owner, &status, 0) == owner);
  // PR_SET_PDEATHSIG (and stdin EOF) end the holder; bounded wait for it to vanish.
  for (int i = 0; i < 500 && ProcessExists(holder); ++i) usleep(10'000);
  CHECK_FALSE(ProcessExists(holder));
  CHECK(gpu.ObserverFree() == baseline);
}

TEST_CASE("compute burn runs a burner child until revert", "[gpu]") {
  FakeGpu gpu;
  FaultPtr fault = Create("gpu.compute_burn", {{"sm_fraction", "0.5"}, {"duty_cycle", "0.5"}});
  REQUIRE(fault->Inject().ok());
  nlohmann::json record = fault->RevertRecord();
  pid_t pid = record["pid"].get<pid_t>();
  REQUIRE(pid > 0);
  CHECK(ProcessExists(pid));
  CHECK_THAT(fault->Describe(), Catch::Contains("66 of 132 SMs"));
  REQUIRE(fault->Revert().ok());
  CHECK_FALSE(ProcessExists(pid));
  CHECK(fault->Revert().ok());
  CHECK(Factory("gpu.compute_burn").RevertFromRecord(record).ok());
}

TEST_CASE("compute burn is undone from its revert record alone", "[gpu]") {
  FakeGpu gpu;
  FaultPtr fault = Create("gpu.compute_burn", {});
  REQUIRE(fault->Inject().ok());
  nlohmann::json record = fault->RevertRecord();
  REQUIRE(Factory("gpu.compute_burn").RevertFromRecord(record).ok());
  CHECK_FALSE(ProcessExists(record["pid"].get<pid_t>()));
  CHECK(fault->Revert().ok());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE("cuda errors writes the control file and revert removes only its own", "[gpu]") {
  testing::TempDir dir;
  const std::string control = dir.path() + "/cuda.ctl";
  FaultPtr fault = Create("gpu.cuda_errors", {{"control", control},
                                              {"calls", "cudaMalloc,cudaMemcpy"},
                                              {"error", "cudaErrorMemoryAllocation"},
                                              {"probability", "0.1"},
                                              {"seed", "5"}});
  REQUIRE(fault->Inject().ok());
  std::string error;
  auto parsed = gpu::ParseCudaFaultControl(ReadFile(control), &error);
  REQUIRE(parsed.has_value());
  CHECK(parsed->error == 2);
  CHECK(parsed->probability == Approx(0.1));
  CHECK(parsed->seed == 5);
  CHECK(parsed->Matches(gpu::CudaCall::kMemcpy));
  CHECK(parsed->owner == fault->RevertRecord()["owner"]);
  REQUIRE(fault->Revert().ok());
  CHECK_FALSE(std::filesystem::exists(control));
  CHECK(fault->Revert().ok());

  // Someone else's control file at that path is left alone, by Revert and by the record.
  REQUIRE(fault->Inject().ok());
  nlohmann::json record = fault->RevertRecord();
  dir.Write("cuda.ctl", "calls=cudaMalloc\nowner=someone-else\n");
  CHECK(fault->Revert().ok());
  CHECK(Factory("gpu.cuda_errors").RevertFromRecord(record).ok());
  CHECK(std::filesystem::exists(control));
}

TEST_CASE("cuda errors inject fails naming the path when its directory is missing", "[gpu]") {
  FaultPtr fault = Create("gpu.cuda_errors", {{"control", "/nonexistent-dir/x.ctl"}});
  absl::Status st = fault->Inject();
  CHECK(st.code() == absl::StatusCode::kNotFound);
  CHECK_THAT(std::string(st.message()), Catch::Contains("/nonexistent-dir/x.ctl"));
}

TEST_CASE("cuda errors preflight finds the interposer library", "[gpu]") {
  CHECK(Factory("gpu.cuda_errors").Preflight().available);
  CHECK_THAT(CudaFaultLibraryPath(), Catch::EndsWith("libchaosdrill_cuda_fault.so"));
}

TEST_CASE("xid writes the driver's record to the kernel log", "[gpu]") {
  FakeGpu gpu;
  testing::TempDir dir;
  std::string kmsg = dir.Write("kmsg", "");
  SECTION("pci id from the device") {
    auto settings =
        ParseXidSettings({.kind = "gpu.xid", .params = {{"xid", "79"}, {"count", "2"}}});
    REQUIRE(settings.ok());
    XidFault fault(*settings, kmsg);
    REQUIRE(fault.Inject().ok());
    const std::string line =
        "<3>NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off "
        "the bus.\n";
    CHECK(ReadFile(kmsg) == line + line);
    CHECK(fault.written() == 2);
    CHECK(fault.Revert().ok());
  }
  SECTION("placeholder pci id when no device answers") {
    setenv("FAKE_GPU_NO_DEVICE", "1", 1);
    auto settings = ParseXidSettings({.kind = "gpu.xid", .params = {{"xid", "48"}}});
    REQUIRE(settings.ok());
    XidFault fault(*settings, kmsg);
    REQUIRE(fault.Inject().ok());
    CHECK_THAT(ReadFile(kmsg), Catch::StartsWith("<3>NVRM: Xid (PCI:0000:00:00): 48, "));
  }
  SECTION("explicit pci id and message") {
    auto settings = ParseXidSettings(
        {.kind = "gpu.xid",
         .params = {{"xid", "13"}, {"pci", "0000:c1:00"}, {"message", "Graphics Exception"}}});
    REQUIRE(settings.ok());
    XidFault fault(*settings, kmsg);
    REQUIRE(fault.Inject().ok());
    CHECK(ReadFile(kmsg) ==
          "<3>NVRM: Xid (PCI:0000:c1:00): 13, pid='<unknown>', name=<unknown>, Graphics "
          "Exception\n");
  }
  SECTION("an unwritable log is an error naming it") {
    auto settings =
        ParseXidSettings({.kind = "gpu.xid", .params = {{"xid", "79"}, {"pci", "0000:01:00"}}});
    XidFault fault(*settings, dir.path() + "/missing/kmsg");
    absl::Status st = fault.Inject();
    CHECK(st.code() == absl::StatusCode::kNotFound);
    CHECK_THAT(std::string(st.message()), Catch::Contains("missing/kmsg"));
  }
}

TEST_CASE("xid reaches the real kernel log", "[gpu][root]") {
  if (testing::SkipUnless(testing::IsRoot(), "needs root")) return;
  if (testing::SkipUnless(access("/dev/kmsg", W_OK) == 0, "cannot write /dev/kmsg")) return;
  // Read side first, positioned at the end, so only new records are seen.
  int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (testing::SkipUnless(fd >= 0, "cannot read /dev/kmsg")) return;
  lseek(fd, 0, SEEK_END);
  const std::string token = "chaosdrill-test-" + std::to_string(getpid());
  auto settings = ParseXidSettings(
      {.kind = "gpu.xid", .params = {{"xid", "79"}, {"pci", "0000:00:00"}, {"message", token}}});
  REQUIRE(settings.ok());
  XidFault fault(*settings);
  REQUIRE(fault.Inject().ok());
  bool seen = false;
  char buf[8192];
  for (int i = 0; i < 1000 && !seen; ++i) {  // bounded: the record is already in the buffer
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0 && errno == EPIPE) continue;  // overwritten records: keep reading
    if (n <= 0) break;
    buf[n] = '\0';
    std::string record(buf);
    seen = record.find("NVRM: Xid (PCI:0000:00:00): 79, pid='<unknown>', name=<unknown>, " +
                       token) != std::string::npos;
  }
  close(fd);
  CHECK(seen);
}

// Real-device checks: run wherever a GPU is visible.
std::string RealHelperOrSkip() {
  unsetenv("CHAOSDRILL_GPU_HELPER");
  gpu::GpuError error;
  std::string helper = gpu::FindGpuHelper(&error);
  if (helper.empty()) {
    testing::SkipUnless(false, error.message);
    return "";
  }
  gpu::GpuInfo info;
  if (!gpu::ProbeGpu(helper, 0, &info, &error)) {
    testing::SkipUnless(false, error.message);
    return "";
  }
  return helper;
}

TEST_CASE("memory pressure on a real device reaches 50% and frees on revert", "[gpu][cuda]") {
  std::string helper = RealHelperOrSkip();
  if (helper.empty()) return;
  FaultPtr fault = Create("gpu.memory_pressure", {{"fraction", "0.5"}});
  REQUIRE(fault->Inject().ok());
  gpu::GpuInfo info;
  gpu::GpuError error;
  REQUIRE(gpu::ProbeGpu(helper, 0, &info, &error));
  double level = 1.0 - static_cast<double>(info.free) / static_cast<double>(info.total);
  CHECK(level == Approx(0.5).margin(0.0025));
  REQUIRE(fault->Revert().ok());
}

TEST_CASE("compute burn on a real device starts and stops", "[gpu][cuda]") {
  std::string helper = RealHelperOrSkip();
  if (helper.empty()) return;
  FaultPtr fault = Create("gpu.compute_burn", {{"sm_fraction", "0.5"}, {"duty_cycle", "0.5"}});
  REQUIRE(fault->Inject().ok());
  REQUIRE(fault->Revert().ok());
}

}  // namespace
}  // namespace chaosdrill::injector
