// The log of one node as the master and sentinel shells use it: the in-memory log every read is
// served from, plus (with a data directory) the write-ahead log and group committer behind it.
//
// Without a data directory everything is in memory and an id is "durable" as soon as it is in
// the memory log. With one, Open() recovers the WAL into memory, new entries are queued for the
// group committer after they enter the memory log, and on_durable(n) reports (on the committer
// thread, or with `rounds_on_caller` inside the AppendNext or Apply that queued them) when every
// id <= n is covered by the fsync policy. Acknowledge nothing above durable_id().
//
// Epochs: every entry carries the epoch of the master that appended it (wal_format.h). The memory
// log keeps the epoch history (where each epoch's entries start), so a master can send it in its
// Hello and a sentinel can tell whether its tail diverges from the master's history.
//
// Errors: on_error(status) reports what stopped the committer (a failed write: those entries are
// not durable and never will be; a failed fsync: the caller must stop the process, see wal.h).
// Before on_error is called, the memory log is cut back to what the WAL holds, so an entry that
// can never be durable is not served. After it, AppendNext/Apply return that error.
//
// Epochs must follow the rules of CheckEntriesContinue (wal.h) in memory as on disk: never
// decreasing from one id to the next, and never newer than epoch() (SetIdentity first).
//
// Threads: AppendNext/Apply/SetIdentity/TruncateAfter/Flush are called by one writer at a time
// (the caller's lock); memory() is safe for concurrent readers; the getters are thread-safe.
// SetIdentity, TruncateAfter, Flush and the destructor wait for the committer thread to finish
// its callbacks: never call them holding a lock those callbacks take.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "storage/entry.h"
#include "storage/file_system.h"
#include "storage/group_commit.h"
#include "storage/memory_log.h"
#include "storage/wal_recovery.h"

namespace rlog::storage {

struct NodeLogOptions {
  // Empty: in memory. The WAL lives in <data_dir>/wal; <data_dir>/LOCK is held while the log is
  // open, so that a second NodeLog (in this process or another) cannot open it.
  std::string data_dir;
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  std::chrono::milliseconds fsync_interval{10};
  std::chrono::microseconds group_commit{0};  // See GroupCommitOptions::group_commit.
  WalOptions wal;
  // A corrupt WAL (not merely a torn tail): false = Open fails with the Corruption status (file
  // and offset); true = the damaged directory is renamed to <data_dir>/wal.corrupt-<unix ms>,
  // logged, and the node starts empty (a sentinel then fetches the log again).
  bool move_aside_corrupt = false;
  // File system to use; nullptr = the POSIX one. Tests pass a FaultInjectionFileSystem.
  FileSystem* fs = nullptr;
  // Duration of every successful fsync (rlog_wal_fsync_duration_seconds). Optional.
  std::function<void(std::chrono::nanoseconds)> observe_sync;
  // How many idempotency keys the memory log keeps (MemoryLog::set_key_capacity).
  size_t idempotency_keys = MemoryLog::kDefaultKeyCapacity;
  // AppendNext and Apply write, sync (by the policy) and report what they queued before they
  // return, on the caller's thread (GroupCommitOptions::rounds_on_caller): for a sentinel, whose
  // one writer waits for the round anyway. on_error may then run inside them too. Apply with
  // `hand_off` excepted: its round is the committer thread's.
  bool rounds_on_caller = false;
  // TEST ONLY, see GroupCommitOptions.
  bool ack_before_sync_for_testing = false;
};

class NodeLog {
 public:
  using DurableCallback = GroupCommitter::DurableCallback;
  using ErrorCallback = GroupCommitter::ErrorCallback;

  // Recovers the data directory (created if missing) into memory. The callbacks are only ever
  // called with a data directory, with no NodeLog lock held: on the committer thread, or with
  // rounds_on_caller also inside AppendNext and Apply (so the caller may hold its own lock then).
  static Result<std::unique_ptr<NodeLog>> Open(NodeLogOptions options, DurableCallback on_durable,
                                               ErrorCallback on_error);
  ~NodeLog();  // Flushes and syncs what is queued.

  // Flushes and syncs what is queued and stops the committer thread, so that no callback runs
  // after it returns; for an owner whose callbacks' targets are about to go. Nothing may be
  // appended or applied afterwards (only the getters and the destructor remain): the caller
  // stops its writers first (a writer already past the closed check could still reach the
  // committer being torn down). With a data directory, also closes the WAL cleanly (Wal::Close:
  // no preallocated zeros left behind). Idempotent.
  void Close();

  bool persistent() const;
  // Empty for a new log.
  std::string log_id() const;
  // The newest master epoch this node has accepted (0 for a new log).
  uint64_t epoch() const;
  // What recovery found (all zero in memory or for a new directory).
  const WalRecoveryReport& recovery() const;
  // True if Open found an existing log (entries or at least an identity) on disk.
  bool recovered_existing() const;
  // Set when Open moved a corrupt WAL aside: the Corruption it found.
  const Status& moved_aside() const;

  // Records the log id and epoch, durably with a data directory (on return). A new log adopts
  // them; an existing one: CheckLogIdentity (wal.h): FailedPrecondition for another log id while
  // it holds entries, or an older epoch. Adopting another log id drops held-back entries. With a
  // data directory this waits for the committer to flush: call it rarely (start-up, a new
  // master epoch).
  Status SetIdentity(const std::string& log_id, uint64_t epoch);

