// TESTING ONLY (the node's --test-sync-journal, which needs --enable-test-faults). A FileSystem
// that passes every call to another one and, after each call that succeeded and that a power
// loss could undo, appends one line to a journal file. A process-level test kills the node with
// SIGKILL and then does to its files what a power loss would have done at that moment: cut each
// file back to the bytes its last sync covered (tests/process/harness.py, `power_loss`).
//
// The journal is written with one write(2) per line on an O_APPEND descriptor and never synced:
// SIGKILL keeps what the kernel was handed, and a test never cuts the power to the journal.
// A data sync's line is written after the sync returned and before the caller hears of it, so
// everything a node acknowledged is covered by a line; a kill in between makes the test cut one
// sync's bytes more than a power loss would, never fewer.
//
// Lines, fields separated by a tab, paths as the node names them (the test resolves relative
// ones against the node's working directory):
//   create <path>           a new, empty file (OpenMode::kCreateNew): nothing of it is synced
//   sync <path> <bytes>     the file's first <bytes> bytes are durable (its size before the sync)
//   truncate <path> <bytes> the file is cut to <bytes>; a later sync says what is durable
//   rename <from> <to>      a file or a whole directory moved; what was durable moves along
//   remove <path>           the file is gone
//   lock <path>             a lock file, created if missing and never written
// Directory syncs are not journaled: the test models a file system that keeps directory changes
// in the order they were made (ext4's journal does), so a power loss loses only file data. That
// directory entries are synced where they must be is tested with FaultInjectionFileSystem.
//
// Thread-safe as far as the wrapped file system is.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "storage/file_system.h"

namespace rlog::storage {

class SyncJournalFileSystem : public FileSystem {
 public:
  // Appends to (creates if needed) the journal at `journal_path`.
  static Result<std::unique_ptr<SyncJournalFileSystem>> Open(FileSystem& base,
                                                             const std::string& journal_path);
  ~SyncJournalFileSystem() override;

  // FileSystem.
  Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path,
                                                      OpenMode mode) override;
  Result<std::unique_ptr<ReadableFile>> OpenForRead(const std::string& path) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

 private:
  class File;

  SyncJournalFileSystem(FileSystem& base, int fd, std::string journal_path);

  // Appends one line (the fields joined by tabs, then a newline). An error if the write fails:
  // a call whose line is missing must not look durable to the caller either.
  Status Journal(std::initializer_list<std::string_view> fields);

  FileSystem& base_;
  const int fd_;
  const std::string journal_path_;
};

}  // namespace rlog::storage
