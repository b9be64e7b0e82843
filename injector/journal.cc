#include "injector/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "injector/child_process.h"
#include "injector/fault_registry.h"

namespace chaosdrill::injector {
namespace {

constexpr size_t kTailBytes = 64;
constexpr off_t kCompactMinBytes = 1 << 20;  // rewrite only past 1 MiB ...
constexpr off_t kCompactRatio = 4;           // ... and 4x what the open entries need

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

std::string DirOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

int64_t NowMillis() { return absl::ToUnixMillis(absl::Now()); }

// True if the holder recorded in an apply line is still running.
bool HolderAlive(const nlohmann::json& holder) {
  auto id = ProcessId::FromJson(holder);
  return id.ok() && id->pid != getpid() && StatIfSameAndAlive(*id).has_value();
}

absl::Status WriteAll(int fd, absl::string_view text, const std::string& what) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(what);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status PreadAll(int fd, off_t from, size_t length, std::string* out,
                      const std::string& what) {
  out->resize(length);
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, out->data() + done, length - done, from + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(what);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out->resize(done);
  return absl::OkStatus();
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
    if (absl::Status s = FsyncDir(DirOf(path)); !s.ok()) {
      close(fd);
      return s;
    }
  }
  std::unique_ptr<RevertJournal> journal(new RevertJournal(path, fd));
  {
    absl::MutexLock lock(&journal->mu_);
    RETURN_IF_ERROR(journal->LockAndSync());  // the first full read
    journal->UnlockFile();
  }
  return journal;
}

RevertJournal::~RevertJournal() {
  absl::MutexLock lock(&mu_);
  if (dirty_ && fdatasync(fd_) != 0) {
    LogWarn("journal", ErrnoStatus(absl::StrCat("fsync of journal ", path_)).ToString());
  }
  close(fd_);
}

RevertJournal::Unlocker::~Unlocker() { j_->UnlockFile(); }

void RevertJournal::UnlockFile() { flock(fd_, LOCK_UN); }

std::string RevertJournal::NewId(absl::string_view kind) {
  absl::MutexLock lock(&mu_);
  return absl::StrCat(kind, "-", getpid(), "-", NowMillis(), "-", next_id_++);
}

RevertJournal::Stats RevertJournal::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void RevertJournal::ResetIndex() {
  open_.clear();
  end_ = 0;
  tail_.clear();
}

absl::Status RevertJournal::LockAndSync() {
  for (int attempt = 0;; ++attempt) {
    while (flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return ErrnoStatus(absl::StrCat("locking journal ", path_));
    }
    struct stat by_fd, by_path;
    if (fstat(fd_, &by_fd) != 0) {
      absl::Status s = ErrnoStatus(absl::StrCat("stat of journal ", path_));
      UnlockFile();
      return s;
    }
    bool same = stat(path_.c_str(), &by_path) == 0 && by_path.st_dev == by_fd.st_dev &&
                by_path.st_ino == by_fd.st_ino;
    if (!same) {
      // Another process compacted (renamed a new file over ours) or someone removed the
      // file: follow the path, as a fresh process would.
      UnlockFile();
      if (attempt >= 16) {
        return absl::UnavailableError(
            absl::StrCat("journal ", path_, " keeps being replaced; giving up"));
      }
      int fd = open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) return ErrnoStatus(absl::StrCat("reopening journal ", path_));
      close(fd_);
      fd_ = fd;
      ResetIndex();
      continue;
    }
    size_ = by_fd.st_size;
    bool valid = size_ >= end_;
    if (valid && !tail_.empty()) {
      std::string now;
      absl::Status s = PreadAll(fd_, end_ - static_cast<off_t>(tail_.size()), tail_.size(), &now,
                                absl::StrCat("reading journal ", path_));
      valid = s.ok() && now == tail_;
    }
    if (!valid) ResetIndex();  // truncated or rewritten since we last looked
    if (end_ == 0 && size_ > 0) ++stats_.full_reads;
    if (absl::Status s = ParseFrom(end_, size_); !s.ok()) {
      UnlockFile();
      return s;
    }
    return absl::OkStatus();
  }
}

