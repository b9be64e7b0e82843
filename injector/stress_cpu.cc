// stress.cpu: hold `cores` CPUs at `load` percent. Each worker is a forked process that
// duty-cycles a busy loop against its own CPU clock: it spins while the CPU time it has
// used is below load x elapsed wall time, and sleeps while it is ahead. Measuring its own
// CPU time (not wall time) keeps the share right when the machine is busy; its debt is
// capped at kMaxDebt so that, after being starved, it does not burn at 100 % to catch up.
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

constexpr int64_t kMaxDebtNs = 100'000'000;  // 100 ms
constexpr int64_t kSliceNs = 10'000'000;     // spin or sleep at most 10 ms at a time

struct CpuSettings {
  double load = 1.0;           // 0 < load <= 1
  int64_t max_runtime_ns = 0;  // exit by itself after this long; 0 = never
};

int64_t CpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void SleepNanos(int64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int CpuWorker(const void* arg, int ready_fd) {
  const auto* s = static_cast<const CpuSettings*>(arg);
  ReportWorkerReady(ready_fd);
  int64_t start = MonotonicNanos();
  const int64_t deadline = s->max_runtime_ns > 0 ? start + s->max_runtime_ns : 0;
  int64_t cpu0 = CpuNanos();
  volatile uint64_t sink = 0;
  while (true) {
    int64_t now = MonotonicNanos();
    if (deadline != 0 && now >= deadline) return 0;
    int64_t used = CpuNanos() - cpu0;
    int64_t debt = static_cast<int64_t>(s->load * static_cast<double>(now - start)) - used;
    if (debt > kMaxDebtNs) {
      // Starved by others: forgive the excess instead of catching up at 100 %.
      start += static_cast<int64_t>(static_cast<double>(debt - kMaxDebtNs) / s->load);
      debt = kMaxDebtNs;
    }
    if (debt > 0) {
      int64_t until = used + std::min(debt, kSliceNs);
      while (CpuNanos() - cpu0 < until) {
        for (int i = 0; i < 1000; ++i) sink = sink * 6364136223846793005ULL + 1;
      }
    } else {
      // Ahead by -debt of CPU time: at `load`, that is -debt / load of wall time.
      int64_t wait = static_cast<int64_t>(static_cast<double>(-debt) / s->load);
      SleepNanos(std::clamp<int64_t>(wait, 100'000, kSliceNs));
    }
  }
}

const FaultKindInfo& CpuInfo() {
  static const FaultKindInfo* info = [] {
    auto* i = new FaultKindInfo;
    i->kind = "stress.cpu";
    i->summary = "hold N cores at P% load with duty-cycled worker processes";
    i->takes_duration = true;
    i->params = {
        {"cores", ParamType::kInt, false, "1", "number of worker processes (one per core)", {}},
        {"load", ParamType::kPercent, false, "100%", "CPU share each worker uses, per core", {}},
        {"cgroup",
         ParamType::kString,
         false,
         "",
         "cgroup v2 (e.g. /chaos or /sys/fs/cgroup/chaos) to place the workers in",
         {}},
    };
    return i;
  }();
  return *info;
}

class StressCpuFactory : public FaultFactory {
 public:
  const FaultKindInfo& info() const override { return CpuInfo(); }
  PreflightResult Preflight() const override { return StressPreflight(); }
  absl::StatusOr<FaultPtr> Create(const FaultSpec& spec) const override {
    RETURN_IF_ERROR(ValidateFaultSpec(info(), spec));
    FaultParams params(info(), spec);
    ASSIGN_OR_RETURN(auto cores, params.Int("cores"));
    ASSIGN_OR_RETURN(auto load, params.Percent("load"));
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (*cores < 1) return params.Error("cores", "must be at least 1");
    if (*cores > 4 * std::max<long>(online, 1)) {
      return params.Error("cores",
                          absl::StrCat(*cores, " is more than 4x the ", online, " online CPUs"));
    }
    if (*load <= 0) return params.Error("load", "must be above 0%");
    auto settings = std::make_shared<CpuSettings>();
    settings->load = *load / 100.0;
    if (spec.duration) {
      settings->max_runtime_ns = absl::ToInt64Nanoseconds(*spec.duration + kSafetyGrace);
    }
    auto cgroup = params.String("cgroup");
    return FaultPtr(new StressFault("stress.cpu",
                                    absl::StrCat(*cores, " core(s) at ", *load, "% load"),
                                    static_cast<int>(*cores), &CpuWorker, settings,
                                    cgroup ? CgroupDir(*cgroup) : "", absl::Seconds(10)));
  }
  absl::Status RevertFromRecord(const nlohmann::json& record) const override {
    return RevertStressFromRecord(record);
  }
};

}  // namespace

CHAOSDRILL_REGISTER_FAULT(StressCpuFactory)

}  // namespace chaosdrill::injector
