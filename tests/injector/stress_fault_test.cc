// stress.cpu and stress.memory with real worker processes, measured in /proc.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "injector/child_process.h"
#include "injector/fault_registry.h"
#include "tests/injector/process_helpers.h"
#include "tests/test_support.h"

namespace chaosdrill::injector {
namespace {

const FaultFactory& Factory(const std::string& kind) {
  RegisterBuiltinFaults();
  auto f = FaultRegistry::Global().Find(kind);
  REQUIRE(f.ok());
  return **f;
}

FaultPtr MustCreate(const std::string& kind, std::map<std::string, std::string> params) {
  FaultSpec spec{kind, std::move(params), absl::Minutes(5)};
  auto f = Factory(kind).Create(spec);
  INFO(f.status().ToString());
  REQUIRE(f.ok());
  return std::move(*f);
}

std::vector<ProcessId> Workers(const Fault& f) {
  std::vector<ProcessId> out;
  const nlohmann::json record = f.RevertRecord();
  for (const auto& w : record["workers"]) out.push_back(*ProcessId::FromJson(w));
  return out;
}

bool AnyAlive(const std::vector<ProcessId>& ids) {
  for (const ProcessId& id : ids) {
    if (StatIfSameAndAlive(id)) return true;
  }
  return false;
}

// Nanoseconds on CPU and waiting to run, from /proc/PID/schedstat.
struct SchedStat {
  uint64_t run_ns = 0;
  uint64_t wait_ns = 0;
};
SchedStat ReadSchedStat(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/schedstat"));
  SchedStat s;
  in >> s.run_ns >> s.wait_ns;
  return s;
}

uint64_t SmapsRssKbOfMappingSized(pid_t pid, uint64_t size_kb) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/smaps"));
  std::string line;
  bool in_mapping = false;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() >= 2 && f[0] == "Size:") {
      uint64_t kb = 0;
      in_mapping = absl::SimpleAtoi(f[1], &kb) && kb == size_kb;
    } else if (in_mapping && f.size() >= 2 && f[0] == "Rss:") {
      uint64_t kb = 0;
      if (absl::SimpleAtoi(f[1], &kb)) return kb;
    }
  }
  return 0;
}

