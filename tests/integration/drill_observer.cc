#include "tests/integration/drill_observer.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/reference/service_test_util.h"
#include "tests/test_support.h"

namespace chaosdrill::integration {

namespace fs = std::filesystem;
using testing::MonoNs;
using testing::ReadAll;

std::optional<ProcInfo> Stat(pid_t pid) {
  // One read(2): /proc/PID/stat is generated whole.
  int fd = open(absl::StrCat("/proc/", pid, "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return std::nullopt;
  std::string_view stat(buf, static_cast<size_t>(n));
  size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos || paren + 2 >= stat.size()) return std::nullopt;
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(stat.data() + paren + 2, stat.size() - paren - 2), ' ');
  if (f.size() < 20) return std::nullopt;
  ProcInfo p;
  p.state = f[0].empty() ? 0 : f[0][0];
  (void)absl::SimpleAtoi(f[1], &p.ppid);
  (void)absl::SimpleAtoi(f[2], &p.pgid);
  (void)absl::SimpleAtoi(f[19], &p.start_ticks);  // field 22 counted from 1 = index 19 here
  return p;
}

std::map<pid_t, ProcInfo> AllProcesses() {
  std::map<pid_t, ProcInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    if (auto s = Stat(pid)) out[pid] = *s;
  }
  return out;
}

std::string Cmdline(pid_t pid) {
  std::string c = ReadAll(absl::StrCat("/proc/", pid, "/cmdline"));
  for (char& ch : c) {
    if (ch == '\0') ch = ' ';
  }
  return c;
}

std::vector<PromSample> ParsePrometheus(const std::string& body) {
  std::vector<PromSample> out;
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    PromSample s;
    size_t name_end = line.find_first_of("{ ");
    if (name_end == absl::string_view::npos) continue;
    s.name = std::string(line.substr(0, name_end));
    absl::string_view rest = line.substr(name_end);
    if (rest[0] == '{') {
      const size_t close = rest.find('}');
      if (close == absl::string_view::npos) continue;
      // Label values here hold no ',' or '"' (addresses, codes, method names).
      for (absl::string_view kv :
           absl::StrSplit(rest.substr(1, close - 1), ',', absl::SkipEmpty())) {
        const size_t eq = kv.find('=');
        if (eq == absl::string_view::npos || kv.size() < eq + 3) continue;
        s.labels[std::string(kv.substr(0, eq))] =
            std::string(kv.substr(eq + 2, kv.size() - eq - 3));
      }
      rest = rest.substr(close + 1);
    }
    if (rest.empty() || rest[0] != ' ') continue;
    absl::string_view value = rest.substr(1);
    if (size_t sp = value.find(' '); sp != absl::string_view::npos) value = value.substr(0, sp);
    if (!absl::SimpleAtod(value, &s.value)) continue;
    out.push_back(std::move(s));
  }
  return out;
}

double Scrape::Sum(const std::string& name,
                   const std::map<std::string, std::string>& labels) const {
  double sum = 0;
  for (const PromSample& s : samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      all = all && it != s.labels.end() && it->second == v;
    }
    if (all) sum += s.value;
  }
  return sum;
}

std::optional<double> Scrape::Get(const std::string& name,
                                  const std::map<std::string, std::string>& labels) const {
  for (const PromSample& s : samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

DrillObserver::DrillObserver(std::string report_dir, pid_t runner_pid, absl::Duration scrape_every)
    : report_dir_(std::move(report_dir)), runner_pid_(runner_pid), scrape_every_(scrape_every) {
  scrape_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "obs-scrape");
    ScrapeLoop();
  });
  proc_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "obs-proc");
    ProcLoop();
  });
}

DrillObserver::~DrillObserver() { Stop(); }

void DrillObserver::Stop() {
  stop_ = true;
  if (scrape_thread_.joinable()) scrape_thread_.join();
  if (proc_thread_.joinable()) proc_thread_.join();
}

void DrillObserver::Watch(pid_t pid) {
  std::lock_guard lock(mu_);
  watched_.insert(pid);
}

std::optional<reference::Topology> DrillObserver::topology() const {
  std::lock_guard lock(mu_);
  return topology_;
}

std::optional<reference::Topology> DrillObserver::first_topology() const {
  std::lock_guard lock(mu_);
  return first_topology_;
}

