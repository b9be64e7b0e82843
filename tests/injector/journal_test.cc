// The revert journal and JournaledFault, against a recording fake fault kind.
#include "injector/journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "injector/child_process.h"
#include "injector/fault_registry.h"
#include "injector/journaled_fault.h"
#include "tests/test_support.h"

namespace chaosdrill::injector {
namespace {

// Records every RevertFromRecord call; fails while `fail` is set.
struct Recorder {
  std::vector<int> reverted;  // record["n"] of each call
  bool fail = false;
};

class RecordingFactory : public FaultFactory {
 public:
  explicit RecordingFactory(Recorder* r) : r_(r) {
    info_.kind = "test.recording";
    info_.summary = "records reverts";
  }
  const FaultKindInfo& info() const override { return info_; }
  PreflightResult Preflight() const override { return {true, "", ""}; }
  absl::StatusOr<FaultPtr> Create(const FaultSpec&) const override {
    return absl::UnimplementedError("not used");
  }
  absl::Status RevertFromRecord(const nlohmann::json& record) const override {
    if (r_->fail) return absl::UnavailableError("recorder told to fail");
    r_->reverted.push_back(record.value("n", -1));
    return absl::OkStatus();
  }

 private:
  FaultKindInfo info_;
  Recorder* r_;
};

// A fault that records its calls; Inject fails when told to, and then also reports that
// its own rollback failed when `fail_rollback` is set.
class FakeFault : public Fault {
 public:
  FakeFault(std::vector<std::string>* log, bool fail_inject, bool fail_rollback = false)
      : log_(log), fail_inject_(fail_inject), fail_rollback_(fail_rollback) {}
  absl::Status Inject() override {
    log_->push_back("inject");
    if (fail_inject_ && fail_rollback_) {
      return WithRollbackFailure(absl::InternalError("inject failed"),
                                 absl::UnavailableError("the half-applied part would not go"));
    }
    if (fail_inject_) return absl::InternalError("inject failed");
    injected_ = true;
    return absl::OkStatus();
  }
  absl::Status Revert() override {
    log_->push_back("revert");
    injected_ = false;
    return absl::OkStatus();
  }
  nlohmann::json RevertRecord() const override { return {{"n", injected_ ? 2 : 1}}; }
  std::string Describe() const override { return "fake"; }

 private:
  std::vector<std::string>* log_;
  bool fail_inject_;
  bool fail_rollback_;
  bool injected_ = false;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

off_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

struct Fixture {
  testing::TempDir dir;
  std::string path = dir.path() + "/state/chaosdrill/journal";
  Recorder recorder;
  FaultRegistry registry;
  Fixture() { registry.Add(std::make_unique<RecordingFactory>(&recorder)); }
};

TEST_CASE("journal creates its directory and file and replays open faults from the records",
          "[journal]") {
  Fixture f;
  auto j = RevertJournal::Open(f.path);
  REQUIRE(j.ok());
  REQUIRE((*j)->AppendApply("a", "test.recording", {{"n", 1}}).ok());
  REQUIRE((*j)->AppendUpdate("a", {{"n", 11}}).ok());
  REQUIRE((*j)->AppendApply("b", "test.recording", {{"n", 2}}).ok());
  REQUIRE((*j)->MarkReverted("b").ok());
  auto open = (*j)->OpenEntries();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 1);
  CHECK(open->at(0).id == "a");
  CHECK(open->at(0).record["n"] == 11);  // the latest record wins

  // A fresh journal object, as a fresh process would have.
  auto fresh = RevertJournal::Open(f.path);
  REQUIRE(fresh.ok());
  auto outcomes = (*fresh)->Replay(f.registry);
  REQUIRE(outcomes.ok());
  REQUIRE(outcomes->size() == 1);
  CHECK(outcomes->at(0).status.ok());
  CHECK(f.recorder.reverted == std::vector<int>{11});
  CHECK(FileSize(f.path) == 0);  // compacted: nothing open any more
}

TEST_CASE("journal replay is idempotent", "[journal]") {
  Fixture f;
  auto j = RevertJournal::Open(f.path);
  REQUIRE(j.ok());
  REQUIRE((*j)->AppendApply("a", "test.recording", {{"n", 1}}).ok());
  REQUIRE((*j)->AppendApply("b", "test.recording", {{"n", 2}}).ok());
  auto first = (*j)->Replay(f.registry);
  REQUIRE(first.ok());
  CHECK(first->size() == 2);
  CHECK(f.recorder.reverted == std::vector<int>{2, 1});  // newest first
  auto second = (*j)->Replay(f.registry);
  REQUIRE(second.ok());
  CHECK(second->empty());
  CHECK(f.recorder.reverted.size() == 2);
}

TEST_CASE("journal ignores a torn last line and appends after it on a fresh line", "[journal]") {
  Fixture f;
  {
    auto j = RevertJournal::Open(f.path);
    REQUIRE(j.ok());
    REQUIRE((*j)->AppendApply("a", "test.recording", {{"n", 1}}).ok());
  }
  {
    std::ofstream out(f.path, std::ios::app);
    out << R"({"op":"apply","id":"torn","kind":"test.rec)";  // crash mid-write
  }
  auto j = RevertJournal::Open(f.path);
  REQUIRE(j.ok());
  auto open = (*j)->OpenEntries();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 1);
  CHECK(open->at(0).id == "a");
  REQUIRE((*j)->AppendApply("b", "test.recording", {{"n", 2}}).ok());
  open = (*j)->OpenEntries();
  REQUIRE(open.ok());
  CHECK(open->size() == 2);
  auto outcomes = (*j)->Replay(f.registry);
  REQUIRE(outcomes.ok());
  CHECK(f.recorder.reverted == std::vector<int>{2, 1});
}

