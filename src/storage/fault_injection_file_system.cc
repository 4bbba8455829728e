#include "storage/fault_injection_file_system.h"

#include <algorithm>
#include <cerrno>
#include <optional>
#include <random>

namespace rlog::storage {

namespace {
Status LostPower(std::string_view op, const std::string& path) {
  return Status::IOError(std::string(op) + " " + path +
                         ": handle opened before a simulated power loss");
}

// `path` with the directory prefix `from` replaced by `to`; nullopt if it is not under `from`.
std::optional<std::string> Moved(const std::string& path, const std::string& from,
                                 const std::string& to) {
  if (path == from) return to;
  if (path.size() > from.size() && path.starts_with(from) && path[from.size()] == '/') {
    return to + path.substr(from.size());
  }
  return std::nullopt;
}

// Moves every file and directory under `from` to the same place under `to`.
template <typename Value>
void MoveUnder(std::map<std::string, Value>* files, std::set<std::string>* dirs,
               const std::string& from, const std::string& to) {
  std::map<std::string, Value> moved_files;
  for (auto it = files->begin(); it != files->end();) {
    if (auto target = Moved(it->first, from, to)) {
      moved_files.emplace(*target, std::move(it->second));
      it = files->erase(it);
    } else {
      ++it;
    }
  }
  files->insert(moved_files.begin(), moved_files.end());
  std::set<std::string> moved_dirs;
  for (auto it = dirs->begin(); it != dirs->end();) {
    if (auto target = Moved(*it, from, to)) {
      moved_dirs.insert(*target);
      it = dirs->erase(it);
    } else {
      ++it;
    }
  }
  dirs->insert(moved_dirs.begin(), moved_dirs.end());
}
}  // namespace

class FaultWritableFile : public WritableFile {
 public:
  using Inode = FaultInjectionFileSystem::Inode;
  FaultWritableFile(FaultInjectionFileSystem* fs, std::string path, std::shared_ptr<Inode> inode,
                    uint64_t generation)
      : fs_(fs),
        path_(std::move(path)),
        inode_(std::move(inode)),
        generation_(generation),
        end_(inode_->data.size()) {}

  Status Append(std::string_view data) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (generation_ != fs_->generation_) return LostPower("write", path_);
    if (auto fault = fs_->TakeFault(FaultInjectionFileSystem::Op::kWrite)) {
      WriteAt(data.substr(0, std::min(fault->torn_bytes, data.size())));
      return ErrnoStatus("write", path_, fault->err);
    }
    WriteAt(data);
    return Status::Ok();
  }

  Status Preallocate(uint64_t end) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (generation_ != fs_->generation_) return LostPower("write", path_);
    if (end <= inode_->data.size()) return Status::Ok();
    if (auto fault = fs_->TakeFault(FaultInjectionFileSystem::Op::kPreallocate)) {
      const uint64_t torn = std::min<uint64_t>(fault->torn_bytes, end - inode_->data.size());
      inode_->data.resize(inode_->data.size() + torn, '\0');
      return ErrnoStatus("write", path_, fault->err);
    }
    inode_->data.resize(end, '\0');
    return Status::Ok();
  }

  Status Sync() override {
    std::unique_lock<std::mutex> lock(fs_->mu_);
    if (fs_->block_syncs_) {
      ++fs_->blocked_syncs_;
      fs_->cv_.notify_all();
      fs_->cv_.wait(lock, [this] { return !fs_->block_syncs_; });
    }
    if (generation_ != fs_->generation_) return LostPower("fdatasync", path_);
    if (auto fault = fs_->TakeFault(FaultInjectionFileSystem::Op::kSync)) {
      return ErrnoStatus("fdatasync", path_, fault->err);  // Like Linux: the data stays unsynced.
    }
    inode_->synced = inode_->data;
    ++fs_->syncs_;
    fs_->cv_.notify_all();
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (generation_ != fs_->generation_) return LostPower("ftruncate", path_);
    if (auto fault = fs_->TakeFault(FaultInjectionFileSystem::Op::kTruncate)) {
      return ErrnoStatus("ftruncate", path_, fault->err);
    }
    inode_->data.resize(std::min<uint64_t>(size, inode_->data.size()));
    end_ = std::min<uint64_t>(size, end_);
    return Status::Ok();
  }

  Status Close() override { return Status::Ok(); }

  uint64_t size() const override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    return end_;
  }
  uint64_t allocated_size() const override {  // end_ never passes the data (see WriteAt).
    std::lock_guard<std::mutex> lock(fs_->mu_);
    return inode_->data.size();
  }
  const std::string& path() const override { return path_; }

 private:
  FaultInjectionFileSystem* const fs_;
  const std::string path_;
  const std::shared_ptr<Inode> inode_;
  const uint64_t generation_;
  uint64_t end_;  // Where the next Append writes; preallocated zeros may follow. Requires mu_.

  // Writes at end_, over preallocated zeros or past the end. Requires fs_->mu_.
  void WriteAt(std::string_view data) {
    std::string& d = inode_->data;
    if (d.size() < end_ + data.size()) d.resize(end_ + data.size(), '\0');
    std::copy(data.begin(), data.end(), d.begin() + static_cast<ptrdiff_t>(end_));
    end_ += data.size();
  }
};