absl::Status RevertJournal::ParseFrom(off_t from, off_t size) {
  if (size <= from) return absl::OkStatus();
  std::string text;
  RETURN_IF_ERROR(PreadAll(fd_, from, static_cast<size_t>(size - from), &text,
                           absl::StrCat("reading journal ", path_)));
  size_t last_nl = text.rfind('\n');
  if (last_nl == std::string::npos) return absl::OkStatus();  // only a torn line so far
  size_t pos = 0;
  while (pos <= last_nl) {
    size_t nl = text.find('\n', pos);
    const char* begin = text.data() + pos;
    const char* end = text.data() + nl;
    pos = nl + 1;
    if (begin == end) continue;
    nlohmann::json j = nlohmann::json::parse(begin, end, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("op") || !j["op"].is_string() ||
        !j.contains("id") || !j["id"].is_string()) {
      // A torn line (crash mid-write) followed by a later append.
      LogWarn("journal", absl::StrCat(path_, ": ignoring unreadable line at byte ",
                                      from + static_cast<off_t>(begin - text.data())));
      continue;
    }
    ApplyLine(j);
  }
  end_ = from + static_cast<off_t>(last_nl + 1);
  size_t keep = std::min(kTailBytes, static_cast<size_t>(end_));
  if (last_nl + 1 >= keep) {
    tail_ = text.substr(last_nl + 1 - keep, keep);
  } else {
    // The chunk is shorter than the tail we keep: read the tail back whole.
    RETURN_IF_ERROR(PreadAll(fd_, end_ - static_cast<off_t>(keep), keep, &tail_,
                             absl::StrCat("reading journal ", path_)));
  }
  return absl::OkStatus();
}

void RevertJournal::ApplyLine(const nlohmann::json& j) {
  const std::string& op = j["op"].get_ref<const std::string&>();
  const std::string& id = j["id"].get_ref<const std::string&>();
  if (op == "apply") {
    OpenFault& o = open_[id];
    o.seq = next_seq_++;
    o.time = j.value("time", int64_t{0});
    o.entry.id = id;
    o.entry.kind = j.value("kind", "");
    o.entry.record = j.value("record", nlohmann::json::object());
    o.entry.holder =
        j.contains("holder") && j["holder"].is_object() ? j["holder"] : nlohmann::json();
    return;
  }
  auto it = open_.find(id);
  if (it == open_.end()) return;
  if (op == "update" && j.contains("record")) it->second.entry.record = j["record"];
  if (op == "reverted") open_.erase(it);
}

absl::Status RevertJournal::AppendLocked(const nlohmann::json& line, bool durable) {
  std::string text = line.dump() + "\n";
  // Bytes past end_ have no newline: a torn last line. Start ours on a fresh one.
  if (size_ > end_) text.insert(text.begin(), '\n');
  if (absl::Status s = WriteAll(fd_, text, absl::StrCat("appending to journal ", path_)); !s.ok()) {
    ResetIndex();  // a partial write: re-read next time
    return s;
  }
  ApplyLine(line);
  end_ = size_ + static_cast<off_t>(text.size());
  size_ = end_;
  if (text.size() >= kTailBytes) {
    tail_ = text.substr(text.size() - kTailBytes);
  } else {
    tail_ += text;
    if (tail_.size() > kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
  }
  dirty_ = true;
  if (durable) return SyncLocked();
  return absl::OkStatus();
}

absl::Status RevertJournal::SyncLocked() {
  if (!dirty_) return absl::OkStatus();
  ++stats_.fsyncs;
  if (fdatasync(fd_) != 0) return ErrnoStatus(absl::StrCat("fsync of journal ", path_));
  dirty_ = false;
  return absl::OkStatus();
}

absl::Status RevertJournal::Sync() {
  absl::MutexLock lock(&mu_);
  return SyncLocked();
}

absl::Status RevertJournal::AppendApply(absl::string_view id, absl::string_view kind,
                                        const nlohmann::json& record) {
  absl::MutexLock lock(&mu_);
  if (holder_.is_null()) {
    holder_ = {{"pid", getpid()}, {"start", 0}};
    if (auto self = ProcessId::Of(getpid()); self.ok()) holder_ = self->ToJson();
  }
  RETURN_IF_ERROR(LockAndSync());
  Unlocker unlock(this);
  return AppendLocked({{"op", "apply"},
                       {"id", std::string(id)},
                       {"kind", std::string(kind)},
                       {"record", record},
                       {"holder", holder_},
                       {"time", NowMillis()}},
                      /*durable=*/true);
}

absl::Status RevertJournal::AppendUpdate(absl::string_view id, const nlohmann::json& record) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(LockAndSync());
  Unlocker unlock(this);
  if (auto it = open_.find(std::string(id));
      it != open_.end() && it->second.entry.record == record) {
    ++stats_.updates_skipped;  // replay would use exactly this record already
    return absl::OkStatus();
  }
  return AppendLocked(
      {{"op", "update"}, {"id", std::string(id)}, {"record", record}, {"time", NowMillis()}},
      /*durable=*/true);
}