TEST_CASE("journal keeps a fault open when its revert fails, and retries next replay",
          "[journal]") {
  Fixture f;
  auto j = RevertJournal::Open(f.path);
  REQUIRE(j.ok());
  REQUIRE((*j)->AppendApply("a", "test.recording", {{"n", 1}}).ok());
  f.recorder.fail = true;
  auto outcomes = (*j)->Replay(f.registry);
  REQUIRE(outcomes.ok());
  REQUIRE(outcomes->size() == 1);
  CHECK(outcomes->at(0).status.code() == absl::StatusCode::kUnavailable);
  CHECK((*j)->OpenEntries()->size() == 1);
  f.recorder.fail = false;
  outcomes = (*j)->Replay(f.registry);
  REQUIRE(outcomes.ok());
  CHECK(outcomes->at(0).status.ok());
  CHECK((*j)->OpenEntries()->empty());
}

TEST_CASE("journal replay reports an unknown kind and keeps the fault open", "[journal]") {
  Fixture f;
  auto j = RevertJournal::Open(f.path);
  REQUIRE(j.ok());
  REQUIRE((*j)->AppendApply("a", "test.nosuchkind", {{"n", 1}}).ok());
  auto outcomes = (*j)->Replay(f.registry);
  REQUIRE(outcomes.ok());
  REQUIRE(outcomes->size() == 1);
  CHECK(outcomes->at(0).status.code() == absl::StatusCode::kNotFound);
  CHECK((*j)->OpenEntries()->size() == 1);
}

TEST_CASE("journal replay skips faults whose holder is alive unless forced", "[journal]") {
  Fixture f;
  auto j = RevertJournal::Open(f.path);
  REQUIRE(j.ok());
  // A line written by another, living process: our parent.
  auto parent = ProcessId::Of(getppid());
  REQUIRE(parent.ok());
  nlohmann::json line = {{"op", "apply"},
                         {"id", "live"},
                         {"kind", "test.recording"},
                         {"record", {{"n", 7}}},
                         {"holder", parent->ToJson()}};
  {
    std::ofstream out(f.path, std::ios::app);
    out << line.dump() << "\n";
  }
  auto outcomes = (*j)->Replay(f.registry);
  REQUIRE(outcomes.ok());
  REQUIRE(outcomes->size() == 1);
  CHECK(outcomes->at(0).skipped);
  CHECK(f.recorder.reverted.empty());
  outcomes = (*j)->Replay(f.registry, /*include_live_holders=*/true);
  REQUIRE(outcomes.ok());
  CHECK(f.recorder.reverted == std::vector<int>{7});
}

