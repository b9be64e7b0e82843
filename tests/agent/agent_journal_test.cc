// The revert journal as the agent drives it (injector/journal.h): how many fsyncs an
// Inject+Revert pair costs, that no revert re-reads the file, that a second process's
// appends and compaction are seen, and that the file stays small while faults cycle.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "injector/fault_registry.h"
#include "injector/journal.h"
#include "injector/journaled_fault.h"
#include "tests/test_support.h"

namespace chaosdrill::injector {
namespace {

// A fault whose revert record does not change when it is applied (like bench.noop and
// every kind whose record is complete before Inject), or does when `grows`.
class StillFault : public Fault {
 public:
  explicit StillFault(bool grows = false) : grows_(grows) {}
  absl::Status Inject() override {
    applied_ = true;
    return absl::OkStatus();
  }
  absl::Status Revert() override {
    applied_ = false;
    return absl::OkStatus();
  }
  nlohmann::json RevertRecord() const override {
    return {{"n", 1}, {"pids", grows_ && applied_ ? 2 : 0}};
  }
  std::string Describe() const override { return "still"; }

 private:
  bool grows_;
  bool applied_ = false;
};

class CountingFactory : public FaultFactory {
 public:
  CountingFactory() { info_.kind = "test.counting"; }
  const FaultKindInfo& info() const override { return info_; }
  PreflightResult Preflight() const override { return {true, "", ""}; }
  absl::StatusOr<FaultPtr> Create(const FaultSpec&) const override {
    return absl::UnimplementedError("not used");
  }
  absl::Status RevertFromRecord(const nlohmann::json&) const override {
    ++reverted;
    return absl::OkStatus();
  }
  mutable int reverted = 0;

 private:
  FaultKindInfo info_;
};

off_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

TEST_CASE("journal: an Inject+Revert pair costs one fsync, and no revert re-reads the file",
          "[agent][journal]") {
  testing::TempDir dir;
  std::string path = dir.path() + "/journal";
  auto j = RevertJournal::Open(path);
  REQUIRE(j.ok());
  RevertJournal::Stats before = (*j)->stats();
  const int kPairs = 200;
  for (int i = 0; i < kPairs; ++i) {
    auto f = JournaledFault::Apply(j->get(), "test.counting", std::make_unique<StillFault>());
    REQUIRE(f.ok());
    REQUIRE((*f)->Revert().ok());
  }
  RevertJournal::Stats after = (*j)->stats();
  INFO("fsyncs " << after.fsyncs - before.fsyncs << ", updates skipped "
                 << after.updates_skipped - before.updates_skipped << ", full reads "
                 << after.full_reads - before.full_reads);
  CHECK(after.fsyncs - before.fsyncs == kPairs);  // the apply line only
  CHECK(after.updates_skipped - before.updates_skipped == kPairs);
  CHECK(after.full_reads == before.full_reads);
  CHECK(FileSize(path) == 0);  // truncated once nothing was open
  // A record that did change after Inject is written and fsynced: two per pair.
  auto grows = JournaledFault::Apply(j->get(), "test.counting", std::make_unique<StillFault>(true));
  REQUIRE(grows.ok());
  CHECK((*j)->stats().fsyncs - after.fsyncs == 2);
  auto open = (*j)->OpenEntries();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 1);
  CHECK(open->at(0).record["pids"] == 2);
  REQUIRE((*grows)->Revert().ok());
}

TEST_CASE(
    "journal: a reverted line not yet fsynced replays as an idempotent revert, and "
    "Sync makes it durable",
    "[agent][journal]") {
  testing::TempDir dir;
  std::string path = dir.path() + "/journal";
  auto j = RevertJournal::Open(path);
  REQUIRE(j.ok());
  REQUIRE((*j)->AppendApply("a", "test.counting", {{"n", 1}}).ok());
  REQUIRE((*j)->AppendApply("b", "test.counting", {{"n", 2}}).ok());
  uint64_t fsyncs = (*j)->stats().fsyncs;
  REQUIRE((*j)->MarkReverted("a").ok());
  CHECK((*j)->stats().fsyncs == fsyncs);  // written, not synced
  REQUIRE((*j)->Sync().ok());
  CHECK((*j)->stats().fsyncs == fsyncs + 1);
  REQUIRE((*j)->Sync().ok());
  CHECK((*j)->stats().fsyncs == fsyncs + 1);  // nothing new to sync
  auto open = (*j)->OpenEntries();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 1);
  CHECK(open->at(0).id == "b");
}