absl::Status RevertJournal::MarkReverted(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(LockAndSync());
  Unlocker unlock(this);
  RETURN_IF_ERROR(AppendLocked({{"op", "reverted"}, {"id", std::string(id)}, {"time", NowMillis()}},
                               /*durable=*/false));
  return MaybeCompactLocked();
}

absl::Status RevertJournal::MaybeCompactLocked() {
  if (open_.empty()) {
    // Nothing to replay: either the truncated or the untruncated file replays to nothing,
    // so this needs no fsync.
    if (ftruncate(fd_, 0) != 0) return ErrnoStatus(absl::StrCat("compacting journal ", path_));
    size_ = end_ = 0;
    tail_.clear();
    return absl::OkStatus();
  }
  if (size_ < kCompactMinBytes) return absl::OkStatus();
  std::string text;
  for (const JournalEntry& e : OpenLocked()) {
    const OpenFault& o = open_.at(e.id);
    nlohmann::json line = {{"op", "apply"},      {"id", e.id},         {"kind", e.kind},
                           {"record", e.record}, {"holder", e.holder}, {"time", o.time}};
    if (e.holder.is_null()) line.erase("holder");
    absl::StrAppend(&text, line.dump(), "\n");
  }
  if (static_cast<off_t>(text.size()) * kCompactRatio > size_) return absl::OkStatus();
  // Rewrite: a new file with the open entries only, durable before it replaces the old one.
  std::string tmp = absl::StrCat(path_, ".compact-", getpid());
  int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(absl::StrCat("creating ", tmp));
  absl::Status s = WriteAll(fd, text, absl::StrCat("writing ", tmp));
  if (s.ok() && fdatasync(fd) != 0) s = ErrnoStatus(absl::StrCat("fsync of ", tmp));
  if (s.ok() && rename(tmp.c_str(), path_.c_str()) != 0) {
    s = ErrnoStatus(absl::StrCat("renaming ", tmp, " over ", path_));
  }
  if (!s.ok()) {
    close(fd);
    unlink(tmp.c_str());
    return s;  // the old file is intact
  }
  ++stats_.fsyncs;
  ++stats_.compactions;
  RETURN_IF_ERROR(FsyncDir(DirOf(path_)));
  // Switch to the new file, locked, before letting go of the old one (closing it drops
  // its lock; processes waiting on it then see the new inode and reopen).
  int newfd = open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  close(fd);
  if (newfd < 0) return ErrnoStatus(absl::StrCat("reopening journal ", path_));
  while (flock(newfd, LOCK_EX) != 0 && errno == EINTR) {
  }
  close(fd_);
  fd_ = newfd;
  dirty_ = false;
  ResetIndex();
  size_ = static_cast<off_t>(text.size());
  return ParseFrom(0, size_);
}

std::vector<JournalEntry> RevertJournal::OpenLocked() const {
  std::vector<const OpenFault*> order;
  order.reserve(open_.size());
  for (const auto& [id, o] : open_) order.push_back(&o);
  std::sort(order.begin(), order.end(),
            [](const OpenFault* a, const OpenFault* b) { return a->seq < b->seq; });
  std::vector<JournalEntry> out;
  out.reserve(order.size());
  for (const OpenFault* o : order) out.push_back(o->entry);
  return out;
}

absl::StatusOr<std::vector<JournalEntry>> RevertJournal::OpenEntries() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(LockAndSync());
  Unlocker unlock(this);
  return OpenLocked();
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