class FaultReadableFile : public ReadableFile {
 public:
  using Inode = FaultInjectionFileSystem::Inode;
  FaultReadableFile(FaultInjectionFileSystem* fs, std::shared_ptr<Inode> inode)
      : fs_(fs), inode_(std::move(inode)) {}

  Result<size_t> ReadAt(uint64_t offset, char* dst, size_t n) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (offset >= inode_->data.size()) return size_t{0};
    const size_t got = std::min<uint64_t>(n, inode_->data.size() - offset);
    std::copy_n(inode_->data.data() + offset, got, dst);
    return got;
  }
  Result<uint64_t> Size() override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    return static_cast<uint64_t>(inode_->data.size());
  }

 private:
  FaultInjectionFileSystem* const fs_;
  const std::shared_ptr<Inode> inode_;
};

FaultInjectionFileSystem::FaultInjectionFileSystem() : dirs_{"/", "."}, durable_dirs_(dirs_) {}
FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

Result<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::OpenForAppend(
    const std::string& path, OpenMode mode) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (mode == OpenMode::kCreateNew) {
    if (!dirs_.contains(ParentDir(path))) return ErrnoStatus("open", path, ENOENT);
    if (it != files_.end()) return ErrnoStatus("open", path, EEXIST);
    if (auto fault = TakeFault(Op::kCreate)) return ErrnoStatus("open", path, fault->err);
    auto inode = std::make_shared<Inode>();
    it = files_.emplace(path, inode).first;
    Journal({Op::kCreate, path, "", inode});
  } else if (it == files_.end()) {
    return ErrnoStatus("open", path, ENOENT);
  }
  return std::unique_ptr<WritableFile>(
      std::make_unique<FaultWritableFile>(this, path, it->second, generation_));
}

class FaultFileLock : public FileLock {
 public:
  FaultFileLock(FaultInjectionFileSystem* fs, std::string path, uint64_t generation)
      : fs_(fs), path_(std::move(path)), generation_(generation) {}
  ~FaultFileLock() override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    // After a power loss the lock is gone already, and the path may be locked anew.
    if (fs_->generation_ == generation_) fs_->locked_.erase(path_);
  }

 private:
  FaultInjectionFileSystem* const fs_;
  const std::string path_;
  const uint64_t generation_;
};

Result<std::unique_ptr<FileLock>> FaultInjectionFileSystem::LockFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!files_.contains(path)) {
    if (!dirs_.contains(ParentDir(path))) return ErrnoStatus("open", path, ENOENT);
    auto inode = std::make_shared<Inode>();
    files_.emplace(path, inode);
    Journal({Op::kCreate, path, "", inode});
  }
  if (!locked_.insert(path).second) {
    return Status::FailedPrecondition("lock " + path + ": held by another lock");
  }
  return std::unique_ptr<FileLock>(std::make_unique<FaultFileLock>(this, path, generation_));
}

Result<std::unique_ptr<ReadableFile>> FaultInjectionFileSystem::OpenForRead(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return ErrnoStatus("open", path, ENOENT);
  return std::unique_ptr<ReadableFile>(std::make_unique<FaultReadableFile>(this, it->second));
}

