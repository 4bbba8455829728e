#include "storage/wal.h"

#include <utility>

#include "storage/wal_format.h"

namespace rlog::storage {

Result<std::unique_ptr<Wal>> Wal::Open(FileSystem& fs, std::string dir, WalOptions options,
                                       const EntryBatchSink& sink) {
  if (auto listed = fs.ListDir(dir); !listed.ok()) {
    if (listed.status().code() != Status::Code::kNotFound) return listed.status();
    if (Status s = fs.CreateDir(dir); !s.ok()) return s;
    if (Status s = fs.SyncDir(ParentDir(dir)); !s.ok()) return s;
  }
  auto recovered = RecoverWal(fs, dir, options, sink);
  if (!recovered.ok()) return recovered.status();
  RecoveredWal& r = recovered.value();
  std::unique_ptr<Wal> wal(new Wal(fs, std::move(dir), options));
  wal->recovery_ = std::move(r.report);
  wal->log_id_ = std::move(r.log_id);
  wal->epoch_ = r.epoch;
  wal->last_id_ = r.last_id;
  if (!r.last_segment_path.empty()) {
    auto segment = fs.OpenForAppend(r.last_segment_path, FileSystem::OpenMode::kOpenExisting);
    if (!segment.ok()) return segment.status();
    wal->segment_ = std::move(segment.value());
    wal->segment_first_id_ = r.last_segment_first_id;
    // What we recovered may still sit only in the page cache (the previous process crashed
    // before its fsync); make it durable before anyone reports it as held.
    if (Status s = wal->segment_->Sync(); !s.ok()) return s;
    if (Status s = fs.SyncDir(wal->dir_); !s.ok()) return s;
  }
  wal->synced_id_ = wal->last_id_;
  return wal;
}

Wal::Wal(FileSystem& fs, std::string dir, WalOptions options)
    : fs_(fs), dir_(std::move(dir)), options_(options) {}

Wal::~Wal() {
  if (segment_) (void)segment_->Close();
}

Status Wal::SetLogIdentity(const std::string& log_id, uint64_t epoch) {
  if (!failed_.ok()) return failed_;
  if (log_id.empty()) return Status::InvalidArgument("empty log id");
  if (log_id_.empty()) {  // A new log: its first segment.
    const LogId first = last_id_ + 1;
    auto segment = CreateSegment(JoinPath(dir_, SegmentFileName(first)), {first, epoch, log_id});
    if (!segment.ok()) return segment.status();
    log_id_ = log_id;
    epoch_ = epoch;
    segment_ = std::move(segment.value());
    segment_first_id_ = first;
    return Sync();
  }
  if (log_id != log_id_) {
    return Status::FailedPrecondition("WAL in " + dir_ + " belongs to log '" + log_id_ +
                                      "', not '" + log_id + "'");
  }
  if (epoch < epoch_) {
    return Status::FailedPrecondition("epoch " + std::to_string(epoch) +
                                      " is older than the WAL's epoch " + std::to_string(epoch_));
  }
  if (epoch == epoch_) return Status::Ok();
  const uint64_t old_epoch = epoch_;
  epoch_ = epoch;
  Status s = segment_first_id_ <= last_id_ ? Rotate() : ReplaceSegment();
  if (s.ok()) s = Sync();
  if (!s.ok() && failed_.ok()) epoch_ = old_epoch;
  return s;
}

Status Wal::Append(std::span<const Entry> entries) {
  if (!failed_.ok()) return failed_;
  if (entries.empty()) return Status::Ok();
  if (!segment_) return Status::FailedPrecondition("WAL has no log identity yet");
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].id != last_id_ + 1 + i) {
      return Status::InvalidArgument("WAL append of id " + std::to_string(entries[i].id) +
                                     " where id " + std::to_string(last_id_ + 1 + i) +
                                     " was expected");
    }
    if (entries[i].message.size() > kMaxPayloadBytes) {
      return Status::InvalidArgument("message of id " + std::to_string(entries[i].id) +
                                     " is larger than the WAL's record limit");
    }
  }
  if (segment_->size() >= options_.segment_bytes && segment_first_id_ <= last_id_) {
    if (Status s = Rotate(); !s.ok()) return s;
  }
  buffer_.clear();
  for (const Entry& e : entries) {
    EncodeRecord({RecordType::kEntry, e.id, epoch_, e.timestamp_ms, e.message}, &buffer_);
  }
  const uint64_t good = segment_->size();
  if (Status s = segment_->Append(buffer_); !s.ok()) {
    const std::string what = "WAL append of ids " + std::to_string(entries.front().id) + ".." +
                             std::to_string(entries.back().id) +
                             " failed, not written: " + s.message();
    if (Status cut = segment_->Truncate(good); !cut.ok()) {
      return Fail(
          Status::IOError(what + "; cutting the partial write back failed too: " + cut.message()));
    }
    return Status::IOError(what);
  }
  last_id_ = entries.back().id;
  return Status::Ok();
}