TEST_CASE("stress.cpu holds one core at 50% within 3 points", "[stress]") {
  FaultPtr f = MustCreate("stress.cpu", {{"cores", "1"}, {"load", "50%"}});
  REQUIRE(f->Inject().ok());
  std::vector<ProcessId> workers = Workers(*f);
  REQUIRE(workers.size() == 1);
  pid_t pid = workers[0].pid;
  SchedStat settle = ReadSchedStat(pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past the start-up edge
  // Over 3 s of wall time W the worker runs `run` and spends `wait` runnable but kept off
  // the CPU by other load (/proc/PID/schedstat; wake-up latency counts as wait too).
  // The worker spins until its CPU time reaches load x the wall time it could have run, so:
  //  - run / W <= 50 % + 3: it never takes more than its share, however idle the machine;
  //  - run / (W - wait) >= 50 % - 3: of the time it was not kept off the CPU it got its
  //    share. Time spent waiting is the only CPU it may lose (after being starved for more
  //    than 100 ms it forgives the debt instead of burning at 100 %), and it loses at most
  //    load x wait <= wait of it. On an idle machine wait ~ 0 and both bounds are the
  //    plain +-3 points; on a loaded one the lower bound is what the worker got relative
  //    to what it could get, so other engineers' builds cannot fail the test, while a
  //    worker that idles when it should spin still does.
  // One allowance on the upper bound: CPU owed from before the window (the worker was kept
  // waiting during the settling time) is caught up inside it. That debt is at most
  // load x the wait before the window, and never more than the worker's 100 ms cap.
  SchedStat a = ReadSchedStat(pid);
  const double owed = std::min(0.1, 0.5 * static_cast<double>(a.wait_ns - settle.wait_ns) / 1e9);
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  SchedStat b = ReadSchedStat(pid);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double run = static_cast<double>(b.run_ns - a.run_ns) / 1e9;
  double wait = static_cast<double>(b.wait_ns - a.wait_ns) / 1e9;
  double share = run / wall;
  double share_of_available = run / std::max(wall - wait, 1e-3);
  std::printf(
      "stress.cpu 50%%: %.3f s CPU over %.3f s wall = %.1f%%; %.3f s runnable but waiting; "
      "%.1f%% of the time it could run; %.3f s owed from before\n",
      run, wall, share * 100, wait, share_of_available * 100, owed);
  CHECK(share <= 0.53 + owed / wall);
  CHECK(share_of_available >= 0.47);
  REQUIRE(f->Revert().ok());
  CHECK_FALSE(AnyAlive(workers));
}

TEST_CASE("stress.cpu runs one worker per core in its own process group", "[stress]") {
  FaultPtr f = MustCreate("stress.cpu", {{"cores", "2"}, {"load", "10%"}});
  REQUIRE(f->Inject().ok());
  std::vector<ProcessId> workers = Workers(*f);
  REQUIRE(workers.size() == 2);
  pid_t pgid = f->RevertRecord()["pgid"].get<pid_t>();
  CHECK(pgid == workers[0].pid);
  for (const ProcessId& w : workers) {
    auto st = ReadProcStat(w.pid);
    REQUIRE(st.ok());
    CHECK(st->pgid == pgid);
    CHECK(st->pgid != getpgrp());
  }
  REQUIRE(f->Revert().ok());
  CHECK_FALSE(AnyAlive(workers));
  CHECK(testing::LiveChildren().empty());
  CHECK(f->Revert().ok());  // idempotent
}

TEST_CASE("stress.memory reaches its size in RSS within 2%", "[stress]") {
  // An odd size, so its mapping is easy to find in smaps.
  const uint64_t size = 100 * 1024 * 1024 + 12 * 1024;
  FaultPtr f = MustCreate("stress.memory", {{"size", std::to_string(size)}});
  REQUIRE(f->Inject().ok());
  std::vector<ProcessId> workers = Workers(*f);
  REQUIRE(workers.size() == 1);
  uint64_t rss_kb = SmapsRssKbOfMappingSized(workers[0].pid, size / 1024);
  std::printf("stress.memory %llu KiB: mapping RSS %llu KiB\n",
              static_cast<unsigned long long>(size / 1024),
              static_cast<unsigned long long>(rss_kb));
  CHECK(rss_kb >= size / 1024 * 98 / 100);
  CHECK(rss_kb <= size / 1024 * 102 / 100);
  REQUIRE(f->Revert().ok());
  CHECK_FALSE(AnyAlive(workers));
}

TEST_CASE("stress.memory size as a share of RAM resolves against MemTotal and is held",
          "[stress]") {
  // MemTotal from /proc/meminfo (kB), read independently of the fault's sysinfo().
  uint64_t mem_total_kb = 0;
  {
    std::ifstream in("/proc/meminfo");
    std::string key, unit;
    while (in >> key >> mem_total_kb >> unit && key != "MemTotal:") {
    }
  }
  REQUIRE(mem_total_kb > 0);
  const double total = static_cast<double>(mem_total_kb) * 1024;
  // A share that comes to about 96 MiB whatever the machine, written with 6 decimals.
  const double percent = 96.0 * 1024 * 1024 / total * 100;
  const std::string size = absl::StrFormat("%.6f%%", percent);
  FaultPtr f = MustCreate("stress.memory", {{"size", size}});
  // Describe() says what it resolved to: "<share>% (N bytes)".
  std::string description = f->Describe();
  size_t open = description.find(" (");
  uint64_t bytes = 0;
  REQUIRE(open != std::string::npos);
  REQUIRE(absl::SimpleAtoi(
      description.substr(open + 2, description.find(" bytes", open) - open - 2), &bytes));
  const double expected = total * percent / 100;
  std::printf("stress.memory %s of %llu KiB RAM: %llu bytes (expected %.0f)\n", size.c_str(),
              static_cast<unsigned long long>(mem_total_kb), static_cast<unsigned long long>(bytes),
              expected);
  CHECK(std::abs(static_cast<double>(bytes) - expected) <= 4096);
  REQUIRE(f->Inject().ok());
  std::vector<ProcessId> workers = Workers(*f);
  REQUIRE(workers.size() == 1);
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t mapping_kb = (bytes + page - 1) / page * page / 1024;
  uint64_t rss_kb = SmapsRssKbOfMappingSized(workers[0].pid, mapping_kb);
  std::printf("stress.memory: mapping of %llu KiB has RSS %llu KiB\n",
              static_cast<unsigned long long>(mapping_kb), static_cast<unsigned long long>(rss_kb));
  CHECK(rss_kb >= mapping_kb * 98 / 100);
  CHECK(rss_kb <= mapping_kb * 102 / 100);
  REQUIRE(f->Revert().ok());
  CHECK_FALSE(AnyAlive(workers));
}

TEST_CASE("stress.memory refuses a share of RAM above 100%", "[stress]") {
  FaultSpec spec{"stress.memory", {{"size", "150%"}}, std::nullopt};
  auto f = Factory("stress.memory").Create(spec);
  REQUIRE_FALSE(f.ok());
  CHECK(f.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(f.status().message()), Catch::Contains("\"size\""));
}

TEST_CASE("SIGKILL of the stress holder leaves no worker alive", "[stress]") {
  RegisterBuiltinFaults();
  int pipefd[2];
  REQUIRE(pipe(pipefd) == 0);
  pid_t holder = fork();
  REQUIRE(holder >= 0);
  if (holder == 0) {
    close(pipefd[0]);
    for (const char* kind : {"stress.cpu", "stress.memory"}) {
      FaultSpec spec{kind, {}, std::nullopt};
      if (std::string(kind) == "stress.cpu") spec.params = {{"cores", "2"}, {"load", "20%"}};
      if (std::string(kind) == "stress.memory") spec.params = {{"size", "16MiB"}};
      auto f = FaultRegistry::Global().Find(kind).value()->Create(spec);
      if (!f.ok() || !(*f)->Inject().ok()) _exit(1);
      std::string line = (*f)->RevertRecord().dump() + "\n";
      (void)!write(pipefd[1], line.data(), line.size());
      (void)f->release();  // leak: the holder "crashes" with its workers running
    }
    close(pipefd[1]);
    while (true) pause();
  }
  close(pipefd[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  std::vector<ProcessId> workers;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const nlohmann::json record = nlohmann::json::parse(line);
    for (const auto& w : record["workers"]) {
      workers.push_back(*ProcessId::FromJson(w));
    }
  }
  REQUIRE(workers.size() == 3);
  CHECK(AnyAlive(workers));
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  CHECK(PollUntil([&] { return !AnyAlive(workers); }, absl::Seconds(10)));
}

TEST_CASE("stress revert from the record alone kills exactly the recorded workers", "[stress]") {
  FaultPtr f = MustCreate("stress.cpu", {{"cores", "1"}, {"load", "10%"}});
  REQUIRE(f->Inject().ok());
  std::vector<ProcessId> workers = Workers(*f);
  nlohmann::json record = f->RevertRecord();
  REQUIRE(Factory("stress.cpu").RevertFromRecord(record).ok());
  CHECK_FALSE(AnyAlive(workers));
  CHECK(Factory("stress.cpu").RevertFromRecord(record).ok());  // idempotent
  CHECK(f->Revert().ok());                                     // reaps the zombie
  CHECK(testing::LiveChildren().empty());
}

TEST_CASE("stress faults reject bad parameters naming the field", "[stress]") {
  struct Case {
    std::string kind;
    std::map<std::string, std::string> params;
    std::string field;
  };
  std::vector<Case> cases = {
      {"stress.cpu", {{"cores", "0"}}, "cores"},
      {"stress.cpu", {{"cores", "-1"}}, "cores"},
      {"stress.cpu", {{"cores", "100000"}}, "cores"},
      {"stress.cpu", {{"load", "150%"}}, "load"},
      {"stress.cpu", {{"load", "0%"}}, "load"},
      {"stress.cpu", {{"threads", "2"}}, "threads"},
      {"stress.memory", {}, "size"},
      {"stress.memory", {{"size", "lots"}}, "size"},
      {"stress.memory", {{"size", "1000TiB"}}, "size"},
      {"stress.memory", {{"size", "1MiB"}, {"lock", "yes"}}, "lock"},
  };
  for (const Case& c : cases) {
    FaultSpec spec{c.kind, c.params, std::nullopt};
    auto f = Factory(c.kind).Create(spec);
    INFO(c.kind << " " << c.field);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(f.status().message()).find("\"" + c.field + "\"") != std::string::npos);
  }
}

TEST_CASE("stress.cpu into a missing cgroup fails naming it and leaves no worker", "[stress]") {
  FaultPtr f = MustCreate("stress.cpu", {{"cgroup", "/chaosdrill-test-no-such-cgroup"}});
  absl::Status s = f->Inject();
  REQUIRE_FALSE(s.ok());
  CHECK(std::string(s.message()).find("chaosdrill-test-no-such-cgroup") != std::string::npos);
  CHECK(testing::LiveChildren().empty());
}

TEST_CASE("stress.cpu places its workers in the given cgroup", "[stress][root]") {
  if (testing::SkipUnless(testing::IsRoot(), "needs root to create a cgroup")) return;
  if (testing::SkipUnless(access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0,
                          "needs a cgroup v2 hierarchy at /sys/fs/cgroup")) {
    return;
  }
  std::string dir = absl::StrCat("/sys/fs/cgroup/chaosdrill-test-", getpid());
  if (testing::SkipUnless(mkdir(dir.c_str(), 0755) == 0, "cannot create a test cgroup")) return;
  struct RemoveDir {
    std::string d;
    ~RemoveDir() { rmdir(d.c_str()); }
  } remove{dir};
  FaultPtr f = MustCreate("stress.cpu", {{"cgroup", dir}, {"load", "10%"}});
  absl::Status s = f->Inject();
  if (testing::SkipUnless(s.ok(), absl::StrCat("cgroup placement refused: ", s.ToString()))) {
    return;
  }
  std::vector<ProcessId> workers = Workers(*f);
  std::ifstream cg(absl::StrCat("/proc/", workers[0].pid, "/cgroup"));
  std::string line;
  std::getline(cg, line);
  CHECK(line == absl::StrCat("0::/chaosdrill-test-", getpid()));
  REQUIRE(f->Revert().ok());
}

}  // namespace
}  // namespace chaosdrill::injector
