#include "storage/group_commit.h"

#include <algorithm>
#include <iterator>
#include <span>
#include <utility>

namespace rlog::storage {

GroupCommitter::GroupCommitter(Wal& wal, GroupCommitOptions options, DurableCallback on_durable,
                               ErrorCallback on_error)
    : wal_(wal),
      options_(options),
      on_durable_(std::move(on_durable)),
      on_error_(std::move(on_error)),
      has_identity_(!wal.log_id().empty()),
      epoch_(wal.epoch()),
      next_id_(wal.last_id() + 1),
      last_epoch_(std::max(wal.last_epoch(), wal.mark_epoch())),
      written_(wal.last_id()),
      synced_(wal.synced_id()),
      written_id_(wal.last_id()),
      synced_id_(wal.synced_id()),
      thread_([this] { Run(); }) {}

GroupCommitter::~GroupCommitter() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();  // It waits for a caller's round to end, then flushes.
}

Result<LogId> GroupCommitter::Append(std::vector<Entry> entries, uint64_t mark_epoch,
                                     bool hand_off) {
  Result<LogId> queued = Queue(std::move(entries), mark_epoch, hand_off);
  if (!queued.ok() || !options_.rounds_on_caller || hand_off) return queued;
  RunRoundsOnCaller();
  if (Status s = status(); !s.ok()) return s;  // This round (or one before) failed.
  return queued;
}

Result<LogId> GroupCommitter::Queue(std::vector<Entry> entries, uint64_t mark_epoch,
                                    bool hand_off) {
  if (!has_identity_) return Status::FailedPrecondition("WAL has no log identity yet");
  MutexLock lock(mu_);
  if (!failed_.ok()) return failed_;
  if (stop_) return Status::Unavailable("WAL group commit is shutting down");
  if (Status s = CheckEntriesContinue(entries, next_id_, last_epoch_, epoch_); !s.ok()) return s;
  if (entries.empty()) {
    if (mark_epoch != 0) return Status::InvalidArgument("an epoch mark is queued with the entries before it (none given)");
    return next_id_ - 1;
  }
  if (mark_epoch != 0) {
    if (Status s = CheckEpochMark(mark_epoch, entries.back().epoch, epoch_); !s.ok()) return s;
  }
  next_id_ += entries.size();
  last_epoch_ = std::max(entries.back().epoch, mark_epoch);
  const LogId last = next_id_ - 1;
  const bool was_empty = pending_.empty();
  pending_.insert(pending_.end(), std::make_move_iterator(entries.begin()),
                  std::make_move_iterator(entries.end()));
  if (mark_epoch != 0) pending_marks_.emplace_back(pending_.size(), mark_epoch);
  ++pending_appends_;
  if (options_.rounds_on_caller) {
    if (!hand_off) return last;  // Append runs the round.
    handed_off_ = true;
  }
  if (was_empty || pending_appends_ == wanted_appends_) cv_.notify_one();
  return last;
}

Status GroupCommitter::status() const {
  MutexLock lock(mu_);
  return failed_;
}

void GroupCommitter::Run() {
  using Clock = std::chrono::steady_clock;
  const bool interval = options_.policy == FsyncPolicy::kInterval;
  const bool always = options_.policy == FsyncPolicy::kAlways;
  std::vector<Entry> batch;
  std::vector<std::pair<size_t, uint64_t>> marks;
  while (true) {
    bool stopping = false;
    {
      MutexLock lock(mu_);
      // Wait until this thread has a round to run: queued entries (unless the callers run them
      // and none was handed off), a due interval sync, or the final flush; never while a
      // caller's round runs.
      while (true) {
        if (!failed_.ok()) return;
        if (round_owner_ != RoundOwner::kNone) {
          cv_.wait(mu_);
          continue;
        }
        if (stop_ || (!pending_.empty() && (!options_.rounds_on_caller || handed_off_))) break;
        if (!interval || written_ == synced_) {
          cv_.wait(mu_);
        } else {
          // A copy: a caller's round may set sync_due_ while this waits without the lock.
          const auto due = sync_due_;
          if (cv_.wait_until(mu_, due) == std::cv_status::timeout &&
              round_owner_ == RoundOwner::kNone) {
            break;
          }
        }
      }
      // Appends go on meanwhile (the lock is released while waiting): wait for as many as the
      // last batch had, within the window. Append notifies when the count is reached.
      if (always && !options_.rounds_on_caller && pending_appends_ < last_appends_) {
        wanted_appends_ = last_appends_;
        while (!stop_ && pending_appends_ < last_appends_ && Clock::now() < hold_until_) {
          cv_.wait_until(mu_, hold_until_);
        }
        wanted_appends_ = 0;
      }
      last_appends_ = pending_appends_;
      pending_appends_ = 0;
      handed_off_ = false;
      batch.swap(pending_);  // One write and one sync for everything that arrived meanwhile.
      marks.swap(pending_marks_);
      stopping = stop_;
      round_owner_ = RoundOwner::kCommitterThread;
    }
    const bool ok = Round(batch, marks, stopping);
    {
      MutexLock lock(mu_);
      round_owner_ = RoundOwner::kNone;
    }
    cv_.notify_all();
    if (!ok || stopping) return;
  }
}

