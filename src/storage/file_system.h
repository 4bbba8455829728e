// The small file-system interface every byte of the WAL goes through (STYLE.md 2), so tests can
// swap in FaultInjectionFileSystem (power loss, ENOSPC, EIO, failed fsync, torn writes).
//
// Every call returns a Status/Result whose message names the operation, the path and the errno
// text ("fdatasync /data/wal-...log: Input/output error"). Nothing here retries: a failed fsync
// in particular must not be retried (after one, Linux may already have dropped the dirty pages).
//
// Thread-safety: a FileSystem may be used from several threads; each WritableFile/ReadableFile is
// used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace rlog::storage {

// A file opened for appending. Writes go to the OS; nothing is durable before Sync() returns ok.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Writes all of `data` at size(), over any zeros Preallocate put there. On error a prefix of
  // `data` may have reached the file (size() says how much); the caller truncates it away or
  // treats the file as torn.
  virtual Status Append(std::string_view data) = 0;
  // Writes zeros from allocated_size() up to `end` (nothing if the file is already that long)
  // without moving where the next Append writes. Appends into written zeros leave the file's size
  // and block map alone, so the fdatasync after them writes the data blocks only, not the inode
  // (docs/wal-format.md, "Preallocation"). On error part of the zeros may be in the file;
  // Truncate(size()) removes them.
  virtual Status Preallocate(uint64_t end) = 0;
  // fdatasync: the data and size written so far are durable. On error nothing is known durable
  // since the previous successful Sync, and the file must not be synced again (stop instead).
  virtual Status Sync() = 0;
  // Cuts the file to `size` bytes (<= size()), preallocated zeros included; the next Append
  // writes there. Not durable until Sync().
  virtual Status Truncate(uint64_t size) = 0;
  virtual Status Close() = 0;

  // Where the next Append writes: the bytes appended so far (including a failed Append's prefix).
  virtual uint64_t size() const = 0;
  // The file's length: size() plus the preallocated zeros after it.
  virtual uint64_t allocated_size() const = 0;
  virtual const std::string& path() const = 0;
};

// A lock on a file, held until the object is destroyed (leveldb's FileLock).
class FileLock {
 public:
  virtual ~FileLock() = default;
};

// A file opened for positional reads.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to n bytes at `offset` into dst; fewer only at end of file. Returns bytes read.
  virtual Result<size_t> ReadAt(uint64_t offset, char* dst, size_t n) = 0;
  virtual Result<uint64_t> Size() = 0;
};

class FileSystem {
 public:
  enum class OpenMode {
    kCreateNew,     // The file must not exist (O_CREAT | O_EXCL); creating it changes the
                    // directory, which is durable only after SyncDir.
    kOpenExisting,  // The file must exist; appends go after its current end.
  };

  virtual ~FileSystem() = default;

  virtual Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path,
                                                              OpenMode mode) = 0;
  virtual Result<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // Atomically replaces `to` with `from`. Durable only after SyncDir of the directory.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Durable only after SyncDir of the directory.
  virtual Status Remove(const std::string& path) = 0;
  // Names (not paths) of the directory's entries, sorted; NotFound if it does not exist.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Creates one directory (its parent must exist); ok if it already exists.
  virtual Status CreateDir(const std::string& dir) = 0;
  // fsync of the directory: creations, renames and removals in it become durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Creates `path` if it is missing (not durably: the lock is not data) and locks it until the
  // FileLock is destroyed or the process ends. Does not wait: FailedPrecondition, naming the
  // holder where it can, if the file is locked already, by another process or by this one.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

// The whole file as a string (one open, reads in large chunks).
Result<std::string> ReadFileToString(FileSystem& fs, const std::string& path);

// Creates `dir` (and missing parents, like mkdir -p) if it does not exist, syncing each new
// entry's parent so it survives a crash. An existing `dir`'s parent is synced too, best effort
// (its error is ignored): a process may have made it and died before its sync.
Status CreateDirDurably(FileSystem& fs, const std::string& dir);

// Creates `path`, which must not exist yet, holding `content`, durably on return: written,
// synced, closed, and its directory synced.
Status WriteNewFileDurably(FileSystem& fs, const std::string& path, std::string_view content);

// "dir/name" (no doubled slash).
std::string JoinPath(const std::string& dir, std::string_view name);
// The directory holding `path` ("." for a bare name).
std::string ParentDir(const std::string& path);

// The Status for a failed system call: "<op> <path>: <strerror(err)>". ENOENT gives NotFound,
// everything else IOError. Shared by the POSIX and the fault-injecting file systems so tests see
// the messages production would print.
Status ErrnoStatus(std::string_view op, const std::string& path, int err);

// A FileSystem over the real POSIX calls. Stateless; one instance can be shared by everything.
FileSystem& PosixFileSystem();

}  // namespace rlog::storage