Status Wal::Sync() {
  if (!failed_.ok()) return failed_;
  if (!segment_) return Status::Ok();
  if (Status s = segment_->Sync(); !s.ok()) return Fail(s);
  if (dir_dirty_) {
    if (Status s = fs_.SyncDir(dir_); !s.ok()) return Fail(s);
    dir_dirty_ = false;
  }
  synced_id_ = last_id_;
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> Wal::CreateSegment(const std::string& path,
                                                         const SegmentHeader& header) {
  auto file = fs_.OpenForAppend(path, FileSystem::OpenMode::kCreateNew);
  if (!file.ok()) return file.status();
  dir_dirty_ = true;
  if (Status s = file.value()->Append(EncodeSegmentHeader(header)); !s.ok()) {
    // A headerless file newer than the live segment would make the log unrecoverable.
    (void)file.value()->Close();
    if (Status r = fs_.Remove(path); !r.ok()) return Fail(r);
    return s;
  }
  return file;
}

// Starts the next segment. The current one is synced first: every segment but the last must be
// complete on disk, since recovery treats damage there as corruption.
Status Wal::Rotate() {
  if (Status s = segment_->Sync(); !s.ok()) return Fail(s);
  auto next =
      CreateSegment(JoinPath(dir_, SegmentFileName(last_id_ + 1)), {last_id_ + 1, epoch_, log_id_});
  if (!next.ok()) return next.status();
  (void)segment_->Close();  // Already synced; nothing left to lose.
  segment_ = std::move(next.value());
  segment_first_id_ = last_id_ + 1;
  return Status::Ok();
}

// The current segment holds only its header: write a new one (with the new epoch) beside it,
// sync it, and rename it into place.
Status Wal::ReplaceSegment() {
  const std::string path = segment_->path();
  const std::string temp = path + std::string(kTempSuffix);
  (void)fs_.Remove(temp);  // Left by an earlier failed attempt, if any.
  auto file = CreateSegment(temp, {segment_first_id_, epoch_, log_id_});
  if (!file.ok()) return file.status();
  if (Status s = file.value()->Sync(); !s.ok()) return Fail(s);
  (void)file.value()->Close();
  if (Status s = fs_.Rename(temp, path); !s.ok()) {
    (void)fs_.Remove(temp);
    return s;
  }
  auto reopened = fs_.OpenForAppend(path, FileSystem::OpenMode::kOpenExisting);
  if (!reopened.ok()) return Fail(reopened.status());
  (void)segment_->Close();
  segment_ = std::move(reopened.value());
  return Status::Ok();
}

Status Wal::Fail(const Status& cause) {
  failed_ = Status::IOError(cause.message() + " -- the WAL in " + dir_ +
                            " has stopped; nothing after id " + std::to_string(synced_id_) +
                            " is known durable. Stop the process and restart it (recovery "
                            "repairs the files); never retry a failed fsync.");
  return failed_;
}

}  // namespace rlog::storage
