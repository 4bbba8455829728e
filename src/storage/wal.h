// The write-ahead log of one node: entries go to segment files (format: wal_format.h,
// docs/wal-format.md) before the node acknowledges them.
//
// Life cycle: Open() recovers the directory (wal_recovery.h) and hands every entry to a sink, so
// the caller can rebuild its in-memory log; then Append() writes new entries and Sync() makes
// them durable. A new log needs SetLogIdentity() before its first Append.
//
// Durability: Append returns once the records are written to the OS, NOT durable; Sync returns
// once everything appended is on disk (fdatasync of the segment, plus fsync of the directory
// after a segment was created, renamed or removed). Acknowledge an id only after a Sync that
// started after its Append returned (GroupCommitter does this for you).
//
// Errors: a failed fsync is fatal. Sync returns IOError, every later call returns it too, and the
// caller must stop the process: after a failed fsync Linux may have dropped the dirty pages, so
// retrying could report durable data that is not. NEVER retry. A failed write (ENOSPC, EIO) fails
// that Append and is cut back, so nothing half-written is read as valid; if even the cut fails
// the WAL also stops (the torn tail is then dropped by the next recovery).
//
// Not thread-safe: one owner (e.g. the GroupCommitter's thread) calls everything.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "common/status.h"
#include "storage/entry.h"
#include "storage/file_system.h"
#include "storage/wal_format.h"
#include "storage/wal_recovery.h"

namespace rlog::storage {

class Wal {
 public:
  // Recovers `dir` (created if missing) and opens it for appending. Corruption (naming the file
  // and offset) when the files are damaged other than by a crash; see wal_recovery.h.
  static Result<std::unique_ptr<Wal>> Open(FileSystem& fs, std::string dir, WalOptions options,
                                           const EntryBatchSink& sink);
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Empty for a new log.
  const std::string& log_id() const { return log_id_; }
  uint64_t epoch() const { return epoch_; }
  LogId last_id() const { return last_id_; }      // Last id appended (or recovered).
  LogId synced_id() const { return synced_id_; }  // Last id known durable.
  const WalRecoveryReport& recovery() const { return recovery_; }
  // Ok, or the error that stopped the WAL.
  const Status& failure() const { return failed_; }

  // A new log: records its identity in a first segment, durable on return. An existing log:
  // FailedPrecondition for another log id or an older epoch; a newer epoch is made durable in a
  // fresh segment header and stamped on every later record.
  Status SetLogIdentity(const std::string& log_id, uint64_t epoch);

  // Writes the entries, whose ids must be last_id() + 1, + 2, ... (else InvalidArgument).
  // Not durable on return. On error nothing of this call will be read back and last_id() is
  // unchanged. FailedPrecondition before SetLogIdentity.
  Status Append(std::span<const Entry> entries);

  // Makes everything appended durable. An error is fatal (see above).
  Status Sync();

 private:
  Wal(FileSystem& fs, std::string dir, WalOptions options);

  // Creates `path` with `header` written (not synced). On a failed header write the file is
  // removed again; if that fails too the WAL stops.
  Result<std::unique_ptr<WritableFile>> CreateSegment(const std::string& path,
                                                      const SegmentHeader& header);
  Status Rotate();
  Status ReplaceSegment();
  Status Fail(const Status& cause);

  // Constant after Open.
  FileSystem& fs_;
  const std::string dir_;
  const WalOptions options_;
  WalRecoveryReport recovery_;

  std::string log_id_;
  uint64_t epoch_ = 0;
  LogId last_id_ = 0;
  LogId synced_id_ = 0;                    // <= last_id_.
  std::unique_ptr<WritableFile> segment_;  // The last segment; null until the log has an identity.
  LogId segment_first_id_ = 0;             // Segment has entries iff segment_first_id_ <= last_id_.
  bool dir_dirty_ = false;                 // A directory change not yet covered by SyncDir.
  Status failed_;                          // Sticky: once set, every call returns it.
  std::string buffer_;                     // Reused encoding buffer.
};

}  // namespace rlog::storage
