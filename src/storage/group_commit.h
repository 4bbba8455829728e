// Group commit: one background thread writes everything queued since its last round to the WAL
// with one write and covers it with one fsync, so many concurrent appends share each fsync.
//
// Callers (HTTP and gRPC threads) Append() and return at once; on_durable(n) later says that every
// id <= n is covered by the fsync policy:
//   kAlways   - after a Sync covering n: durable (the only policy that counts toward writeConcern
//               "durably" in DESIGN.md invariant 4);
//   kInterval - right after the write; a Sync follows within `interval`;
//   kNever    - right after the write; synced only at rotation and shutdown.
// on_error(status) reports the error that stopped the committer: a failed write (those entries
// are not in the WAL; answer their writers "not acknowledged") or a failed fsync (stop the
// process; never retry, see wal.h). After it, no on_durable follows and Append fails.
//
// Threads: Append and the getters are thread-safe. Callbacks run on the committer thread, in id
// order, with no lock held (they may call Append). The Wal belongs to the committer thread from
// construction to destruction: nobody else may touch it meanwhile.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "storage/entry.h"
#include "storage/wal.h"

namespace rlog::storage {

// Same values as rlog::FsyncPolicy of the config layer, which storage does not depend on; the
// node maps one to the other.
enum class FsyncPolicy { kAlways, kInterval, kNever };

struct GroupCommitOptions {
  FsyncPolicy policy = FsyncPolicy::kAlways;
  std::chrono::milliseconds interval{10};  // kInterval: longest time data stays unsynced.
  // kAlways: how long after the start of one fsync the next may be held back, waiting until as
  // many appends are queued as the previous one covered. Under load that gathers fewer, larger
  // fsyncs (as PostgreSQL's commit_delay, which waits only while other commits are active); a
  // lone writer (one append per fsync) and an append after a quiet spell are synced at once,
  // and N writers in lock step are synced as soon as all N have appended. 0: the next fsync
  // starts as soon as the previous one has returned. Shutdown does not wait for it.
  std::chrono::microseconds group_commit{0};
  // Called on the committer thread with the duration of every successful Wal::Sync (for the
  // rlog_wal_fsync_duration_seconds histogram). Optional.
  std::function<void(std::chrono::nanoseconds)> observe_sync = nullptr;
  // TEST ONLY. Acknowledges before the fsync, as a broken implementation would; exists so the
  // power-loss tests can show they catch a lost acknowledged write. Never set it in production.
  bool ack_before_sync_for_testing = false;
};

class GroupCommitter {
 public:
  using DurableCallback = std::function<void(LogId last_covered)>;
  using ErrorCallback = std::function<void(const Status& error)>;

  // Precondition: the WAL has its identity (Wal::SetLogIdentity) and outlives this object.
  GroupCommitter(Wal& wal, GroupCommitOptions options, DurableCallback on_durable,
                 ErrorCallback on_error);
  // Clean shutdown: writes and syncs everything queued (whatever the policy), then joins.
  ~GroupCommitter();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Queues entries that continue the ones queued before (the WAL's last entry at first), by the
  // rules of CheckEntriesContinue (ids in order, epochs not decreasing and not newer than the
  // WAL's). Returns the last id of the batch: it is covered once on_durable reports an id >= it.
  // InvalidArgument for a batch that does not continue (nothing queued); otherwise only the error
  // that stopped the committer.
  //
  // `mark_epoch` > 0 (with entries): an epoch mark follows them (Wal::Append), written in the
  // same round and covered by the same sync, so on_durable covering the batch covers the mark
  // too. Entries queued after it in that round follow it in the WAL.
  Result<LogId> Append(std::vector<Entry> entries, uint64_t mark_epoch = 0) EXCLUDES(mu_);

  LogId written_id() const { return written_id_.load(); }  // Handed to the OS.
  LogId synced_id() const { return synced_id_.load(); }    // Covered by an fsync.
  Status status() const EXCLUDES(mu_);                     // Ok, or what stopped it.

 private:
  void Run() EXCLUDES(mu_);
  void Stop(const Status& error) EXCLUDES(mu_);

  // Constant after construction.
  Wal& wal_;
  const GroupCommitOptions options_;
  const DurableCallback on_durable_;
  const ErrorCallback on_error_;
  const bool has_identity_;
  const uint64_t epoch_;  // The WAL's; it cannot change while this object owns the WAL.

  mutable Mutex mu_;
  std::condition_variable_any cv_;
  std::vector<Entry> pending_ GUARDED_BY(mu_);  // Queued, not yet handed to the WAL.
  size_t pending_appends_ GUARDED_BY(mu_) = 0;  // Append calls in pending_.
  // While the committer holds a sync back (group_commit): the number of appends that ends the
  // wait; 0 otherwise.
  size_t wanted_appends_ GUARDED_BY(mu_) = 0;
  LogId next_id_ GUARDED_BY(mu_);               // Id the next Append must start with.
  uint64_t last_epoch_ GUARDED_BY(mu_);         // Epoch of the last entry or mark queued.
  // Marks among pending_: (how many of pending_ come before it, its epoch).
  std::vector<std::pair<size_t, uint64_t>> pending_marks_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;           // Destructor called.
  Status failed_ GUARDED_BY(mu_);

  std::atomic<LogId> written_id_;
  std::atomic<LogId> synced_id_;
  std::thread thread_;  // Last: starts after everything above is initialised.
};

}  // namespace rlog::storage