TEST_CASE(
    "journal: appends by another process are seen without a full re-read, and its "
    "compaction is followed",
    "[agent][journal]") {
  testing::TempDir dir;
  std::string path = dir.path() + "/journal";
  // Two journal objects on one file have separate descriptors and flocks, as two processes.
  auto agent = RevertJournal::Open(path);
  auto cli = RevertJournal::Open(path);
  REQUIRE((agent.ok() && cli.ok()));
  REQUIRE((*agent)->AppendApply("kept", "test.counting", {{"n", 0}}).ok());
  REQUIRE((*cli)->AppendApply("cli", "test.counting", {{"n", 1}}).ok());
  uint64_t reads = (*agent)->stats().full_reads;
  auto open = (*agent)->OpenEntries();
  REQUIRE(open.ok());
  CHECK(open->size() == 2);
  CHECK((*agent)->stats().full_reads == reads);  // the new tail only
  // Churn through the agent until its file passes the compaction threshold (1 MiB).
  nlohmann::json big = {{"pad", std::string(2000, 'x')}};
  int pairs = 0;
  while ((*agent)->stats().compactions == 0 && pairs < 5000) {
    std::string id = (*agent)->NewId("test.counting");
    REQUIRE((*agent)->AppendApply(id, "test.counting", big).ok());
    REQUIRE((*agent)->MarkReverted(id).ok());
    ++pairs;
  }
  INFO(pairs << " pairs, file now " << FileSize(path) << " bytes");
  CHECK((*agent)->stats().compactions == 1);
  CHECK(FileSize(path) < 4096);  // the two open entries only
  // The other process follows the new file: it sees both entries and its append lands there.
  REQUIRE((*cli)->MarkReverted("cli").ok());
  auto after = (*agent)->OpenEntries();
  REQUIRE(after.ok());
  REQUIRE(after->size() == 1);
  CHECK(after->at(0).id == "kept");
  // A fresh process replays exactly what is open.
  CountingFactory* counting = new CountingFactory();
  FaultRegistry registry;
  registry.Add(std::unique_ptr<FaultFactory>(counting));
  auto fresh = RevertJournal::Open(path);
  REQUIRE(fresh.ok());
  auto outcomes = (*fresh)->Replay(registry, /*include_live_holders=*/true);
  REQUIRE(outcomes.ok());
  CHECK(outcomes->size() == 1);
  CHECK(counting->reverted == 1);
  CHECK(FileSize(path) == 0);
}

TEST_CASE("journal: a file truncated and rewritten by another process is re-read, not misparsed",
          "[agent][journal]") {
  testing::TempDir dir;
  std::string path = dir.path() + "/journal";
  auto a = RevertJournal::Open(path);
  auto b = RevertJournal::Open(path);
  REQUIRE((a.ok() && b.ok()));
  REQUIRE((*a)->AppendApply("x", "test.counting", {{"n", 1}}).ok());
  REQUIRE((*a)->OpenEntries()->size() == 1);
  REQUIRE((*b)->MarkReverted("x").ok());  // b truncates: nothing open
  REQUIRE((*b)->AppendApply("y", "test.counting", {{"n", 2}}).ok());
  REQUIRE((*b)->AppendApply("z", "test.counting", {{"n", 3}}).ok());
  auto open = (*a)->OpenEntries();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 2);
  CHECK(open->at(0).id == "y");
  CHECK(open->at(1).id == "z");
}

}  // namespace
}  // namespace chaosdrill::injector
