// Group commit: a background thread (the committer thread) writes everything queued since its last
// round to the WAL with one write and covers it with one fsync, so many concurrent appends share
// each fsync.
//
// Callers (HTTP and gRPC threads) Append() and return at once (unless rounds_on_caller, below);
// on_durable(n) later says that every id <= n is covered by the fsync policy:
//   kAlways   - after a Sync covering n: durable (the only policy that counts toward writeConcern
//               "durably" in DESIGN.md invariant 4);
//   kInterval - right after the write; a Sync follows within `interval`;
//   kNever    - right after the write; synced only at rotation and shutdown.
// on_error(status) reports the error that stopped the committer: a failed write (those entries
// are not in the WAL; answer their writers "not acknowledged") or a failed fsync (stop the
// process; never retry, see wal.h). After it, no on_durable follows and Append fails.
//
// Rounds on the caller (GroupCommitOptions::rounds_on_caller): Append itself writes what is
// queued, syncs it by the policy and reports it before it returns. If another caller's round is
// running, that round takes the entries before it ends and Append returns at once; if the
// committer thread's round is running, Append waits for it, then runs its own. The committer
// thread is left the timed syncs of kInterval (a caller's round also syncs once one is due) and
// the flush at shutdown. Meant for one appender whose next batch waits for this one's
// acknowledgement (a sentinel, docs/PERFORMANCE.md "Rounds on the sentinel's thread"): it spares
// the hand-off to the committer thread and back. Each Append is then its own round: appends that
// would have queued behind an fsync get one each. An Append whose writer does not wait for it
// (`hand_off`: a master sending batches without waiting for their acks, as in a catch-up) queues
// and returns, and the committer thread runs the round as without the option (unless a caller's
// round starts first and takes the entries), so that the appends arriving during its fsync share
// the next one.
//
// Threads: Append and the getters are thread-safe. Callbacks run in id order, with no lock of
// this object held, on the thread running the round: the committer thread, or with
// rounds_on_caller the appender's. They may call Append (which then only queues) unless
// rounds_on_caller is set. The Wal belongs to this object from construction to destruction, used
// by one round at a time: nobody else may touch it meanwhile.
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
  // Called on the thread running the round with the duration of every successful Wal::Sync (for the
  // rlog_wal_fsync_duration_seconds histogram). Optional.
  std::function<void(std::chrono::nanoseconds)> observe_sync = nullptr;
  // Rounds run on the thread calling Append (see the top of this file); group_commit is then
  // unused: no round is held back for more appends, the committer thread's (hand_off) neither,
  // since a caller may start a round of its own while it would wait.
  bool rounds_on_caller = false;
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
  // Clean shutdown: writes and syncs everything queued (whatever the policy), then joins. No
  // Append may be running (it may be running a round on its thread).
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
  //
  // With rounds_on_caller the round runs before Append returns (see the top of this file); if it
  // failed, Append returns that error after on_error has been called. Unless `hand_off`: then
  // Append returns once the entries are queued, and the committer thread's round (or a caller's
  // that starts first) writes, syncs and reports them.
  Result<LogId> Append(std::vector<Entry> entries, uint64_t mark_epoch = 0, bool hand_off = false)
      EXCLUDES(mu_);

  LogId written_id() const { return written_id_.load(); }  // Handed to the OS.
  LogId synced_id() const { return synced_id_.load(); }    // Covered by an fsync.
  Status status() const EXCLUDES(mu_);                     // Ok, or what stopped it.

 private:
  // Append's part under the lock: checks and queues.
  Result<LogId> Queue(std::vector<Entry> entries, uint64_t mark_epoch, bool hand_off) EXCLUDES(mu_);
  // The committer thread.
  void Run() EXCLUDES(mu_);
  // Rounds on the calling thread until nothing is queued, unless a round is running already.
  void RunRoundsOnCaller() EXCLUDES(mu_);
  // One round by the thread that set round_owner_: writes `batch` (one write per part between
  // `marks`), syncs by the policy (always when `stopping`) and reports. False when it failed
  // (Stop has run).
  bool Round(std::vector<Entry>& batch, std::vector<std::pair<size_t, uint64_t>>& marks,
             bool stopping);
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
  // rounds_on_caller: an Append handed pending_ to the committer thread (hand_off).
  bool handed_off_ GUARDED_BY(mu_) = false;
  // Who runs the round in progress, if any: its thread owns the WAL and the round state below
  // until it sets this back to kNone, under mu_.
  enum class RoundOwner { kNone, kCaller, kCommitterThread };
  RoundOwner round_owner_ GUARDED_BY(mu_) = RoundOwner::kNone;
  Status failed_ GUARDED_BY(mu_);

  // Round state, used only by the thread running a round (round_owner_).
  LogId written_ = 0;  // Last id handed to the OS.
  LogId synced_ = 0;   // Last id covered by an fsync.
  std::chrono::steady_clock::time_point
      sync_due_;  // kInterval: the oldest unsynced write's deadline.
  std::chrono::steady_clock::time_point
      hold_until_;           // kAlways: the latest a sync may be held back.
  size_t last_appends_ = 0;  // Appends the last round covered (group_commit).

  std::atomic<LogId> written_id_;
  std::atomic<LogId> synced_id_;
  std::thread thread_;  // Last: starts after everything above is initialised.
};

}  // namespace rlog::storage
