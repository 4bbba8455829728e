#include "storage/node_log.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <span>
#include <tuple>

#include "common/thread_annotations.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

namespace rlog::storage {

// Ownership: the writer (the caller of AppendNext/Apply/SetIdentity/TruncateAfter) owns
// `committer`; the WAL belongs to the committer (its thread, or with rounds_on_caller the round
// running inside AppendNext/Apply) while one exists and to the writer otherwise, so SetIdentity
// and TruncateAfter stop the committer before they touch the WAL. The
// getters use only what is constant after Open, the atomic and the fields guarded by mu.
struct NodeLog::Impl {
  explicit Impl(MemoryLog& log) : memory(log) {}
  ~Impl() {
    committer.reset();  // Flushes and syncs; its callbacks use the members below.
    wal.reset();
  }

  Status OpenWal();
  Result<std::unique_ptr<Wal>> RecoverInto();
  Status MoveAside(const Status& corruption);
  // Takes the WAL back from the committer, flushed; the error that stopped the log, if any
  // (then the WAL is left alone). Requires a writer.
  Status StopCommitter();
  // FailedPrecondition after Close: nothing may change any more, in memory either.
  Status CheckOpen() const;
  // After the writer changed the WAL (no committer running): mirror its identity and failure,
  // and start a committer if it can take entries.
  void AdoptWal();
  void WalFailed(const Status& error, LogId wal_last_id);
  // Refuses what could never reach the log (see AppendNext): each entry is checked on its own,
  // as if it followed one of `last_epoch`, or of an epoch mark after entry `mark_after` when
  // there is one (kNoMark: no such check). Requires a writer.
  static constexpr LogId kNoMark = UINT64_MAX;
  Status CheckWritable(std::span<const Entry> entries, uint64_t last_epoch,
                       LogId mark_after = kNoMark) const;
  // Hands entries just added to memory to the committer; if it refuses them, takes them (and
  // everything after `keep`) back out of memory.
  Status Queue(std::vector<Entry> entries, LogId keep, uint64_t mark_epoch = 0,
               bool hand_off = false);
  // The epoch of the newest mark right after entry `id`, 0 if none.
  uint64_t MarkAfter(LogId id) const;
  uint64_t MarkAfterLocked(LogId id) const REQUIRES(mu);

  // Constant after Open.
  MemoryLog& memory;
  NodeLogOptions options;
  DurableCallback on_durable;
  ErrorCallback on_error;
  FileSystem* fs = nullptr;  // Null in memory.
  // The data directory's LOCK: one process at a time. Declared before `wal`, so released after it.
  std::unique_ptr<FileLock> dir_lock;
  std::string wal_dir;
  WalRecoveryReport recovery;
  bool recovered_existing = false;
  Status moved_aside;
  std::unique_ptr<Wal> wal;  // Null in memory; the pointer never changes after Open.

  mutable Mutex mu;
  std::string log_id GUARDED_BY(mu);
  uint64_t epoch GUARDED_BY(mu) = 0;
  Status failed GUARDED_BY(mu);        // What stopped the committer or the WAL; sticky.
  bool closed GUARDED_BY(mu) = false;  // Close() was called.
  // Epoch marks, in log order, by the writer (recovered, written, or queued with entries);
  // a truncation below one drops it. One per take-over at most: few.
  std::vector<EpochMark> marks GUARDED_BY(mu);
  // MarkEpochStart's mark that waits for Apply to reach it (epoch 0: none).
  EpochMark expected_mark GUARDED_BY(mu);

