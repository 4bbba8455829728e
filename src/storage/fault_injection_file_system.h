// An in-memory FileSystem for tests that remembers what was made durable and can forget the
// rest, modeled on leveldb's db/fault_injection_test.cc and RocksDB's FaultInjectionTestFS.
//
// Durability model (strict POSIX, no ext4 courtesy):
// - a file's bytes are durable up to its last successful WritableFile::Sync;
// - a directory change (create, rename, remove) is durable once SyncDir of its directory
//   succeeds; until then it sits in that directory's journal of pending changes;
// - DropUnsyncedData() is a power loss: every directory reverts to its durable entries (plus,
//   optionally, a random prefix of its journal, as a file system that commits metadata in order
//   may do), every file to its synced bytes (or a torn/zero-filled version of the unsynced tail;
//   an append over preallocated zeros is such a tail too, starting inside the synced size),
//   and every handle opened before it fails from then on (the process that held it is gone), and
//   every file lock is released.
// Directories themselves are durable from creation (the WAL never removes one), and so, to keep
// the parent's changes in order, is every change pending in the parent before it. Renaming a
// directory (moving a corrupt WAL aside) moves everything under it, and like any rename is
// durable once SyncDir of the parent succeeds.
//
// Faults: InjectError makes the nth call of an operation fail with an errno (a failing write may
// first land a prefix of its bytes: a torn write). BlockSyncs holds every data sync until
// UnblockSyncs, so a test can act while a sync is in flight without sleeping.
//
// Thread-safe: one mutex guards everything.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "storage/file_system.h"

namespace rlog::storage {

class FaultInjectionFileSystem : public FileSystem {
 public:
  enum class Op { kWrite, kPreallocate, kSync, kSyncDir, kTruncate, kCreate, kRename, kRemove };

  struct PowerLoss {
    enum class Tail {
      kDropped,       // Unsynced bytes vanish.
      kZeroFilled,    // The size grew, the data did not: unsynced bytes read back as zeros.
      kRandomPrefix,  // A random prefix of the unsynced bytes survives, sometimes zero-padded.
    };
    Tail tail = Tail::kDropped;
    bool random_directory_prefix = false;  // Keep a random prefix of each unsynced dir journal.
    uint64_t seed = 0;                     // For the random choices.
  };

  FaultInjectionFileSystem();
  ~FaultInjectionFileSystem() override;

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

  // The nth call of `op` from now (1 = the next) fails with `err`. For kWrite (and
  // kPreallocate), the first `torn_bytes` bytes of that write still reach the file. Only
  // Preallocate calls that write something are counted as kPreallocate.
  void InjectError(Op op, uint64_t nth, int err, size_t torn_bytes = 0);
  void ClearInjectedErrors();

  void DropUnsyncedData(const PowerLoss& how);
  void DropUnsyncedData() { DropUnsyncedData(PowerLoss()); }

  void BlockSyncs();
  void UnblockSyncs();
  // Waits until `n` syncs in total have been held by BlockSyncs; false on timeout.
  bool WaitForBlockedSyncs(uint64_t n, std::chrono::milliseconds timeout);
  // Waits until `n` data syncs in total have succeeded; false on timeout.
  bool WaitForSyncs(uint64_t n, std::chrono::milliseconds timeout);

  uint64_t sync_count() const;      // Successful WritableFile::Sync calls.
  uint64_t dir_sync_count() const;  // Successful SyncDir calls.
  uint64_t write_count() const;     // WritableFile::Append calls.

  // Test access to the bytes as they are now (not what is durable).
  Result<std::string> Contents(const std::string& path) const;
  // Overwrites bytes at `offset` (growing the file if needed) durably: damage done "on disk".
  Status Corrupt(const std::string& path, uint64_t offset, std::string_view bytes);

 private:
  friend class FaultWritableFile;
  friend class FaultReadableFile;
  friend class FaultFileLock;
  struct Inode {
    std::string data;    // What reads see.
    std::string synced;  // What survives a power loss.
  };
  struct DirChange {
    Op op;  // kCreate, kRemove or kRename.
    std::string path, to;
    std::shared_ptr<Inode> inode;
    bool directory = false;  // kRename of a directory and everything under it.
  };
  struct Fault {
    int err = 0;
    size_t torn_bytes = 0;
  };

  // Counts a call of `op`; returns the fault to inject, if any. Requires mu_.
  std::optional<Fault> TakeFault(Op op);
  void Journal(DirChange change);                                    // Requires mu_.
  Status RenameDir(const std::string& from, const std::string& to);  // Requires mu_.
  static void ApplyChange(const DirChange& change,
                          std::map<std::string, std::shared_ptr<Inode>>* files,
                          std::set<std::string>* dirs);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Inode>> files_;    // The namespace as seen now.
  std::map<std::string, std::shared_ptr<Inode>> durable_;  // The namespace a power loss keeps.
  std::map<std::string, std::vector<DirChange>> journal_;  // Per directory, since its last sync.
  std::set<std::string> dirs_;                             // As seen now.
  std::set<std::string> durable_dirs_;                     // What a power loss keeps.
  std::map<Op, uint64_t> calls_;
  std::map<Op, std::map<uint64_t, Fault>> faults_;  // By call number of the op.
  uint64_t generation_ = 0;  // Bumped by a power loss; older handles are dead.
  std::set<std::string> locked_;  // LockFile's paths; a power loss ends the process holding them.
  bool block_syncs_ = false;
  uint64_t blocked_syncs_ = 0;
  uint64_t syncs_ = 0;
  uint64_t dir_syncs_ = 0;
};

}  // namespace rlog::storage
