#include "injector/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "injector/child_process.h"
#include "injector/fault_registry.h"

namespace chaosdrill::injector {
namespace {

// flock for the duration of a scope; blocks until the lock is held.
class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {
    while (flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~FileLock() { flock(fd_, LOCK_UN); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

absl::Status FsyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat("opening directory ", dir));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return ErrnoStatus(absl::StrCat("fsync of directory ", dir), err);
  return absl::OkStatus();
}

// mkdir -p with 0700, fsyncing each parent of a directory it created.
absl::Status MakeDirs(const std::string& dir) {
  if (dir.empty() || access(dir.c_str(), F_OK) == 0) return absl::OkStatus();
  std::string parent = std::filesystem::path(dir).parent_path().string();
  if (parent != dir) RETURN_IF_ERROR(MakeDirs(parent));
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("creating journal directory ", dir));
  }
  if (!parent.empty()) return FsyncDir(parent);
  return absl::OkStatus();
}

int64_t NowMillis() { return absl::ToUnixMillis(absl::Now()); }

// True if the holder recorded in an apply line is still running.
bool HolderAlive(const nlohmann::json& holder) {
  auto id = ProcessId::FromJson(holder);
  return id.ok() && id->pid != getpid() && StatIfSameAndAlive(*id).has_value();
}

}  // namespace

std::string RevertJournal::DefaultPath() {
  if (geteuid() == 0) return "/var/lib/chaosdrill/journal";
  const char* state = std::getenv("XDG_STATE_HOME");
  if (state != nullptr && state[0] == '/') return absl::StrCat(state, "/chaosdrill/journal");
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "/tmp", "/.local/state/chaosdrill/journal");
}

absl::StatusOr<std::unique_ptr<RevertJournal>> RevertJournal::Open(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("journal path is empty");
  std::string dir = std::filesystem::path(path).parent_path().string();
  RETURN_IF_ERROR(MakeDirs(dir));
  bool existed = access(path.c_str(), F_OK) == 0;
  int fd = open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(absl::StrCat("opening journal ", path));
  if (!existed) {
    if (absl::Status s = FsyncDir(dir.empty() ? "." : dir); !s.ok()) {
      close(fd);
      return s;
    }
  }
  return std::unique_ptr<RevertJournal>(new RevertJournal(path, fd));
}

RevertJournal::~RevertJournal() { close(fd_); }

std::string RevertJournal::NewId(absl::string_view kind) {
  absl::MutexLock lock(&mu_);
  return absl::StrCat(kind, "-", getpid(), "-", NowMillis(), "-", next_id_++);
}

absl::Status RevertJournal::AppendLocked(const nlohmann::json& line) {
  FileLock file_lock(fd_);
  std::string text = line.dump() + "\n";
  struct stat st;
  if (fstat(fd_, &st) != 0) return ErrnoStatus(absl::StrCat("stat of journal ", path_));
  if (st.st_size > 0) {
    char last = '\n';
    if (pread(fd_, &last, 1, st.st_size - 1) == 1 && last != '\n') {
      text = "\n" + text;  // a torn last line: start ours on a fresh one
    }
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(absl::StrCat("appending to journal ", path_));
    done += static_cast<size_t>(n);
  }
  if (fdatasync(fd_) != 0) return ErrnoStatus(absl::StrCat("fsync of journal ", path_));
  return absl::OkStatus();
}

absl::Status RevertJournal::AppendApply(absl::string_view id, absl::string_view kind,
                                        const nlohmann::json& record) {
  nlohmann::json holder = {{"pid", getpid()}, {"start", 0}};
  if (auto self = ProcessId::Of(getpid()); self.ok()) holder = self->ToJson();
  absl::MutexLock lock(&mu_);
  return AppendLocked({{"op", "apply"},
                       {"id", std::string(id)},
                       {"kind", std::string(kind)},
                       {"record", record},
                       {"holder", holder},
                       {"time", NowMillis()}});
}

absl::Status RevertJournal::AppendUpdate(absl::string_view id, const nlohmann::json& record) {
  absl::MutexLock lock(&mu_);
  return AppendLocked(
      {{"op", "update"}, {"id", std::string(id)}, {"record", record}, {"time", NowMillis()}});
}