void GroupCommitter::RunRoundsOnCaller() {
  std::vector<Entry> batch;
  std::vector<std::pair<size_t, uint64_t>> marks;
  {
    MutexLock lock(mu_);
    // A round of the committer thread (handed-off entries, an interval sync, the shutdown flush)
    // took what was queued when it started, and takes nothing more: wait for it. A caller's round
    // takes what this call queued before it ends.
    while (round_owner_ == RoundOwner::kCommitterThread) cv_.wait(mu_);
    if (round_owner_ == RoundOwner::kCaller || !failed_.ok()) return;
    round_owner_ = RoundOwner::kCaller;
  }
  bool ok = true;
  bool wake = false;
  while (true) {
    {
      MutexLock lock(mu_);
      if (!ok || pending_.empty() || !failed_.ok()) {
        round_owner_ = RoundOwner::kNone;
        // Wake the committer thread only if it has something to do: wait for this round to end
        // (shutdown), or schedule an interval sync. Waking it every round would cost two context
        // switches per round, which is what running rounds here saves.
        wake = stop_ || options_.policy == FsyncPolicy::kInterval;
        break;
      }
      pending_appends_ = 0;
      handed_off_ = false;  // This round takes what was handed off too.
      batch.swap(pending_);
      marks.swap(pending_marks_);
    }
    ok = Round(batch, marks, /*stopping=*/false);
  }
  if (wake) cv_.notify_all();
}

bool GroupCommitter::Round(std::vector<Entry>& batch,
                           std::vector<std::pair<size_t, uint64_t>>& marks, bool stopping) {
  using Clock = std::chrono::steady_clock;
  const bool interval = options_.policy == FsyncPolicy::kInterval;
  const bool ack_after_sync =
      options_.policy == FsyncPolicy::kAlways && !options_.ack_before_sync_for_testing;
  if (!batch.empty()) {
    // One write, or one per epoch mark among them (rare: a master's take-over), before the
    // one sync.
    size_t from = 0;
    for (const auto& [before, epoch] : marks) {
      const std::span<const Entry> part(batch.data() + from, before - from);
      if (Status s = wal_.Append(part, epoch); !s.ok()) {
        Stop(s);
        return false;
      }
      from = before;
    }
    if (from < batch.size()) {
      const std::span<const Entry> rest(batch.data() + from, batch.size() - from);
      if (Status s = wal_.Append(rest); !s.ok()) {
        Stop(s);
        return false;
      }
    }
    if (written_ == synced_) sync_due_ = Clock::now() + options_.interval;
    written_ = batch.back().id;
    written_id_.store(written_);
    if (!ack_after_sync && on_durable_) on_durable_(written_);
  }
  const bool sync_now = options_.policy == FsyncPolicy::kAlways || stopping ||
                        (interval && Clock::now() >= sync_due_);
  if (sync_now && written_ > synced_) {
    const auto start = Clock::now();
    hold_until_ = start + options_.group_commit;
    if (Status s = wal_.Sync(); !s.ok()) {
      Stop(s);
      return false;
    }
    if (options_.observe_sync) options_.observe_sync(Clock::now() - start);
    synced_ = written_;
    synced_id_.store(synced_);
  }
  if (!batch.empty() && ack_after_sync && on_durable_) on_durable_(written_);
  batch.clear();
  marks.clear();
  return true;
}

void GroupCommitter::Stop(const Status& error) {
  {
    MutexLock lock(mu_);
    failed_ = error;
    pending_.clear();
    pending_marks_.clear();
    pending_appends_ = 0;
    handed_off_ = false;
  }
  if (on_error_) on_error_(error);
}

}  // namespace rlog::storage
