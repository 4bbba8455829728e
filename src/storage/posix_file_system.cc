// FileSystem over POSIX calls. Data syncs use fdatasync (the size is included, which is all an
// append-only file needs); directories use fsync. Writes are pwrites at the handle's own offset,
// so appends can land in zeros written ahead by Preallocate.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "storage/file_system.h"

namespace rlog::storage {
namespace {

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size), allocated_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    if (Status s = WriteAt(size_, data, &size_); !s.ok()) return s;
    allocated_ = std::max(allocated_, size_);
    return Status::Ok();
  }

  Status Preallocate(uint64_t end) override {
    static constexpr size_t kZeroBlock = 256u << 10;
    static const std::string* const zeros = new std::string(kZeroBlock, '\0');
    while (allocated_ < end) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(end - allocated_, kZeroBlock));
      if (Status s = WriteAt(allocated_, std::string_view(*zeros).substr(0, n), &allocated_);
          !s.ok()) {
        return s;
      }
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_, errno);
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoStatus("ftruncate", path_, errno);
    }
    size_ = size;
    allocated_ = size;
    return Status::Ok();
  }

  Status Close() override {
    const int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0) return ErrnoStatus("close", path_, errno);
    return Status::Ok();
  }

  uint64_t size() const override { return size_; }
  uint64_t allocated_size() const override { return allocated_; }
  const std::string& path() const override { return path_; }

 private:
  // pwrite of all of `data` at `offset`; *end advances past every byte written, also on error.
  Status WriteAt(uint64_t offset, std::string_view data, uint64_t* end) {
    while (!data.empty()) {
      const ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write", path_, errno);
      }
      offset += static_cast<uint64_t>(n);
      *end = std::max(*end, offset);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

  int fd_;
  const std::string path_;
  uint64_t size_;       // Where the next Append writes.
  uint64_t allocated_;  // The file's length (>= size_): preallocated zeros follow size_.
};

class PosixReadableFile : public ReadableFile {
 public:
  PosixReadableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixReadableFile() override { ::close(fd_); }

  Result<size_t> ReadAt(uint64_t offset, char* dst, size_t n) override {
    size_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd_, dst + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("pread", path_, errno);
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

  Result<uint64_t> Size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return ErrnoStatus("fstat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  const int fd_;
  const std::string path_;
};

// flock(2), not fcntl(2) locks: those belong to the process, so a second open in the same
// process would take the lock again, and closing any descriptor of the file would drop it.
class PosixFileLock : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // Closing the only descriptor unlocks.

 private:
  const int fd_;
};

// The process holding a flock on the file `st` describes, from /proc/locks ("1: FLOCK ADVISORY
// WRITE <pid> <major>:<minor>:<inode> 0 EOF"); 0 if it cannot be told (another PID namespace
// shows 0 too).
long FlockHolder(const struct stat& st) {
  char id[64];
  std::snprintf(id, sizeof(id), "%02x:%02x:%llu", ::major(st.st_dev), ::minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream fields(line);
    std::string number, kind, mode, access, device;
    long pid = 0;
    if (fields >> number >> kind >> mode >> access >> pid >> device && kind == "FLOCK" &&
        device == id) {
      return pid;
    }
  }
  return 0;
}

class PosixFs : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path,
                                                      OpenMode mode) override {
    int flags = O_WRONLY | O_CLOEXEC;  // pwrite at our own offset: see Preallocate.
    if (mode == OpenMode::kCreateNew) flags |= O_CREAT | O_EXCL;
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoStatus("fstat", path, err);
    }
    return std::unique_ptr<WritableFile>(
        std::make_unique<PosixWritableFile>(fd, path, static_cast<uint64_t>(st.st_size)));
  }

  Result<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    return std::unique_ptr<ReadableFile>(std::make_unique<PosixReadableFile>(fd, path));
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("rename", from, errno);
    return Status::Ok();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("opendir", dir, errno);
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus("readdir", dir, err);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir", dir, errno);
    }
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", dir, errno);
    Status status;
    if (::fsync(fd) != 0) status = ErrnoStatus("fsync", dir, errno);
    ::close(fd);
    return status;
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      return std::unique_ptr<FileLock>(std::make_unique<PosixFileLock>(fd));
    }
    const int err = errno;
    struct stat st {};
    const long holder = ::fstat(fd, &st) == 0 ? FlockHolder(st) : 0;
    ::close(fd);
    if (err != EWOULDBLOCK) return ErrnoStatus("flock", path, err);
    return Status::FailedPrecondition(
        "lock " + path + ": held by " +
        (holder > 0 ? "process " + std::to_string(holder) : std::string("another process")));
  }
};

}  // namespace

FileSystem& PosixFileSystem() {
  static PosixFs fs;
  return fs;
}

}  // namespace rlog::storage
