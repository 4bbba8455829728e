#include "app/node_storage.h"

#include <spdlog/spdlog.h>

#include "storage/sync_journal_file_system.h"

namespace rlog::app {

namespace {

storage::FsyncPolicy ToStorage(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::kAlways:
      return storage::FsyncPolicy::kAlways;
    case FsyncPolicy::kInterval:
      return storage::FsyncPolicy::kInterval;
    case FsyncPolicy::kNever:
      return storage::FsyncPolicy::kNever;
  }
  return storage::FsyncPolicy::kAlways;
}

}  // namespace

Result<DataDirFileSystem> DataDirFileSystem::Open(const Config& config) {
  DataDirFileSystem fs;
  if (config.test_sync_journal.empty()) return fs;
  auto journaled =
      storage::SyncJournalFileSystem::Open(storage::PosixFileSystem(), config.test_sync_journal);
  if (!journaled.ok()) return journaled.status();
  spdlog::warn("TEST: journaling every sync of {} to {}", config.data_dir,
               config.test_sync_journal);
  fs.journaled_ = std::move(journaled).value();
  return fs;
}

Result<std::unique_ptr<storage::NodeLog>> OpenNodeLog(const Config& config,
                                                      const DataDirFileSystem& fs,
                                                      metrics::Metrics& metrics,
                                                      storage::NodeLog::DurableCallback on_durable,
                                                      storage::NodeLog::ErrorCallback on_error) {
  storage::NodeLogOptions options;
  options.data_dir = config.data_dir;
  options.fs = &fs.get();
  options.fsync = ToStorage(config.fsync);
  options.fsync_interval = std::chrono::milliseconds(config.fsync_interval_ms);
  options.wal.segment_bytes = config.wal_segment_bytes;
  options.wal.preallocate_bytes = config.wal_preallocate_bytes;
  options.group_commit = std::chrono::microseconds(config.wal_group_commit_us);
  options.move_aside_corrupt = config.wal_on_corruption == OnCorruption::kRefetch;
  options.idempotency_keys = config.idempotency_keys;
  // wal.sync_on_replication_thread: a sentinel's one writer (the replication thread) gets the
  // master's next batch only once it acknowledged this one, so the round may run on it, sparing
  // two thread hand-offs per batch (docs/PERFORMANCE.md, "Rounds on the sentinel's thread"). Off
  // by default: the group commit stays off the threads that serve gRPC calls. A master's appends
  // come from the HTTP threads, which must not wait for an fsync while other connections wait
  // for them: it ignores the key. --test-ack-before-fsync keeps the committer thread: on the
  // replication thread an ack sent before the fsync would leave only after it, and the broken
  // node could not be caught.
  options.rounds_on_caller = config.role == Role::kSentinel &&
                             config.wal_sync_on_replication_thread && !config.test_ack_before_fsync;
  if (options.rounds_on_caller) {
    spdlog::info(
        "writing and syncing each batch on the replication thread "
        "(wal.sync_on_replication_thread)");
  }
  options.observe_sync = [&metrics](std::chrono::nanoseconds took) {
    metrics.ObserveWalSync(took);
  };
  if (config.test_ack_before_fsync) {
    spdlog::warn("TEST: acknowledging writes before their fsync, as a broken node would");
    options.ack_before_sync_for_testing = true;
  }
  auto opened =
      storage::NodeLog::Open(std::move(options), std::move(on_durable), std::move(on_error));
  if (!opened.ok()) {
    const Status& error = opened.status();
    if (error.code() == Status::Code::kCorruption) {
      return Status::Corruption(
          "cannot recover the write-ahead log in " + config.data_dir + ": " + error.message() +
          (config.role == Role::kSentinel
               ? " (with wal.on_corruption: refetch a sentinel moves it aside and fetches the log "
                 "from the master again)"
               : ""));
    }
    return Status::IOError("cannot open the write-ahead log in " + config.data_dir + ": " +
                           error.message());
  }
  std::unique_ptr<storage::NodeLog> log = std::move(opened).value();
  if (!log->persistent()) {
    spdlog::info(
        "no data_dir: the log is kept in memory only (a restart starts this node empty, and it "
        "fetches the log again)");
    return log;
  }

  const storage::WalRecoveryReport& r = log->recovery();
  metrics.EnableWal(r.entries, r.truncated_bytes, r.truncated_records);
  if (!log->moved_aside().ok()) {
    spdlog::warn(
        "the write-ahead log in {} was corrupt ({}); moved it aside, starting empty and "
        "fetching the log from the master again",
        config.data_dir, log->moved_aside().message());
  }
  spdlog::info(
      "recovered {} entries of log '{}' (epoch {}, durable id {}) from {} segment(s) in {} "
      "(fsync: {})",
      r.entries, log->log_id(), log->epoch(), log->durable_id(), r.segments, config.data_dir,
      FsyncPolicyName(config.fsync));
  if (!r.truncated_file.empty() && r.truncated_offset == 0) {
    spdlog::warn(
        "removed {} ({} bytes: {}): the last segment, created just before a crash, without a "
        "complete header",
        r.truncated_file, r.truncated_bytes, r.truncated_bytes > 0 ? r.truncated_reason : "empty");
  } else if (r.truncated_bytes > 0) {
    spdlog::warn("cut a torn tail of {} bytes ({} record(s)) from {} at offset {}: {}",
                 r.truncated_bytes, r.truncated_records, r.truncated_file, r.truncated_offset,
                 r.truncated_reason);
  }
  return log;
}

namespace {
std::string AlwaysSyncedPath(const std::string& data_dir) {
  return storage::JoinPath(data_dir, "always-synced");
}
}  // namespace

bool HasAlwaysSyncedMark(const DataDirFileSystem& fs, const std::string& data_dir) {
  return fs.get().FileSize(AlwaysSyncedPath(data_dir)).ok();
}

Status SetAlwaysSyncedMark(const DataDirFileSystem& fs, const std::string& data_dir) {
  if (HasAlwaysSyncedMark(fs, data_dir)) return Status::Ok();
  return storage::WriteNewFileDurably(fs.get(), AlwaysSyncedPath(data_dir), "");
}

Status ClearAlwaysSyncedMark(const DataDirFileSystem& fs, const std::string& data_dir) {
  if (!HasAlwaysSyncedMark(fs, data_dir)) return Status::Ok();
  if (Status s = fs.get().Remove(AlwaysSyncedPath(data_dir)); !s.ok()) return s;
  return fs.get().SyncDir(data_dir);
}

}  // namespace rlog::app