  // Master: appends one entry with id last_id() + 1 and the given epoch; returns the id. With a
  // data directory the entry is queued for the WAL (not durable on return, unless
  // rounds_on_caller: see on_durable).
  // Errors (nothing appended): InvalidArgument for an epoch older than the last entry's or newer
  // than epoch(), or a message over the WAL's record limit; FailedPrecondition with a data
  // directory but no identity yet; the error that stopped the committer. A non-empty
  // `idempotency_key` is kept with the entry (Entry::idempotency_key).
  Result<LogId> AppendNext(uint64_t epoch, int64_t timestamp_ms, std::string message,
                           std::string idempotency_key = {});

  // Sentinel, and a master copying entries from a sentinel: applies entries in any order (see
  // MemoryLog::Apply); the ones that become contiguous are queued for the WAL. Returns the new
  // contiguous last id. Errors for the whole batch (nothing applied): InvalidArgument for an
  // epoch newer than epoch() or a message over the record limit; FailedPrecondition with a data
  // directory but no identity yet; the error that stopped the committer. InvalidArgument when an
  // entry that became next has an epoch older than the one before it (a history no master
  // wrote): it is dropped, and what came before it is applied (see last_id()).
  // With rounds_on_caller, `hand_off` leaves the round to the committer thread
  // (GroupCommitter::Append): Apply returns before the entries are durable, and on_durable
  // reports them from that thread. For a batch the master sent without waiting for the ack of
  // the one before: batches arriving during its fsync then share the next one.
  Result<LogId> Apply(std::vector<Entry> entries, bool hand_off = false);

  // Drops the entries after `keep` (<= last_id(); 0 drops them all) and every held-back entry,
  // in memory and on disk (durably on return), keeping the identity and epoch; the next entry is
  // keep + 1. For a log whose tail a newer master never had (a sentinel's diverged tail, a
  // restarted master's replaced one): it fetches the rest again. With a data directory an error
  // stops the log (status(); restart the process: recovery then finds the old log or a shorter
  // one that still holds 1..keep).
  //
  // Epoch marks after the kept entries go; one right after `keep` stays only if `next`, the
  // history of the log this one goes on with, has its step (that log has the mark too). One it
  // lacks goes even with keep == last_id(): the next log's entries may be older than the mark
  // (RecoveryModel.ClaimsCatchKeepingAMarkTheNextLogLacks). Nothing to drop: nothing is done on
  // disk (held-back entries, in memory only, still go).
  Status TruncateAfter(LogId keep, std::span<const core::EpochStart> next = {});

  // Writes `content` to <data_dir>/<name>, a file that must not exist yet, durably on return
  // (write, fsync, fsync the directory): what a node keeps for an operator, not part of the log.
  // Returns the file's path. In memory: FailedPrecondition (there is no directory).
  Result<std::string> SaveAside(const std::string& name, std::string_view content);

  // Epoch marks (Wal::Append): the master of the accepted epoch began its own entries at
  // `first_id`. Records that this log's entries 1..first_id - 1 are that master's log, so that a
  // log ending there ranks with the accepted epoch (LastEpoch, DurableLastEpoch) as if it held an
  // entry of it. If the log ends at first_id - 1 now, the mark is written (durably, on return);
  // if it ends before, the mark goes with the entries Apply makes reach it (in the same
  // group-commit round and fsync, so on_durable covering them covers the mark); from first_id on
  // the entries carry the epoch themselves and nothing is written. first_id <= 1 (a new log):
  // nothing to mark. Each call drops the mark an earlier one left waiting. A master calls it when
  // it takes over, a sentinel at each Hello (before it reports its position). The caller's log
  // must be a prefix of that master's up to where it ends. Errors: as AppendNext (a failed fsync
  // stops the log).
  Status MarkEpochStart(LogId first_id);

  // The epoch of entry last_id(), or of an epoch mark right after it; 0 for an empty log. What a
  // log ending here ranks with in a take-over (core::PlanRecovery).
  uint64_t LastEpoch() const;
  // The same for durable_id(): what this node reports to a master taking over.
  uint64_t DurableLastEpoch() const { return EpochAt(durable_id()); }
  // The same for entry `id` (<= last_id()): for a caller that read durable_id() once and reports
  // everything from that one value (the durable id may move meanwhile).
  uint64_t EpochAt(LogId id) const;
  // MemoryLog::EpochStarts with a step {epoch, after + 1} for each epoch mark whose entries do
  // not start one already (a step may then have no entries: the next one starts at the same id,
  // or it is the last). What PlanRecovery, CommonPrefix and a Hello take as this log's history.
  std::vector<core::EpochStart> EpochStarts() const;

  // Returns once everything appended or applied so far is durable (reported to on_durable, and
  // durable_id() is last_id()). With a data directory it waits for the committer: for a master
  // about to take writes after copying its log. The error that stopped the log, if any.
  Status Flush();

  MemoryLog& memory() { return memory_; }
  const MemoryLog& memory() const { return memory_; }
  LogId last_id() const { return memory_.last_id(); }
  // Highest id covered by the fsync policy: the last one reported to on_durable, or recovered
  // (= last_id() in memory).
  LogId durable_id() const;
  // Ok, or what stopped the committer.
  Status status() const;

 private:
  NodeLog() = default;
  struct Impl;
  MemoryLog memory_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rlog::storage
