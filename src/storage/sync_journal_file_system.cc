#include "storage/sync_journal_file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace rlog::storage {

// A WritableFile that journals its syncs and truncations through its file system.
class SyncJournalFileSystem::File : public WritableFile {
 public:
  File(SyncJournalFileSystem& fs, std::unique_ptr<WritableFile> base)
      : fs_(fs), base_(std::move(base)) {}

  Status Append(std::string_view data) override { return base_->Append(data); }
  Status Preallocate(uint64_t end) override { return base_->Preallocate(end); }

  Status Sync() override {
    // The size before the sync: every byte below it was written before the sync began.
    const uint64_t covered = base_->size();
    if (Status s = base_->Sync(); !s.ok()) return s;
    return fs_.Journal({"sync", base_->path(), std::to_string(covered)});
  }

  Status Truncate(uint64_t size) override {
    if (Status s = base_->Truncate(size); !s.ok()) return s;
    return fs_.Journal({"truncate", base_->path(), std::to_string(size)});
  }

  Status Close() override { return base_->Close(); }
  uint64_t size() const override { return base_->size(); }
  uint64_t allocated_size() const override { return base_->allocated_size(); }
  const std::string& path() const override { return base_->path(); }

 private:
  SyncJournalFileSystem& fs_;
  const std::unique_ptr<WritableFile> base_;
};

Result<std::unique_ptr<SyncJournalFileSystem>> SyncJournalFileSystem::Open(
    FileSystem& base, const std::string& journal_path) {
  const int fd = ::open(journal_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("open", journal_path, errno);
  return std::unique_ptr<SyncJournalFileSystem>(new SyncJournalFileSystem(base, fd, journal_path));
}

SyncJournalFileSystem::SyncJournalFileSystem(FileSystem& base, int fd, std::string journal_path)
    : base_(base), fd_(fd), journal_path_(std::move(journal_path)) {}

SyncJournalFileSystem::~SyncJournalFileSystem() { ::close(fd_); }

Status SyncJournalFileSystem::Journal(std::initializer_list<std::string_view> fields) {
  std::string line;
  for (std::string_view field : fields) {
    if (!line.empty()) line += '\t';
    line += field;
  }
  line += '\n';
  // One write, so that lines from different threads never interleave (O_APPEND).
  const ssize_t n = ::write(fd_, line.data(), line.size());
  if (n < 0) return ErrnoStatus("write", journal_path_, errno);
  if (static_cast<size_t>(n) != line.size()) {
    return Status::IOError("write " + journal_path_ + ": short write");
  }
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> SyncJournalFileSystem::OpenForAppend(const std::string& path,
                                                                           OpenMode mode) {
  auto opened = base_.OpenForAppend(path, mode);
  if (!opened.ok()) return opened.status();
  if (mode == OpenMode::kCreateNew) {
    if (Status s = Journal({"create", path}); !s.ok()) return s;
  }
  return std::unique_ptr<WritableFile>(std::make_unique<File>(*this, std::move(opened).value()));
}

Result<std::unique_ptr<ReadableFile>> SyncJournalFileSystem::OpenForRead(const std::string& path) {
  return base_.OpenForRead(path);
}

Result<uint64_t> SyncJournalFileSystem::FileSize(const std::string& path) {
  return base_.FileSize(path);
}

Status SyncJournalFileSystem::Rename(const std::string& from, const std::string& to) {
  if (Status s = base_.Rename(from, to); !s.ok()) return s;
  return Journal({"rename", from, to});
}

Status SyncJournalFileSystem::Remove(const std::string& path) {
  if (Status s = base_.Remove(path); !s.ok()) return s;
  return Journal({"remove", path});
}

Result<std::vector<std::string>> SyncJournalFileSystem::ListDir(const std::string& dir) {
  return base_.ListDir(dir);
}

Status SyncJournalFileSystem::CreateDir(const std::string& dir) { return base_.CreateDir(dir); }

Status SyncJournalFileSystem::SyncDir(const std::string& dir) { return base_.SyncDir(dir); }

Result<std::unique_ptr<FileLock>> SyncJournalFileSystem::LockFile(const std::string& path) {
  auto locked = base_.LockFile(path);
  if (!locked.ok()) return locked.status();
  if (Status s = Journal({"lock", path}); !s.ok()) return s;
  return locked;
}

}  // namespace rlog::storage
