#include "tests/test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace chaosdrill::testing {

bool SkipUnless(bool condition, absl::string_view reason) {
  if (!condition) std::cout << "SKIPPED: " << reason << std::endl;
  return !condition;
}

bool IsRoot() { return geteuid() == 0; }

bool KernelHasQdisc(absl::string_view kind) {
  if (std::filesystem::exists(absl::StrCat("/sys/module/sch_", kind))) return true;
  std::string option = absl::StrCat("CONFIG_NET_SCH_", absl::AsciiStrToUpper(kind), "=y");
  if (std::filesystem::exists("/proc/config.gz")) {
    CommandResult r = RunCommand({"/bin/zcat", "/proc/config.gz"}, 10'000);
    return r.out.find(option) != std::string::npos;
  }
  return false;
}

std::string SourcePath(absl::string_view relative) {
  return absl::StrCat(CHAOSDRILL_SOURCE_DIR, "/", relative);
}
std::string BinaryPath(absl::string_view relative) {
  return absl::StrCat(CHAOSDRILL_BINARY_DIR, "/", relative);
}
std::string ChaosdrillBinary() { return BinaryPath("chaosdrill"); }

CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_ms) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2 failed");
  }
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  CommandResult result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1'000'000;
    if (elapsed >= timeout_ms && !killed) {
      kill(pid, SIGKILL);
      killed = true;
    }
    int n = poll(fds, 2, std::max(1L, timeout_ms - elapsed));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        char buf[65536];
        ssize_t got = read(fds[i].fd, buf, sizeof buf);
        if (got > 0) {
          sinks[i]->append(buf, got);
        } else if (got == 0 || errno != EINTR) {
          close(fds[i].fd);
          fds[i].fd = -1;
          --open_fds;
        }
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

absl::Status ValidateRecordsAgainstSchema(const std::vector<std::string>& paths) {
  static const char kScript[] =
      "import json,sys\n"
      "try:\n"
      "  import jsonschema\n"
      "except ImportError:\n"
      "  print('python3 has no jsonschema module'); sys.exit(3)\n"
      "s=json.load(open(sys.argv[1]))\n"
      "jsonschema.Draft202012Validator.check_schema(s)\n"
      "v=jsonschema.Draft202012Validator(s)\n"
      "bad=0\n"
      "for f in sys.argv[2:]:\n"
      "  try:\n"
      "    doc=json.load(open(f,'rb'))\n"
      "  except Exception as e:\n"
      "    bad+=1; print(f, 'cannot be read as JSON:', str(e)[:200]); continue\n"
      "  for e in v.iter_errors(doc):\n"
      "    bad+=1; print(f, list(e.absolute_path), e.message[:300])\n"
      "print('validated', len(sys.argv)-2, 'records,', bad, 'errors')\n"
      "sys.exit(1 if bad else 0)\n";
  if (access("/usr/bin/python3", X_OK) != 0) {
    return absl::FailedPreconditionError(
        "schema validation needs /usr/bin/python3 with jsonschema (apt install "
        "python3-jsonschema)");
  }
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", kScript,
                                   SourcePath("reports/run_record.schema.json")};
  argv.insert(argv.end(), paths.begin(), paths.end());
  CommandResult r = RunCommand(argv, 300'000);
  if (r.exit_code == 0) return absl::OkStatus();
  if (r.exit_code == 3) {
    return absl::FailedPreconditionError(
        "schema validation needs python3's jsonschema (apt install python3-jsonschema)");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("run records do not match reports/run_record.schema.json (exit ", r.exit_code,
                   "):\n", r.out, r.err));
}

absl::Status ValidateRecordAgainstSchema(const std::string& path) {
  return ValidateRecordsAgainstSchema({path});
}

RunnerProcess::RunnerProcess(const std::string& tmpdir, const std::vector<std::string>& args,
                             const std::string& binary, const std::vector<std::string>& extra_env) {
  out_ = tmpdir + "/runner.out";
  err_ = tmpdir + "/runner.err";
  std::vector<std::string> argv = {binary.empty() ? ChaosdrillBinary() : binary, "run"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> env = {absl::StrCat("TMPDIR=", tmpdir),
                                  "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                                  "NO_COLOR=1"};
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> cenv;
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  int o = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int e = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(o, 1);
    dup2(e, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  setpgid(pid_, pid_);
  close(o);
  close(e);
}

int RunnerProcess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  int status = 0;
  const absl::Time deadline = absl::Now() + timeout;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

RunnerProcess::~RunnerProcess() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string RunnerProcess::out() const { return ReadAll(out_); }
std::string RunnerProcess::err() const { return ReadAll(err_); }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

TempDir::TempDir() {
  std::string tmpl = "/tmp/chaosdrill-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Write(absl::string_view name, absl::string_view content) const {
  std::string full = absl::StrCat(path_, "/", name);
  std::filesystem::create_directories(std::filesystem::path(full).parent_path());
  std::ofstream f(full, std::ios::binary);
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
  return full;
}

}  // namespace chaosdrill::testing