Result<uint64_t> FaultInjectionFileSystem::FileSize(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return ErrnoStatus("stat", path, ENOENT);
  return static_cast<uint64_t>(it->second->data.size());
}

Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dirs_.contains(from)) return RenameDir(from, to);
  auto it = files_.find(from);
  if (it == files_.end()) return ErrnoStatus("rename", from, ENOENT);
  if (auto fault = TakeFault(Op::kRename)) return ErrnoStatus("rename", from, fault->err);
  DirChange change{Op::kRename, from, to, it->second};
  ApplyChange(change, &files_, &dirs_);
  Journal(std::move(change));
  return Status::Ok();
}

Status FaultInjectionFileSystem::RenameDir(const std::string& from, const std::string& to) {
  if (dirs_.contains(to) || files_.contains(to)) return ErrnoStatus("rename", from, EEXIST);
  if (!dirs_.contains(ParentDir(to))) return ErrnoStatus("rename", from, ENOENT);
  if (auto fault = TakeFault(Op::kRename)) return ErrnoStatus("rename", from, fault->err);
  DirChange change{Op::kRename, from, to, nullptr, /*directory=*/true};
  ApplyChange(change, &files_, &dirs_);
  // Changes pending inside the moved tree are now changes under its new name.
  std::map<std::string, std::vector<DirChange>> journal;
  for (auto& [dir, changes] : journal_) {
    for (DirChange& c : changes) {
      if (auto moved = Moved(c.path, from, to)) c.path = *moved;
      if (auto moved = Moved(c.to, from, to)) c.to = *moved;
    }
    auto& target = journal[Moved(dir, from, to).value_or(dir)];
    target.insert(target.end(), changes.begin(), changes.end());
  }
  journal_ = std::move(journal);
  Journal(std::move(change));
  return Status::Ok();
}

Status FaultInjectionFileSystem::Remove(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!files_.contains(path)) return ErrnoStatus("unlink", path, ENOENT);
  if (auto fault = TakeFault(Op::kRemove)) return ErrnoStatus("unlink", path, fault->err);
  DirChange change{Op::kRemove, path, "", nullptr};
  ApplyChange(change, &files_, &dirs_);
  Journal(std::move(change));
  return Status::Ok();
}

Result<std::vector<std::string>> FaultInjectionFileSystem::ListDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirs_.contains(dir)) return ErrnoStatus("opendir", dir, ENOENT);
  std::vector<std::string> names;
  for (const auto& [path, inode] : files_) {
    if (ParentDir(path) == dir) names.push_back(path.substr(path.rfind('/') + 1));
  }
  for (const auto& sub : dirs_) {
    if (sub != dir && sub != "/" && sub != "." && ParentDir(sub) == dir) {
      names.push_back(sub.substr(sub.rfind('/') + 1));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status FaultInjectionFileSystem::CreateDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirs_.contains(ParentDir(dir))) return ErrnoStatus("mkdir", dir, ENOENT);
  // Durable at once, so the changes before it in the parent must be too (a new directory named
  // like one renamed away must not be moved by that rename later).
  for (const DirChange& change : journal_[ParentDir(dir)]) {
    ApplyChange(change, &durable_, &durable_dirs_);
  }
  journal_.erase(ParentDir(dir));
  dirs_.insert(dir);
  durable_dirs_.insert(dir);
  return Status::Ok();
}

Status FaultInjectionFileSystem::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirs_.contains(dir)) return ErrnoStatus("open", dir, ENOENT);
  if (auto fault = TakeFault(Op::kSyncDir)) return ErrnoStatus("fsync", dir, fault->err);
  for (const DirChange& change : journal_[dir]) ApplyChange(change, &durable_, &durable_dirs_);
  journal_.erase(dir);
  ++dir_syncs_;
  return Status::Ok();
}

void FaultInjectionFileSystem::InjectError(Op op, uint64_t nth, int err, size_t torn_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_[op][calls_[op] + nth] = Fault{err, torn_bytes};
}

void FaultInjectionFileSystem::ClearInjectedErrors() {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.clear();
}

