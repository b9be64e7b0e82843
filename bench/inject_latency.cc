// inject_latency: how long one apply + verify + revert + verify of a tbf rate limit takes
// through chaosdrill's injector (libnl, in-process) versus the same change made by running
// iproute2's `tc` four times (add, show, del, show), side by side on the loopback device of
// a private network namespace (the process unshares one, so nothing on the host is
// touched and nothing is left behind). Prints per-iteration medians and the ratio; the
// DESIGN goal is injector/tc <= 1/30. Needs root; exits 0 with "SKIPPED" otherwise.
//
//   inject_latency [--iterations N] [--json]
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "injector/bandwidth_fault.h"
#include "injector/fault_registry.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

// Runs argv (no shell), returns exit code and stdout.
int Spawn(const std::vector<std::string>& argv, std::string* out) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    return -1;
  }
  char buf[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string Tc() {
  for (const char* p : {"/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 200;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &iterations) || iterations < 1) {
        std::fprintf(stderr, "inject_latency: --iterations wants a positive integer\n");
        return 2;
      }
    } else if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else {
      std::fprintf(stderr, "usage: inject_latency [--iterations N] [--json]\n");
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::printf("SKIPPED: inject_latency needs root (qdiscs, a private network namespace)\n");
    return 0;
  }
  const std::string tc = Tc();
  if (tc.empty()) {
    std::printf("SKIPPED: inject_latency compares against iproute2's tc, which is not installed\n");
    return 0;
  }
  if (unshare(CLONE_NEWNET) != 0) {
    std::perror("inject_latency: unshare(CLONE_NEWNET)");
    return 1;
  }

  using chaosdrill::FaultSpec;
  using namespace chaosdrill::injector;
  RegisterBuiltinFaults();
  const FaultFactory* factory = *FaultRegistry::Global().Find("network.bandwidth");
  FaultSpec spec;
  spec.kind = "network.bandwidth";
  spec.params = {{"interface", "lo"}, {"rate", "8mbit"}};

  std::vector<double> ours_us, tc_us;
  for (int i = 0; i < iterations; ++i) {
    // chaosdrill: Create (validation, a fresh netlink socket), Inject (checks, add,
    // re-read), Revert (delete, re-read).
    auto start = Clock::now();
    auto fault = factory->Create(spec);
    absl::Status st = fault.ok() ? (*fault)->Inject() : fault.status();
    if (st.ok()) st = (*fault)->Revert();
    auto end = Clock::now();
    if (!st.ok()) {
      std::fprintf(stderr, "inject_latency: injector failed: %s\n", st.ToString().c_str());
      return 1;
    }
    ours_us.push_back(std::chrono::duration<double, std::micro>(end - start).count());

    // The same with tc: add, show (verify), del, show (verify).
    start = Clock::now();
    std::string out;
    bool ok = Spawn({tc, "qdisc", "add", "dev", "lo", "root", "handle", "cd01:", "tbf", "rate",
                     "8mbit", "burst", "10000", "limit", "60000"},
                    &out) == 0;
    out.clear();
    ok = ok && Spawn({tc, "-j", "qdisc", "show", "dev", "lo"}, &out) == 0 &&
         absl::StrContains(out, "\"tbf\"");
    ok = ok && Spawn({tc, "qdisc", "del", "dev", "lo", "root", "handle", "cd01:"}, &out) == 0;
    out.clear();
    ok = ok && Spawn({tc, "-j", "qdisc", "show", "dev", "lo"}, &out) == 0 &&
         !absl::StrContains(out, "\"tbf\"");
    end = Clock::now();
    if (!ok) {
      std::fprintf(stderr, "inject_latency: tc sequence failed\n");
      return 1;
    }
    tc_us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }

  const double ours = Median(ours_us), theirs = Median(tc_us);
  const double ratio = ours / theirs;
  if (json) {
    std::printf(
        "{\"bench\":\"inject_latency\",\"iterations\":%d,\"injector_median_us\":%.1f,"
        "\"injector_mean_us\":%.1f,\"tc_median_us\":%.1f,\"tc_mean_us\":%.1f,"
        "\"ratio\":%.4f,\"goal\":%.4f,\"meets_goal\":%s}\n",
        iterations, ours, Mean(ours_us), theirs, Mean(tc_us), ratio, 1.0 / 30,
        ratio <= 1.0 / 30 ? "true" : "false");
  } else {
    std::printf("inject_latency: apply+verify+revert+verify of tbf 8mbit on lo, %d iterations\n",
                iterations);
    std::printf("  chaosdrill injector (libnl): median %8.1f us  mean %8.1f us\n", ours,
                Mean(ours_us));
    std::printf("  tc x4 (add/show/del/show):   median %8.1f us  mean %8.1f us\n", theirs,
                Mean(tc_us));
    std::printf("  ratio injector/tc: %.4f (1/%.0f); goal <= 1/30: %s\n", ratio, 1 / ratio,
                ratio <= 1.0 / 30 ? "met" : "NOT met");
  }
  return 0;
}