  std::atomic<LogId> durable{0};              // Last id reported to on_durable (or recovered).
  std::unique_ptr<GroupCommitter> committer;  // Last: stopped before the rest goes.
};

Result<std::unique_ptr<NodeLog>> NodeLog::Open(NodeLogOptions options, DurableCallback on_durable,
                                               ErrorCallback on_error) {
  std::unique_ptr<NodeLog> log(new NodeLog());
  log->impl_ = std::make_unique<Impl>(log->memory_);
  Impl& impl = *log->impl_;
  impl.options = std::move(options);
  impl.on_durable = std::move(on_durable);
  impl.on_error = std::move(on_error);
  log->memory_.set_key_capacity(impl.options.idempotency_keys);
  if (!impl.options.data_dir.empty()) {
    if (Status s = impl.OpenWal(); !s.ok()) return s;
  }
  return log;
}

NodeLog::~NodeLog() = default;

void NodeLog::Close() {
  {
    // First, so that a writer that comes now is refused rather than reaching a committer or a
    // WAL on their way out.
    MutexLock lock(impl_->mu);
    impl_->closed = true;
  }
  // A failure of the final flush has reached on_error already; status() keeps it.
  static_cast<void>(impl_->StopCommitter());
  // The WAL is the writer's now: cut its preallocated zeros, so that the next start, after a
  // clean stop, reports no torn tail. A process that ends with _Exit runs no destructor.
  if (impl_->wal) impl_->wal->Close();
}

Status NodeLog::Impl::OpenWal() {
  fs = options.fs != nullptr ? options.fs : &PosixFileSystem();
  wal_dir = JoinPath(options.data_dir, "wal");
  if (Status s = CreateDirDurably(*fs, options.data_dir); !s.ok()) return s;
  // Two nodes appending to one WAL would interleave their records: the second must not start.
  auto locked = fs->LockFile(JoinPath(options.data_dir, "LOCK"));
  if (!locked.ok() && locked.status().code() == Status::Code::kFailedPrecondition) {
    return Status::FailedPrecondition(locked.status().message() +
                                      " (is another rlog node using this data directory?)");
  }
  if (!locked.ok()) return locked.status();
  dir_lock = std::move(locked).value();
  auto opened = RecoverInto();
  if (!opened.ok() && opened.status().code() == Status::Code::kCorruption &&
      options.move_aside_corrupt) {
    memory.Clear();  // What recovery handed over before it found the damage.
    if (Status s = MoveAside(opened.status()); !s.ok()) return s;
    opened = RecoverInto();
  }
  if (!opened.ok()) return opened.status();
  wal = std::move(opened.value());
  recovery = wal->recovery();
  recovered_existing = !wal->log_id().empty();
  durable.store(wal->synced_id());
  {
    MutexLock lock(mu);
    marks = wal->recovered_marks();
  }
  AdoptWal();
  return Status::Ok();
}

Result<std::unique_ptr<Wal>> NodeLog::Impl::RecoverInto() {
  return Wal::Open(*fs, wal_dir, options.wal,
                   [this](std::vector<Entry>&& batch) { memory.Apply(std::move(batch)); });
}

Result<std::string> NodeLog::SaveAside(const std::string& name, std::string_view content) {
  if (!persistent()) return Status::FailedPrecondition("in memory: no data directory");
  const std::string path = JoinPath(impl_->options.data_dir, name);
  if (Status s = WriteNewFileDurably(*impl_->fs, path, content); !s.ok()) return s;
  return path;
}

// Keeps the damaged files for a post-mortem instead of deleting them.
Status NodeLog::Impl::MoveAside(const Status& corruption) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const std::string aside = JoinPath(
      options.data_dir,
      "wal.corrupt-" +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()));
  if (Status s = fs->Rename(wal_dir, aside); !s.ok()) return s;
  if (Status s = fs->SyncDir(options.data_dir); !s.ok()) return s;
  spdlog::error("{}; moved the WAL aside to {} and starting with an empty log",
                corruption.message(), aside);
  moved_aside = corruption;
  return Status::Ok();
}

void NodeLog::Impl::AdoptWal() {
  {
    MutexLock lock(mu);
    log_id = wal->log_id();
    epoch = wal->epoch();
    if (failed.ok()) failed = wal->failure();
    if (!failed.ok() || log_id.empty()) return;
  }
  GroupCommitOptions commit;
  commit.policy = options.fsync;
  commit.interval = options.fsync_interval;
  commit.group_commit = options.group_commit;
  commit.observe_sync = options.observe_sync;
  commit.ack_before_sync_for_testing = options.ack_before_sync_for_testing;
  commit.rounds_on_caller = options.rounds_on_caller;
  Wal* w = wal.get();
  committer = std::make_unique<GroupCommitter>(
      *wal, commit,
      [this](LogId n) {
        durable.store(n);
        if (on_durable) on_durable(n);
      },
      // On the thread running the round, which owns the WAL: reading its last id is safe here.
      [this, w](const Status& error) { WalFailed(error, w->last_id()); });
}

Status NodeLog::Impl::StopCommitter() {
  committer.reset();  // Its final flush may fail too: look after it.
  MutexLock lock(mu);
  return failed;
}