absl::Status RevertJournal::MarkReverted(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(
      AppendLocked({{"op", "reverted"}, {"id", std::string(id)}, {"time", NowMillis()}}));
  // Compact: when nothing is open any more, the history is of no use to a replay.
  FileLock file_lock(fd_);
  ASSIGN_OR_RETURN(std::vector<JournalEntry> open, ReadOpenLocked());
  if (open.empty()) {
    if (ftruncate(fd_, 0) != 0) return ErrnoStatus(absl::StrCat("compacting journal ", path_));
    if (fdatasync(fd_) != 0) return ErrnoStatus(absl::StrCat("fsync of journal ", path_));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<JournalEntry>> RevertJournal::ReadOpenLocked() {
  std::string text;
  char buf[65536];
  off_t offset = 0;
  while (true) {
    ssize_t n = pread(fd_, buf, sizeof(buf), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(absl::StrCat("reading journal ", path_));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  std::vector<JournalEntry> entries;  // in apply order
  std::map<std::string, size_t> index;
  std::vector<bool> reverted;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    nlohmann::json j = nlohmann::json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("op") || !j["op"].is_string() ||
        !j.contains("id") || !j["id"].is_string()) {
      // The last line may be torn by a crash mid-write; anything else is worth a warning.
      if (i + 1 < lines.size()) {
        LogWarn("journal", absl::StrCat(path_, ":", i + 1, ": ignoring unreadable line"));
      }
      continue;
    }
    std::string op = j["op"].get<std::string>();
    std::string id = j["id"].get<std::string>();
    if (op == "apply") {
      JournalEntry e;
      e.id = id;
      e.kind = j.value("kind", "");
      e.record = j.value("record", nlohmann::json::object());
      if (j.contains("holder") && j["holder"].is_object()) {
        e.holder = j["holder"];
      }
      index[id] = entries.size();
      entries.push_back(std::move(e));
      reverted.push_back(false);
    } else if (auto it = index.find(id); it != index.end()) {
      if (op == "update" && j.contains("record")) entries[it->second].record = j["record"];
      if (op == "reverted") reverted[it->second] = true;
    }
  }
  std::vector<JournalEntry> open;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!reverted[i]) open.push_back(std::move(entries[i]));
  }
  return open;
}

absl::StatusOr<std::vector<JournalEntry>> RevertJournal::OpenEntries() {
  absl::MutexLock lock(&mu_);
  FileLock file_lock(fd_);
  return ReadOpenLocked();
}

absl::StatusOr<std::vector<ReplayOutcome>> RevertJournal::Replay(const FaultRegistry& registry,
                                                                 bool include_live_holders) {
  ASSIGN_OR_RETURN(std::vector<JournalEntry> open, OpenEntries());
  std::vector<ReplayOutcome> outcomes;
  // Newest first: later faults may sit on top of earlier ones.
  for (auto it = open.rbegin(); it != open.rend(); ++it) {
    ReplayOutcome out{it->id, it->kind, absl::OkStatus()};
    if (it->holder.is_object()) out.holder_pid = it->holder.value("pid", 0);
    if (!include_live_holders && HolderAlive(it->holder)) {
      out.skipped = true;
      outcomes.push_back(std::move(out));
      continue;
    }
    auto factory = registry.Find(it->kind);
    if (!factory.ok()) {
      out.status = Annotate(factory.status(), absl::StrCat("reverting ", it->id));
    } else {
      out.status = (*factory)->RevertFromRecord(it->record);
      if (out.status.ok()) {
        out.status = MarkReverted(it->id);
      } else {
        out.status = Annotate(out.status, absl::StrCat("reverting ", it->id));
      }
    }
    outcomes.push_back(std::move(out));
  }
  return outcomes;
}

absl::StatusOr<std::vector<ReplayOutcome>> ReplayJournal(const FaultRegistry& registry,
                                                         const std::string& path) {
  ASSIGN_OR_RETURN(auto journal,
                   RevertJournal::Open(path.empty() ? RevertJournal::DefaultPath() : path));
  return journal->Replay(registry);
}

}  // namespace chaosdrill::injector
