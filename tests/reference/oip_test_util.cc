#include "tests/reference/oip_test_util.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "reference/model_codec.h"
#include "tests/test_support.h"

namespace chaosdrill::reference::testing {

std::unique_ptr<inference::GRPCInferenceService::Stub> Connect(const std::string& address) {
  return inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

bool IsReady(inference::GRPCInferenceService::Stub& stub, int timeout_ms) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  inference::ServerReadyRequest req;
  inference::ServerReadyResponse resp;
  return stub.ServerReady(&ctx, req, &resp).ok() && resp.ready();
}

absl::StatusOr<std::vector<float>> Infer(inference::GRPCInferenceService::Stub& stub,
                                         const std::vector<float>& input, bool raw,
                                         int timeout_ms) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  inference::ModelInferRequest req =
      MakeInferRequest("tiny-mlp", TensorSpec{"INPUT0", "FP32", {}}, input, raw);
  inference::ModelInferResponse resp;
  grpc::Status s = stub.ModelInfer(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  return DecodeOutput(resp);
}

absl::StatusOr<std::unique_ptr<ReplicaProcess>> ReplicaProcess::Start(
    const std::vector<std::string>& args, const std::string& dir, int timeout_ms) {
  static int counter = 0;
  const std::string ready = absl::StrCat(dir, "/replica-", ::getpid(), "-", counter++, ".ready");
  std::vector<std::string> argv = {
      chaosdrill::testing::BinaryPath("tests/reference/reference_test_replica"), "--ready-file",
      ready};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  auto proc = std::unique_ptr<ReplicaProcess>(new ReplicaProcess());
  proc->pid_ = ::fork();
  if (proc->pid_ < 0) return absl::InternalError("fork failed");
  if (proc->pid_ == 0) {
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  // The helper writes its ready file atomically once warm; poll for it (bounded).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(ready);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      proc->address_ = std::string(absl::StripAsciiWhitespace(ss.str()));
      ::unlink(ready.c_str());
      return proc;
    }
    int status = 0;
    if (::waitpid(proc->pid_, &status, WNOHANG) == proc->pid_) {
      proc->pid_ = -1;
      return absl::InternalError(absl::StrCat("replica helper exited early, status ", status));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("replica helper did not become ready");
}

void ReplicaProcess::Signal(int sig) {
  if (pid_ <= 0) return;
  ::kill(pid_, sig);
  if (sig != SIGKILL && sig != SIGTERM) return;
  for (int i = 0; i < 500; ++i) {  // at most 10 s
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

ReplicaProcess::~ReplicaProcess() { Signal(SIGKILL); }

}  // namespace chaosdrill::reference::testing