void FaultInjectionFileSystem::DropUnsyncedData(const PowerLoss& how) {
  std::lock_guard<std::mutex> lock(mu_);
  std::mt19937_64 rng(how.seed);
  auto uniform = [&rng](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  for (const auto& [dir, changes] : journal_) {
    const size_t keep = how.random_directory_prefix ? uniform(0, changes.size()) : 0;
    for (size_t i = 0; i < keep; ++i) ApplyChange(changes[i], &durable_, &durable_dirs_);
  }
  journal_.clear();
  files_ = durable_;
  dirs_ = durable_dirs_;
  std::set<Inode*> seen;
  for (const auto& [path, inode] : files_) {
    if (!seen.insert(inode.get()).second) continue;
    const std::string& s = inode->synced;
    std::string& d = inode->data;
    if (d.size() < s.size() || how.tail == PowerLoss::Tail::kDropped) {  // A shrink is lost.
      d = s;
    } else if (how.tail == PowerLoss::Tail::kZeroFilled) {
      // The size grew, the data did not: the old bytes (the zeros written ahead), then zeros.
      const size_t grown = d.size();
      d = s;
      d.resize(grown, '\0');
    } else {
      // The unsynced change starts where d and s first differ: past the synced end for a plain
      // append, inside it for an append over preallocated zeros.
      const auto changed =
          static_cast<uint64_t>(std::mismatch(s.begin(), s.end(), d.begin()).first - s.begin());
      const uint64_t kept = uniform(changed, d.size());
      const uint64_t zeros_to = uniform(0, 1) == 1 ? uniform(kept, d.size()) : kept;
      std::string r = d.substr(0, kept);
      if (kept < s.size()) r.append(s, kept);  // Old bytes past the surviving prefix.
      if (r.size() < zeros_to) r.resize(zeros_to, '\0');
      d = std::move(r);
    }
    inode->synced = d;
  }
  ++generation_;
  locked_.clear();
  cv_.notify_all();
}

void FaultInjectionFileSystem::BlockSyncs() {
  std::lock_guard<std::mutex> lock(mu_);
  block_syncs_ = true;
}

void FaultInjectionFileSystem::UnblockSyncs() {
  std::lock_guard<std::mutex> lock(mu_);
  block_syncs_ = false;
  cv_.notify_all();
}

bool FaultInjectionFileSystem::WaitForBlockedSyncs(uint64_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return blocked_syncs_ >= n; });
}

bool FaultInjectionFileSystem::WaitForSyncs(uint64_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return syncs_ >= n; });
}

uint64_t FaultInjectionFileSystem::sync_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syncs_;
}
uint64_t FaultInjectionFileSystem::dir_sync_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dir_syncs_;
}
uint64_t FaultInjectionFileSystem::write_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(Op::kWrite);
  return it == calls_.end() ? 0 : it->second;
}

Result<std::string> FaultInjectionFileSystem::Contents(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return ErrnoStatus("open", path, ENOENT);
  return it->second->data;
}

Status FaultInjectionFileSystem::Corrupt(const std::string& path, uint64_t offset,
                                         std::string_view bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return ErrnoStatus("open", path, ENOENT);
  for (std::string* s : {&it->second->data, &it->second->synced}) {
    if (s->size() < offset + bytes.size()) s->resize(offset + bytes.size(), '\0');
    s->replace(offset, bytes.size(), bytes);
  }
  return Status::Ok();
}

std::optional<FaultInjectionFileSystem::Fault> FaultInjectionFileSystem::TakeFault(Op op) {
  const uint64_t call = ++calls_[op];
  auto by_call = faults_.find(op);
  if (by_call == faults_.end()) return std::nullopt;
  auto it = by_call->second.find(call);
  if (it == by_call->second.end()) return std::nullopt;
  Fault fault = it->second;
  by_call->second.erase(it);
  return fault;
}

void FaultInjectionFileSystem::Journal(DirChange change) {
  const std::string& target = change.op == Op::kRename ? change.to : change.path;
  journal_[ParentDir(target)].push_back(std::move(change));
}

void FaultInjectionFileSystem::ApplyChange(const DirChange& change,
                                           std::map<std::string, std::shared_ptr<Inode>>* files,
                                           std::set<std::string>* dirs) {
  if (change.directory) {
    MoveUnder(files, dirs, change.path, change.to);
    return;
  }
  switch (change.op) {
    case Op::kCreate:
      (*files)[change.path] = change.inode;
      break;
    case Op::kRemove:
      files->erase(change.path);
      break;
    case Op::kRename:
      files->erase(change.path);
      (*files)[change.to] = change.inode;
      break;
    default:
      break;
  }
}

}  // namespace rlog::storage