TEST_CASE("journal appends from many threads never interleave", "[journal]") {
  Fixture f;
  auto j = RevertJournal::Open(f.path);
  REQUIRE(j.ok());
  RevertJournal* journal = j->get();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([journal, t] {
      for (int i = 0; i < 50; ++i) {
        std::string id = journal->NewId("test.recording");
        (void)journal->AppendApply(id, "test.recording", {{"n", t * 100 + i}});
        if (i % 2 == 0) (void)journal->MarkReverted(id);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::istringstream lines(ReadAll(f.path));
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    CHECK(!nlohmann::json::parse(line, nullptr, false).is_discarded());
    ++count;
  }
  CHECK(count > 0);
  auto open = journal->OpenEntries();
  REQUIRE(open.ok());
  CHECK(open->size() == 100);
}

TEST_CASE("JournaledFault journals before Inject, updates after, and marks the revert",
          "[journal]") {
  Fixture f;
  auto j = RevertJournal::Open(f.path);
  REQUIRE(j.ok());
  std::vector<std::string> log;
  auto applied =
      JournaledFault::Apply(j->get(), "test.recording", std::make_unique<FakeFault>(&log, false));
  REQUIRE(applied.ok());
  auto open = (*j)->OpenEntries();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 1);
  CHECK(open->at(0).record["n"] == 2);  // the record as updated after Inject
  std::string text = ReadAll(f.path);
  CHECK(text.find("\"op\":\"apply\"") < text.find("\"op\":\"update\""));
  REQUIRE((*applied)->Revert().ok());
  CHECK(log == std::vector<std::string>{"inject", "revert"});
  CHECK((*j)->OpenEntries()->empty());
  CHECK(FileSize(f.path) == 0);
}

TEST_CASE("JournaledFault leaves nothing open when Inject fails", "[journal]") {
  Fixture f;
  auto j = RevertJournal::Open(f.path);
  REQUIRE(j.ok());
  std::vector<std::string> log;
  auto applied =
      JournaledFault::Apply(j->get(), "test.recording", std::make_unique<FakeFault>(&log, true));
  REQUIRE_FALSE(applied.ok());
  CHECK(applied.status().message() == "inject failed");
  CHECK((*j)->OpenEntries()->empty());
}

TEST_CASE("JournaledFault keeps the entry open when Inject's own rollback failed", "[journal]") {
  Fixture f;
  auto j = RevertJournal::Open(f.path);
  REQUIRE(j.ok());
  std::vector<std::string> log;
  auto applied = JournaledFault::Apply(j->get(), "test.recording",
                                       std::make_unique<FakeFault>(&log, true, true));
  REQUIRE_FALSE(applied.ok());
  INFO(applied.status().ToString());
  CHECK(RollbackFailed(applied.status()));  // the owner's annotation keeps the payload
  CHECK_THAT(std::string(applied.status().message()),
             Catch::Contains("inject failed; rollback failed: the half-applied part would not go"));
  CHECK_THAT(std::string(applied.status().message()), Catch::Contains("chaosdrill revert"));
  CHECK(log == std::vector<std::string>{"inject"});
  auto open = (*j)->OpenEntries();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 1);  // not marked reverted: something may still be applied
  CHECK(open->at(0).kind == "test.recording");
  CHECK(open->at(0).record["n"] == 1);  // the record journaled before Inject

  // A replay (as `chaosdrill revert` in a fresh process) retries it from the record.
  auto fresh = RevertJournal::Open(f.path);
  REQUIRE(fresh.ok());
  auto outcomes = (*fresh)->Replay(f.registry, /*include_live_holders=*/true);
  REQUIRE(outcomes.ok());
  REQUIRE(outcomes->size() == 1);
  CHECK(outcomes->at(0).status.ok());
  CHECK(f.recorder.reverted == std::vector<int>{1});
  CHECK((*fresh)->OpenEntries()->empty());
}

TEST_CASE("WithRollbackFailure leaves a status alone when the rollback succeeded", "[journal]") {
  absl::Status inject = absl::NotFoundError("no such interface");
  absl::Status same = WithRollbackFailure(inject, absl::OkStatus());
  CHECK(same == inject);
  CHECK_FALSE(RollbackFailed(same));
  CHECK_FALSE(RollbackFailed(Annotate(inject, "applying")));
  absl::Status both = WithRollbackFailure(inject, absl::InternalError("qdisc still there"));
  CHECK(both.code() == absl::StatusCode::kNotFound);
  CHECK(RollbackFailed(Annotate(both, "applying netem")));
}

TEST_CASE("JournaledFault reverts on destruction", "[journal]") {
  Fixture f;
  auto j = RevertJournal::Open(f.path);
  REQUIRE(j.ok());
  std::vector<std::string> log;
  {
    auto applied =
        JournaledFault::Apply(j->get(), "test.recording", std::make_unique<FakeFault>(&log, false));
    REQUIRE(applied.ok());
  }
  CHECK(log == std::vector<std::string>{"inject", "revert"});
  CHECK((*j)->OpenEntries()->empty());
}

TEST_CASE("journal default path is under /var/lib as root, XDG state otherwise", "[journal]") {
  std::string p = RevertJournal::DefaultPath();
  if (geteuid() == 0) {
    CHECK(p == "/var/lib/chaosdrill/journal");
  } else {
    CHECK(p.find("chaosdrill/journal") != std::string::npos);
  }
}

}  // namespace
}  // namespace chaosdrill::injector
