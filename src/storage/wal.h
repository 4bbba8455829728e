// The write-ahead log of one node: entries go to segment files (format: wal_format.h,
// docs/wal-format.md) before the node acknowledges them.
//
// Life cycle: Open() recovers the directory (wal_recovery.h) and hands every entry to a sink, so
// the caller can rebuild its in-memory log; then Append() writes new entries and Sync() makes
// them durable. A new log needs SetLogIdentity() before its first Append.
//
// Epochs: epoch() is the newest master epoch the node has accepted (SetLogIdentity, kept in the
// segment headers); every record carries its entry's own epoch, which may be older (a node
// copying old entries after accepting a newer master) but never newer, and never decreases from
// one entry to the next.
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
#include <string_view>
#include <vector>

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
  ~Wal();  // Close().
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Empty for a new log.
  const std::string& log_id() const { return log_id_; }
  uint64_t epoch() const { return epoch_; }
  LogId last_id() const { return last_id_; }           // Last id appended (or recovered).
  uint64_t last_epoch() const { return last_epoch_; }  // Epoch of that entry (0: none).
  // The epoch of an epoch mark right after the last entry (0: none): the entries 1..last_id()
  // are that epoch's master's log up to there. See Append.
  uint64_t mark_epoch() const { return mark_epoch_; }
  // Every epoch mark recovery found, in log order.
  const std::vector<EpochMark>& recovered_marks() const { return recovered_marks_; }
  LogId synced_id() const { return synced_id_; }       // Last id known durable.
  const WalRecoveryReport& recovery() const { return recovery_; }
  // Ok, or the error that stopped the WAL.
  const Status& failure() const { return failed_; }
  // A clean close: cuts the preallocated zeros off the last segment (unsynced: should a power
  // loss undo the cut, recovery cuts them instead), so the next recovery reports no torn tail,
  // and closes it. Every later change fails (failure() says the WAL is closed). The caller
  // syncs first what must be durable.
  void Close();

  // A new log: records its identity in a first segment, durable on return. An existing log: the
  // rules of CheckLogIdentity (FailedPrecondition for another log id while it holds entries, or
  // an older epoch); a newer epoch, or another log id while it holds no entry, is made durable in
  // a fresh segment header.
  Status SetLogIdentity(const std::string& log_id, uint64_t epoch);

  // Writes the entries, which must continue the log (CheckEntriesContinue, else
  // InvalidArgument), with one write. Not durable on return. On error nothing of this call will
  // be read back and last_id() is unchanged. FailedPrecondition before SetLogIdentity.
  //
  // `mark_epoch` > 0 also writes an epoch mark after them, in the same write: the log up to the
  // new last id is the log of the master of that epoch (the accepted one or older, newer than the
  // last entry's; else InvalidArgument). A master that took over writes one where its own entries
  // will start, a sentinel once its log reaches that point, so that a log ending there ranks with
  // that epoch in a later take-over (core::PlanRecovery) as if it held an entry of it: Raft's
  // no-op entry, without an id. Entries after a mark are of its epoch or newer.
  Status Append(std::span<const Entry> entries, uint64_t mark_epoch = 0);

  // Makes everything appended durable. An error is fatal (see above).
  Status Sync();

  // Drops the entries after `keep` (<= last_id(); 0 drops them all), keeping the identity and
  // the accepted epoch; durable on return, and the next Append continues at keep + 1. For a log
  // whose tail a newer master never had (docs/wal-format.md, "Truncation"). Crash-safe: a crash
  // part-way leaves the old log or a shorter one that still holds 1..keep and the accepted epoch.
  // An error once files have started to change stops the WAL (restart; recovery then finds such
  // a log).
  //
  // Epoch marks after the kept entries go too, except the ones right after entry `keep` with an
  // epoch up to `marks_through` (the log this one goes on with has them: NodeLog::TruncateAfter).
  // With keep == last_id() only such marks go.
  Status TruncateAfter(LogId keep, uint64_t marks_through = 0);

 private:
  Wal(FileSystem& fs, std::string dir, WalOptions options);

  // Creates `path` with `header` written (not synced). On a failed header write the file is
  // removed again; if that fails too the WAL stops.
  Result<std::unique_ptr<WritableFile>> CreateSegment(const std::string& path,
                                                      const SegmentHeader& header);
  // Writes zeros ahead in the last segment when an append up to `end` would pass them
  // (preallocation). Fails only if the WAL stopped.
  Status Reserve(uint64_t end);
  // Cuts the preallocated zeros off the last segment (not synced).
  Status DropReserve();
  Status Rotate();
  Status ReplaceSegment(bool keep_marks);
  // The epoch of entry `id` in the segment at `path` (Corruption if it is not there), and the
  // newest epoch mark right after it there (0 if none).
  struct EntryTail {
    uint64_t epoch = 0;
    uint64_t newest_mark = 0;
  };
  Result<EntryTail> EntryTailIn(const std::string& path, LogId id);
  // The two halves of replacing a segment by one with the current identity in its header: write
  // the new header and `records` beside it (synced; returns the temporary path), then rename it
  // into place and append to it.
  Result<std::string> WriteReplacement(LogId first_id, std::string_view records = {});
  Status InstallReplacement(const std::string& temp, LogId first_id);
  // TruncateAfter's changes to the files, once the plan is made; any error stops the WAL.
  Status CutSegments(LogId home, const std::string& replacement, std::vector<LogId> later,
                     uint64_t cut);
  Status Fail(const Status& cause);

  // Constant after Open.
  FileSystem& fs_;
  const std::string dir_;
  const WalOptions options_;
  WalRecoveryReport recovery_;
  std::vector<EpochMark> recovered_marks_;

  std::string log_id_;
  uint64_t epoch_ = 0;
  LogId last_id_ = 0;
  uint64_t last_epoch_ = 0;                // Of entry last_id_; <= epoch_.
  uint64_t mark_epoch_ = 0;                // Of a mark after entry last_id_; 0: none.
  LogId synced_id_ = 0;                    // <= last_id_.
  std::unique_ptr<WritableFile> segment_;  // The last segment; null until the log has an identity.
  LogId segment_first_id_ = 0;             // Segment has entries iff segment_first_id_ <= last_id_.
  bool dir_dirty_ = false;                 // A directory change not yet covered by SyncDir.
  bool preallocation_failed_ = false;      // In the last segment: append without zeros ahead.
  Status failed_;                          // Sticky: once set, every call returns it.
  std::string buffer_;                     // Reused encoding buffer.
};

