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
      written_id_(wal.last_id()),
      synced_id_(wal.synced_id()),
      thread_([this] { Run(); }) {}

GroupCommitter::~GroupCommitter() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Result<LogId> GroupCommitter::Append(std::vector<Entry> entries, uint64_t mark_epoch) {
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
  const bool ack_after_sync = always && !options_.ack_before_sync_for_testing;
  LogId written = written_id_.load();
  LogId synced = synced_id_.load();
  Clock::time_point sync_due;  // kInterval: when the oldest unsynced write must be synced.
  Clock::time_point hold_until;  // kAlways: the latest a sync may be held back (group_commit).
  size_t last_appends = 0;       // Appends the last batch covered.
  std::vector<Entry> batch;
  std::vector<std::pair<size_t, uint64_t>> marks;
  while (true) {
    bool stopping = false;
    {
      MutexLock lock(mu_);
      while (pending_.empty() && !stop_) {
        if (!interval || written == synced) {
          cv_.wait(mu_);
        } else if (cv_.wait_until(mu_, sync_due) == std::cv_status::timeout) {
          break;
        }
      }
      // Appends go on meanwhile (the lock is released while waiting): wait for as many as the
      // last batch had, within the window. Append notifies when the count is reached.
      if (always && pending_appends_ < last_appends) {
        wanted_appends_ = last_appends;
        while (!stop_ && pending_appends_ < last_appends && Clock::now() < hold_until) {
          cv_.wait_until(mu_, hold_until);
        }
        wanted_appends_ = 0;
      }
      last_appends = pending_appends_;
      pending_appends_ = 0;
      batch.swap(pending_);  // One write and one sync for everything that arrived meanwhile.
      marks.swap(pending_marks_);
      stopping = stop_;
    }
    if (!batch.empty()) {
      // One write, or one per epoch mark among them (rare: a master's take-over), before the
      // one sync.
      size_t from = 0;
      for (const auto& [before, epoch] : marks) {
        const std::span<const Entry> part(batch.data() + from, before - from);
        if (Status s = wal_.Append(part, epoch); !s.ok()) return Stop(s);
        from = before;
      }
      if (from < batch.size()) {
        const std::span<const Entry> rest(batch.data() + from, batch.size() - from);
        if (Status s = wal_.Append(rest); !s.ok()) return Stop(s);
      }
      if (written == synced) sync_due = Clock::now() + options_.interval;
      written = batch.back().id;
      written_id_.store(written);
      if (!ack_after_sync && on_durable_) on_durable_(written);
    }
    const bool sync_now = options_.policy == FsyncPolicy::kAlways || stopping ||
                          (interval && Clock::now() >= sync_due);
    if (sync_now && written > synced) {
      const auto start = Clock::now();
      hold_until = start + options_.group_commit;
      if (Status s = wal_.Sync(); !s.ok()) return Stop(s);
      if (options_.observe_sync) options_.observe_sync(Clock::now() - start);
      synced = written;
      synced_id_.store(synced);
    }
    if (!batch.empty() && ack_after_sync && on_durable_) on_durable_(written);
    batch.clear();
    marks.clear();
    if (stopping) return;
  }
}

void GroupCommitter::Stop(const Status& error) {
  {
    MutexLock lock(mu_);
    failed_ = error;
    pending_.clear();
    pending_marks_.clear();
    pending_appends_ = 0;
  }
  if (on_error_) on_error_(error);
}

}  // namespace rlog::storage