std::optional<reference::Topology> DrillObserver::WaitTopology(
    const std::vector<std::string>& roles, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (auto t = topology()) {
      bool all = true;
      for (const std::string& r : roles) {
        auto it = t->roles.find(r);
        all = all && it != t->roles.end() && it->second.pid > 0;
      }
      if (all) return t;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return std::nullopt;
}

std::vector<Scrape> DrillObserver::scrapes() const {
  std::lock_guard lock(mu_);
  return scrapes_;
}

std::vector<StateChange> DrillObserver::changes(pid_t pid) const {
  std::lock_guard lock(mu_);
  auto it = changes_.find(pid);
  return it == changes_.end() ? std::vector<StateChange>{} : it->second;
}

char DrillObserver::last_state(pid_t pid) const {
  std::lock_guard lock(mu_);
  auto it = last_.find(pid);
  return it == last_.end() ? 0 : it->second.first;
}

std::map<pid_t, uint64_t> DrillObserver::descendants() const {
  std::lock_guard lock(mu_);
  return descendants_;
}

void DrillObserver::ScrapeLoop() {
  std::string topology_path;
  int64_t next_topology = 0;
  std::string metrics;
  while (!stop_.load()) {
    const int64_t now = MonoNs();
    if (now >= next_topology) {
      next_topology = now + 200'000'000;
      if (topology_path.empty()) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(report_dir_, ec)) {
          fs::path p = entry.path() / "reference" / "topology.json";
          if (entry.is_directory() && fs::exists(p, ec)) topology_path = p.string();
        }
      }
      if (!topology_path.empty()) {
        auto t = reference::Topology::Load(topology_path);
        if (t.ok() && !t->metrics.empty()) {
          metrics = t->metrics;
          std::lock_guard lock(mu_);
          topology_ = *t;
          auto has = [&](const char* role) {
            auto it = t->roles.find(role);
            return it != t->roles.end() && it->second.pid > 0;
          };
          if (!first_topology_ && has("gateway") && has("store.primary")) first_topology_ = *t;
          for (const auto& [name, role] : t->roles) {
            if (role.pid > 0) watched_.insert(role.pid);
          }
        }
      }
    }
    if (!metrics.empty()) {
      Scrape s;
      s.before_ns = MonoNs();
      const std::string response = reference::testing::HttpGet(metrics, "/metrics");
      s.after_ns = MonoNs();
      const size_t body = response.find("\r\n\r\n");
      if (response.rfind("HTTP/1.0 200", 0) == 0 && body != std::string::npos) {
        s.samples = ParsePrometheus(response.substr(body + 4));
        std::lock_guard lock(mu_);
        scrapes_.push_back(std::move(s));
      }
    }
    absl::SleepFor(scrape_every_);
  }
}

void DrillObserver::ProcLoop() {
  int64_t next_tree = 0;
  while (!stop_.load()) {
    std::set<pid_t> pids;
    {
      std::lock_guard lock(mu_);
      pids = watched_;
    }
    for (pid_t pid : pids) {
      auto st = Stat(pid);
      const int64_t t = MonoNs();
      // A zombie is dead: it runs nothing and holds nothing but its pid.
      const char state = st && st->state != 'Z' && st->state != 'X' ? st->state : 0;
      std::lock_guard lock(mu_);
      auto it = last_.find(pid);
      if (it == last_.end()) {
        if (state != 0) last_[pid] = {state, t};
        continue;
      }
      auto& [old_state, old_seen] = it->second;
      if (old_state == 0) continue;  // gone for good (a reused pid is not ours)
      // 'R' and 'S' (and 'D') are all "running" for these tests: only stopped/gone count.
      auto running = [](char c) { return c != 'T' && c != 't' && c != 0; };
      if ((old_state == 'T') != (state == 'T') || (running(old_state) && state == 0)) {
        changes_[pid].push_back(
            {.from = old_state, .to = state, .last_old_ns = old_seen, .first_new_ns = t});
      }
      old_state = state;
      old_seen = t;
    }
    if (runner_pid_ > 0 && MonoNs() >= next_tree) {
      next_tree = MonoNs() + 100'000'000;
      // Descendants of the runner: parent links, repeated to a fixed point.
      std::map<pid_t, ProcInfo> all = AllProcesses();
      std::set<pid_t> tree = {runner_pid_};
      for (bool grew = true; grew;) {
        grew = false;
        for (const auto& [pid, info] : all) {
          if (!tree.count(pid) && tree.count(info.ppid)) grew = tree.insert(pid).second;
        }
      }
      std::lock_guard lock(mu_);
      for (pid_t pid : tree) {
        if (pid != runner_pid_) descendants_[pid] = all[pid].start_ticks;
      }
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

std::vector<nlohmann::json> ReadEvents(const std::string& events_file) {
  std::vector<nlohmann::json> out;
  std::ifstream in(events_file);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

std::optional<nlohmann::json> FindEvent(const std::string& events_file, const std::string& type,
                                        const std::string& fault) {
  for (auto& j : ReadEvents(events_file)) {
    if (j.value("type", "") == type && (fault.empty() || j.value("fault", "") == fault)) return j;
  }
  return std::nullopt;
}

std::optional<int64_t> DrillOrigin(const std::string& events_file) {
  for (const auto& j : ReadEvents(events_file)) {
    const std::string type = j.value("type", "");
    const std::string message = j.value("message", "");
    if (type == "inject" || (type == "phase" && absl::StartsWith(message, "baseline:"))) {
      return j.at("monotonic_ns").get<int64_t>() - j.at("t_ns").get<int64_t>();
    }
  }
  return std::nullopt;
}

std::string StableChaosdrill(const std::string& dir, absl::Duration timeout) {
  const std::string source = testing::ChaosdrillBinary();
  const std::string link = dir + "/chaosdrill";
  const absl::Time deadline = absl::Now() + timeout;
  for (; absl::Now() < deadline; absl::SleepFor(absl::Seconds(1))) {
    std::error_code ec;
    fs::remove(link, ec);
    auto before = fs::last_write_time(source, ec);
    if (ec || fs::file_time_type::clock::now() - before < std::chrono::seconds(3)) continue;
    fs::create_hard_link(source, link, ec);
    if (ec) continue;
    if (fs::last_write_time(link, ec) != before || ec) continue;
    if (access(link.c_str(), X_OK) != 0) continue;
    if (testing::RunCommand({link, "--version"}, 20'000).exit_code == 0) return link;
  }
  return "";
}

std::optional<std::string> RecordIn(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".json") return entry.path().string();
  }
  return std::nullopt;
}

}  // namespace chaosdrill::integration