void NodeLog::Impl::WalFailed(const Status& error, LogId wal_last_id) {
  // Queued entries the WAL did not take will never be durable: stop serving them. (After a
  // failed fsync the written ones stay: unknown, and the process must stop anyway.)
  memory.TruncateAfter(wal_last_id);
  {
    MutexLock lock(mu);
    if (failed.ok()) failed = error;
  }
  if (on_error) on_error(error);
}

Status NodeLog::Impl::CheckOpen() const {
  MutexLock lock(mu);
  if (closed) return Status::FailedPrecondition("the log is closed");
  return Status::Ok();
}

Status NodeLog::Impl::CheckWritable(std::span<const Entry> entries, uint64_t last_epoch,
                                     LogId mark_after) const {
  uint64_t accepted = 0;
  {
    MutexLock lock(mu);  // One lock for all of it: AppendNext takes it for every insert.
    if (!failed.ok()) return failed;
    if (closed) return Status::FailedPrecondition("the log is closed");
    accepted = epoch;
    if (mark_after != kNoMark) last_epoch = std::max(last_epoch, MarkAfterLocked(mark_after));
  }
  if (wal && !committer) {
    return Status::FailedPrecondition("the log has no identity yet (SetIdentity first)");
  }
  for (const Entry& e : entries) {
    if (Status s = CheckEntriesContinue({&e, 1}, e.id, last_epoch, accepted); !s.ok()) return s;
  }
  return Status::Ok();
}

Status NodeLog::Impl::Queue(std::vector<Entry> entries, LogId keep, uint64_t mark_epoch,
                            bool hand_off) {
  if (entries.empty()) return Status::Ok();
  auto queued = committer->Append(std::move(entries), mark_epoch, hand_off);
  if (queued.ok()) return Status::Ok();
  memory.TruncateAfter(keep);
  return queued.status();
}

uint64_t NodeLog::Impl::MarkAfter(LogId id) const {
  MutexLock lock(mu);
  return MarkAfterLocked(id);
}

uint64_t NodeLog::Impl::MarkAfterLocked(LogId id) const {
  for (auto it = marks.rbegin(); it != marks.rend(); ++it) {
    if (it->after_id == id) return it->epoch;
    if (it->after_id < id) break;
  }
  return 0;
}

bool NodeLog::persistent() const { return impl_->wal != nullptr; }

std::string NodeLog::log_id() const {
  MutexLock lock(impl_->mu);
  return impl_->log_id;
}

uint64_t NodeLog::epoch() const {
  MutexLock lock(impl_->mu);
  return impl_->epoch;
}

const WalRecoveryReport& NodeLog::recovery() const { return impl_->recovery; }
bool NodeLog::recovered_existing() const { return impl_->recovered_existing; }
const Status& NodeLog::moved_aside() const { return impl_->moved_aside; }

Status NodeLog::SetIdentity(const std::string& log_id, uint64_t epoch) {
  if (Status s = impl_->CheckOpen(); !s.ok()) return s;
  const std::string current = this->log_id();
  const uint64_t current_epoch = this->epoch();
  if (Status s = CheckLogIdentity(current, current_epoch, last_id() > 0, log_id, epoch); !s.ok()) {
    return s;
  }
  if (log_id == current && epoch == current_epoch) return Status::Ok();
  if (log_id != current) {
    memory_.Clear();  // Held-back entries of the other log.
    MutexLock lock(impl_->mu);
    impl_->marks.clear();
    impl_->expected_mark = {};
  }
  if (!impl_->wal) {
    MutexLock lock(impl_->mu);
    impl_->log_id = log_id;
    impl_->epoch = epoch;
    return Status::Ok();
  }
  if (Status s = impl_->StopCommitter(); !s.ok()) return s;
  Status s = impl_->wal->SetLogIdentity(log_id, epoch);
  impl_->AdoptWal();
  return s;
}

Result<LogId> NodeLog::AppendNext(uint64_t epoch, int64_t timestamp_ms, std::string message,
                                  std::string idempotency_key) {
  Entry entry{last_id() + 1, timestamp_ms, std::move(message), epoch, std::move(idempotency_key)};
  if (Status s = impl_->CheckWritable({&entry, 1}, memory_.LastEpoch(), entry.id - 1); !s.ok()) {
    return s;
  }
  if (!impl_->wal) {
    return memory_.AppendNext(epoch, timestamp_ms, entry.message, entry.idempotency_key);
  }
  // The memory log picks the id: after a failure the committer thread may have cut it back, and
  // then the committer refuses the entry and it is taken out again.
  entry.id = memory_.AppendNext(epoch, timestamp_ms, entry.message, entry.idempotency_key);
  const LogId id = entry.id;
  std::vector<Entry> batch;
  batch.push_back(std::move(entry));
  if (Status s = impl_->Queue(std::move(batch), id - 1); !s.ok()) return s;
  return id;
}

