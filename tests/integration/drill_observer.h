// Independent witnesses for ground-truth drill tests (tests/integration/ground_truth_test.cc):
// what /proc says about a process over time, what the reference gateway's own Prometheus
// metrics said while the drill ran, the drill's events stream, and `chaosdrill run` as a
// child process. Nothing here asks the runner: a test compares the record against these.
// Every wait is bounded.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "reference/topology.h"
#include "tests/test_support.h"

namespace chaosdrill::integration {

struct ProcInfo {
  char state = 0;  // /proc/PID/stat state letter
  pid_t ppid = 0;
  pid_t pgid = 0;
  uint64_t start_ticks = 0;  // field 22: tells a pid's reuse apart
};
std::optional<ProcInfo> Stat(pid_t pid);  // nullopt: gone
// Every process in /proc (zombies included) with its stat.
std::map<pid_t, ProcInfo> AllProcesses();
// The command line of pid, NULs as spaces ("" when gone).
std::string Cmdline(pid_t pid);

// One Prometheus sample.
struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
std::vector<PromSample> ParsePrometheus(const std::string& body);

// One scrape of the gateway's /metrics: taken between before_ns and after_ns (monotonic).
struct Scrape {
  int64_t before_ns = 0;
  int64_t after_ns = 0;
  std::vector<PromSample> samples;
  // The sum of samples named `name` whose labels include all of `labels`; 0 when none.
  double Sum(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  // The sample with exactly these labels, if present.
  std::optional<double> Get(const std::string& name,
                            const std::map<std::string, std::string>& labels = {}) const;
};

// A change of a watched process's state, bracketed by polls: the last poll that saw the old
// state and the first that saw the new one (monotonic). `to` is 0 when the process vanished.
struct StateChange {
  char from = 0, to = 0;
  int64_t last_old_ns = 0;
  int64_t first_new_ns = 0;
};

// Watches a drill from outside: finds the reference service's topology.json under
// `report_dir` (<report_dir>/<run_id>/reference/topology.json), scrapes the gateway's
// /metrics every `scrape_every`, polls /proc/PID/stat of every role's pid (and of any pid
// given to Watch) about once a millisecond, and remembers the pids of the runner's
// descendants (when `runner_pid` is set) for the no-process-left check.
class DrillObserver {
 public:
  explicit DrillObserver(std::string report_dir, pid_t runner_pid = 0,
                         absl::Duration scrape_every = absl::Milliseconds(10));
  ~DrillObserver();  // Stop()
  DrillObserver(const DrillObserver&) = delete;
  DrillObserver& operator=(const DrillObserver&) = delete;

  void Stop();
  void Watch(pid_t pid);
  // The latest topology read (every ~200 ms), once one with a gateway exists.
  std::optional<reference::Topology> topology() const;
  // The first topology read in which the gateway and the store primary had pids.
  std::optional<reference::Topology> first_topology() const;
  // Waits until the topology is there and every named role has a pid.
  std::optional<reference::Topology> WaitTopology(const std::vector<std::string>& roles,
                                                  absl::Duration timeout);
  std::vector<Scrape> scrapes() const;
  std::vector<StateChange> changes(pid_t pid) const;
  // The state last seen of a watched pid (0 if gone or never seen).
  char last_state(pid_t pid) const;
  // Every (pid, start ticks) seen as a descendant of runner_pid.
  std::map<pid_t, uint64_t> descendants() const;

 private:
  void ScrapeLoop();
  void ProcLoop();

  const std::string report_dir_;
  const pid_t runner_pid_;
  const absl::Duration scrape_every_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::optional<reference::Topology> topology_, first_topology_;
  std::vector<Scrape> scrapes_;
  std::set<pid_t> watched_;
  std::map<pid_t, std::vector<StateChange>> changes_;
  std::map<pid_t, std::pair<char, int64_t>> last_;  // state and when last seen so
  std::map<pid_t, uint64_t> descendants_;
  std::thread scrape_thread_, proc_thread_;
};

// The drill's origin (time zero) on CLOCK_MONOTONIC, from an --events line written after
// the target started (monotonic_ns - t_ns of the first "inject" or baseline "phase" line).
std::optional<int64_t> DrillOrigin(const std::string& events_file);
std::vector<nlohmann::json> ReadEvents(const std::string& events_file);
std::optional<nlohmann::json> FindEvent(const std::string& events_file, const std::string& type,
                                        const std::string& fault = "");

// A hard link to build/chaosdrill inside `dir` (same filesystem), taken once the binary has
// not changed for 3 s and answers --version: other engineers relink build/chaosdrill while
// tests run, and the linker replaces the file (a new inode), so the drill's children keep
// running the binary the test started with. "" when none could be taken within `timeout`.
std::string StableChaosdrill(const std::string& dir, absl::Duration timeout = absl::Minutes(3));

// The one JSON record in `dir` (the drill names it <run_id>.json).
std::optional<std::string> RecordIn(const std::string& dir);

}  // namespace chaosdrill::integration