// InvalidArgument unless `entries` can follow a log whose next id is `next_id` and whose last
// entry has epoch `last_epoch`: consecutive ids, epochs never decreasing and none newer than the
// log's `epoch`, messages within the record limit. Wal::Append and GroupCommitter::Append both
// check with it, so the committer refuses at once what its WAL would refuse later.
Status CheckEntriesContinue(std::span<const Entry> entries, LogId next_id, uint64_t last_epoch,
                            uint64_t epoch);

// InvalidArgument unless an epoch mark of `mark_epoch` may follow a log whose last entry has
// epoch `last_epoch` and whose accepted epoch is `epoch`: last_epoch < mark_epoch <= epoch.
Status CheckEpochMark(uint64_t mark_epoch, uint64_t last_epoch, uint64_t epoch);

// Whether a log currently named `log_id` (empty: none yet) at `epoch`, holding entries or not,
// may adopt `new_log_id` at `new_epoch`: InvalidArgument for an empty id; FailedPrecondition for
// another log id while it holds entries, or an older epoch of the same log. Another log id on an
// empty log starts over, whatever its epoch.
Status CheckLogIdentity(const std::string& log_id, uint64_t epoch, bool holds_entries,
                        const std::string& new_log_id, uint64_t new_epoch);

}  // namespace rlog::storage