Result<LogId> NodeLog::Apply(std::vector<Entry> entries, bool hand_off) {
  // Epoch order is checked by the memory log as entries become contiguous.
  if (Status s = impl_->CheckWritable(entries, 0); !s.ok()) return s;
  const LogId before = memory_.last_id();
  // The keys these entries carry, for the WAL: the memory log keeps only its newest ones
  // (MemoryLog::set_key_capacity), and the WAL is written from what it holds.
  std::vector<std::pair<LogId, std::string>> keys;
  if (impl_->wal) {
    for (const Entry& e : entries) {
      if (!e.idempotency_key.empty() && e.id > before) keys.emplace_back(e.id, e.idempotency_key);
    }
    std::sort(keys.begin(), keys.end());
  }
  LogId refused = 0;
  const LogId last = memory_.Apply(std::move(entries), &refused);
  uint64_t mark = 0;  // An expected mark these entries reach.
  if (last > before) {
    MutexLock lock(impl_->mu);
    const EpochMark expected = impl_->expected_mark;
    if (expected.epoch != 0 && last >= expected.after_id) {
      impl_->expected_mark = {};
      // Past it, the entries carry the epoch; one newer than the accepted epoch is moot (the
      // master that asked has been superseded).
      if (last == expected.after_id && memory_.LastEpoch() < expected.epoch &&
          expected.epoch <= impl_->epoch) {
        mark = expected.epoch;
        // Known before the committer can report `last` durable (the reports say the mark is).
        impl_->marks.push_back({last, mark});
      }
    }
  }
  if (impl_->wal && last > before) {
    std::vector<Entry> added = memory_.Read(before + 1, last - before, UINT64_MAX);
    if (!keys.empty()) {
      for (Entry& e : added) {
        auto key = std::lower_bound(keys.begin(), keys.end(), std::make_pair(e.id, std::string()));
        if (e.idempotency_key.empty() && key != keys.end() && key->first == e.id) {
          e.idempotency_key = std::move(key->second);
        }
      }
    }
    if (Status s = impl_->Queue(std::move(added), before, mark, hand_off); !s.ok()) {
      MutexLock lock(impl_->mu);
      if (mark != 0) impl_->marks.pop_back();
      return s;
    }
  }
  if (refused != 0) {
    return Status::InvalidArgument("entry " + std::to_string(refused) +
                                   " refused: its epoch is older than the entry before it (a "
                                   "history no master wrote); the log ends at " +
                                   std::to_string(memory_.last_id()));
  }
  return last;
}

Status NodeLog::TruncateAfter(LogId keep, std::span<const core::EpochStart> next) {
  if (Status s = impl_->CheckOpen(); !s.ok()) return s;
  if (keep > last_id()) {
    return Status::InvalidArgument("cannot keep ids up to " + std::to_string(keep) +
                                   ": the log ends at " + std::to_string(last_id()));
  }
  // The marks right after `keep` that the next log has too stay: up to the newest of them.
  uint64_t through = 0;
  bool marks_go = false;
  {
    MutexLock lock(impl_->mu);
    for (const EpochMark& m : impl_->marks) {
      if (m.after_id != keep) continue;
      const core::EpochStart step{m.epoch, keep + 1};
      if (std::find(next.begin(), next.end(), step) != next.end()) {
        through = std::max(through, m.epoch);
      }
    }
    for (const EpochMark& m : impl_->marks) {
      marks_go = marks_go || m.after_id > keep || (m.after_id == keep && m.epoch > through);
    }
  }
  if (keep == last_id() && !marks_go) {
    // Nothing on disk goes, but entries held back for a gap came from the master of before: the
    // next one sends its own for those ids.
    memory_.DropHeldBack();
    return Status::Ok();
  }
  if (impl_->wal) {
    if (Status s = impl_->StopCommitter(); !s.ok()) return s;
  }
  // Memory first: nothing about to go is served from here on.
  memory_.TruncateAfter(keep);
  memory_.DropHeldBack();
  {
    MutexLock lock(impl_->mu);
    std::erase_if(impl_->marks, [keep, through](const EpochMark& m) {
      return m.after_id > keep || (m.after_id == keep && m.epoch > through);
    });
    impl_->expected_mark = {};
  }
  if (!impl_->wal) return Status::Ok();
  Status s = impl_->wal->TruncateAfter(keep, through);
  if (!s.ok()) {
    // Memory is cut, the disk maybe not: never go on from there.
    MutexLock lock(impl_->mu);
    if (impl_->failed.ok()) impl_->failed = s;
  }
  impl_->durable.store(std::min(impl_->durable.load(), keep));
  impl_->AdoptWal();
  return s;
}

