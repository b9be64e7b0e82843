// stress.memory: one worker process maps `size` bytes (or a share of RAM) of anonymous
// memory, writes to every page so it is really resident, optionally mlocks it, reports
// ready, and holds it until killed. The kernel frees it all when the worker dies.
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "injector/child_process.h"
#include "injector/fault_params.h"
#include "injector/fault_registry.h"
#include "injector/preflight.h"
#include "injector/stress_fault.h"

namespace chaosdrill::injector {
namespace {

struct MemorySettings {
  uint64_t bytes = 0;
  bool lock = false;
  int64_t max_runtime_ns = 0;  // exit by itself after this long; 0 = never
};

int MemoryWorker(const void* arg, int ready_fd) {
  const auto* s = static_cast<const MemorySettings*>(arg);
  int64_t start = MonotonicNanos();
  void* p = mmap(nullptr, s->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return errno;
  const long page = sysconf(_SC_PAGESIZE);
  auto* bytes = static_cast<volatile unsigned char*>(p);
  for (uint64_t off = 0; off < s->bytes; off += static_cast<uint64_t>(page)) {
    bytes[off] = static_cast<unsigned char>(off / static_cast<uint64_t>(page)) | 1;
  }
  if (s->lock && mlock(p, s->bytes) != 0) return errno;
  ReportWorkerReady(ready_fd);
  while (true) {
    timespec ts{1, 0};
    nanosleep(&ts, nullptr);
    if (s->max_runtime_ns > 0 && MonotonicNanos() - start >= s->max_runtime_ns) return 0;
  }
}

uint64_t TotalRam() {
  struct sysinfo si;
  if (sysinfo(&si) != 0) return 0;
  return static_cast<uint64_t>(si.totalram) * si.mem_unit;
}

const FaultKindInfo& MemoryInfo() {
  static const FaultKindInfo* info = [] {
    auto* i = new FaultKindInfo;
    i->kind = "stress.memory";
    i->summary = "allocate and touch B bytes (or a % of RAM) in a worker process";
    i->takes_duration = true;
    i->params = {
        {"size",
         ParamType::kSizeOrPercent,
         true,
         "",
         "bytes to hold (512MiB, 2GiB) or a share of total RAM (25%)",
         {}},
        {"lock",
         ParamType::kBool,
         false,
         "false",
         "mlock the memory so it cannot be swapped (needs RLIMIT_MEMLOCK or root)",
         {}},
        {"cgroup",
         ParamType::kString,
         false,
         "",
         "cgroup v2 (e.g. /chaos or /sys/fs/cgroup/chaos) to place the worker in (and charge "
         "the memory to)",
         {}},
    };
    return i;
  }();
  return *info;
}

class StressMemoryFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override { return MemoryInfo(); }
  PreflightResult Preflight() const override { return StressPreflight(); }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    RETURN_IF_ERROR(ValidateFaultSpec(info(), spec));
    FaultParams params(info(), spec);
    ASSIGN_OR_RETURN(auto size, params.SizeOrPercent("size"));
    ASSIGN_OR_RETURN(auto lock, params.Bool("lock"));
    uint64_t total = TotalRam();
    auto settings = std::make_shared<MemorySettings>();
    settings->bytes = size->Resolve(total);
    settings->lock = lock.value_or(false);
    if (settings->bytes == 0) return params.Error("size", "must be above 0 bytes");
    if (total > 0 && settings->bytes > total) {
      return params.Error("size", absl::StrCat(settings->bytes, " bytes is more than the ", total,
                                               " bytes of RAM"));
    }
    if (spec.duration) {
      settings->max_runtime_ns = absl::ToInt64Nanoseconds(*spec.duration + kSafetyGrace);
    }
    auto cgroup = params.String("cgroup");
    // Touching runs at GB/s; allow slow, busy machines plenty.
    absl::Duration ready_timeout =
        absl::Seconds(30) + absl::Seconds(static_cast<int64_t>(settings->bytes >> 27));
    return FaultPtr(new StressFault("stress.memory",
                                    absl::StrCat(size->ToString(), " (", settings->bytes, " bytes)",
                                                 settings->lock ? ", locked" : ""),
                                    1, &MemoryWorker, settings, cgroup ? CgroupDir(*cgroup) : "",
                                    ready_timeout));
  }
  absl::Status RevertFromRecord(const nlohmann::json& record) const override {
    return RevertStressFromRecord(record);
  }
};

}  // namespace

CHAOSDRILL_REGISTER_FAULT(StressMemoryFactory)

}  // namespace chaosdrill::injector