Status NodeLog::MarkEpochStart(LogId first_id) {
  if (Status s = impl_->CheckOpen(); !s.ok()) return s;
  const uint64_t epoch = this->epoch();
  const LogId last = last_id();
  {
    MutexLock lock(impl_->mu);
    impl_->expected_mark = {};
    // A new log (nothing before the epoch), or one already past the epoch's start.
    if (first_id <= 1 || last >= first_id || memory_.LastEpoch() >= epoch) return Status::Ok();
    if (last + 1 < first_id) {
      impl_->expected_mark = {first_id - 1, epoch};
      return Status::Ok();
    }
    if (!impl_->marks.empty() && impl_->marks.back().after_id == last &&
        impl_->marks.back().epoch >= epoch) {
      return Status::Ok();  // Written before (a sentinel's second Hello of this master).
    }
    if (!impl_->failed.ok()) return impl_->failed;
  }
  if (impl_->wal) {
    if (Status s = impl_->StopCommitter(); !s.ok()) return s;
    Status s = impl_->wal->Append({}, epoch);
    if (s.ok()) s = impl_->wal->Sync();  // A failure stops the WAL, and AdoptWal the log.
    impl_->AdoptWal();
    if (!s.ok()) return s;
  }
  MutexLock lock(impl_->mu);
  impl_->marks.push_back({last, epoch});
  return Status::Ok();
}

uint64_t NodeLog::LastEpoch() const {
  const LogId last = last_id();
  const uint64_t mark = impl_->MarkAfter(last);
  return mark != 0 ? mark : memory_.LastEpoch();
}

uint64_t NodeLog::EpochAt(LogId id) const {
  if (id == 0) return 0;
  if (const uint64_t mark = impl_->MarkAfter(id); mark != 0) return mark;
  std::vector<Entry> entry = memory_.Read(id, 1, 0);
  return entry.empty() ? 0 : entry.front().epoch;
}

std::vector<core::EpochStart> NodeLog::EpochStarts() const {
  std::vector<core::EpochStart> entries = memory_.EpochStarts();
  std::vector<EpochMark> marks;
  {
    MutexLock lock(impl_->mu);
    marks = impl_->marks;
  }
  if (marks.empty()) return entries;
  // A mark's epoch is newer than the entry before it and no newer than the one after it, so
  // merging by (first id, epoch) keeps both orders.
  std::vector<core::EpochStart> merged;
  merged.reserve(entries.size() + marks.size());
  size_t next_mark = 0;
  for (const core::EpochStart& step : entries) {
    for (; next_mark < marks.size(); ++next_mark) {
      const core::EpochStart mark{marks[next_mark].epoch, marks[next_mark].after_id + 1};
      if (std::tie(mark.first_id, mark.epoch) >= std::tie(step.first_id, step.epoch)) break;
      merged.push_back(mark);
    }
    if (next_mark < marks.size() && marks[next_mark].after_id + 1 == step.first_id &&
        marks[next_mark].epoch == step.epoch) {
      ++next_mark;  // The entries start the same step.
    }
    merged.push_back(step);
  }
  for (; next_mark < marks.size(); ++next_mark) {
    merged.push_back({marks[next_mark].epoch, marks[next_mark].after_id + 1});
  }
  return merged;
}

Status NodeLog::Flush() {
  if (!impl_->wal) return Status::Ok();
  if (Status s = impl_->StopCommitter(); !s.ok()) return s;  // It syncs and reports the rest.
  impl_->AdoptWal();
  return status();
}

LogId NodeLog::durable_id() const { return impl_->wal ? impl_->durable.load() : last_id(); }

Status NodeLog::status() const {
  MutexLock lock(impl_->mu);
  return impl_->failed;
}

}  // namespace rlog::storage
