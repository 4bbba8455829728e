#include "storage/wal.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>

#include "storage/wal_format.h"

namespace rlog::storage {

Result<std::unique_ptr<Wal>> Wal::Open(FileSystem& fs, std::string dir, WalOptions options,
                                       const EntryBatchSink& sink) {
  if (Status s = CreateDirDurably(fs, dir); !s.ok()) return s;
  auto recovered = RecoverWal(fs, dir, options, sink);
  if (!recovered.ok()) return recovered.status();
  RecoveredWal& r = recovered.value();
  std::unique_ptr<Wal> wal(new Wal(fs, std::move(dir), options));
  wal->recovery_ = std::move(r.report);
  wal->log_id_ = std::move(r.log_id);
  wal->epoch_ = r.epoch;
  wal->last_id_ = r.last_id;
  wal->last_epoch_ = r.last_entry_epoch;
  wal->mark_epoch_ = r.marks.empty() || r.marks.back().after_id != r.last_id ? 0
                                                                             : r.marks.back().epoch;
  wal->recovered_marks_ = std::move(r.marks);
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
  if (!r.last_segment_path.empty() && r.last_segment_version < kFormatVersion) {
    // Written by an older rlog: what this one appends (keyed entries) goes to a segment of this
    // version, which an older rlog refuses to open rather than misreading it as a torn tail.
    Status s = wal->segment_first_id_ <= wal->last_id_ ? wal->Rotate() : wal->ReplaceSegment(true);
    if (s.ok()) s = wal->Sync();
    if (!s.ok()) return s;
  }
  return wal;
}

Wal::Wal(FileSystem& fs, std::string dir, WalOptions options)
    : fs_(fs), dir_(std::move(dir)), options_(options) {}

Wal::~Wal() { Close(); }

// No sync here makes anything durable that was not.
void Wal::Close() {
  if (!segment_) return;
  if (failed_.ok()) (void)DropReserve();
  (void)segment_->Close();
  segment_.reset();
  if (failed_.ok()) failed_ = Status::FailedPrecondition("the WAL in " + dir_ + " is closed");
}

Status Wal::SetLogIdentity(const std::string& log_id, uint64_t epoch) {
  if (!failed_.ok()) return failed_;
  if (Status s = CheckLogIdentity(log_id_, epoch_, last_id_ > 0, log_id, epoch); !s.ok()) {
    return s;
  }
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
  if (log_id == log_id_ && epoch == epoch_) return Status::Ok();
  // A newer epoch, or (with no entry yet) another log: a header saying so.
  std::string old_log_id = std::exchange(log_id_, log_id);
  const uint64_t old_epoch = std::exchange(epoch_, epoch);
  const bool same_log = log_id == old_log_id;
  Status s = segment_first_id_ <= last_id_ ? Rotate() : ReplaceSegment(same_log);
  if (s.ok()) s = Sync();
  if (!s.ok() && failed_.ok()) {
    log_id_ = std::move(old_log_id);
    epoch_ = old_epoch;
  } else if (s.ok() && !same_log) {
    mark_epoch_ = 0;  // Another log's marks went with its segment.
  }
  return s;
}

Status Wal::Append(std::span<const Entry> entries, uint64_t mark_epoch) {
  if (!failed_.ok()) return failed_;
  if (entries.empty() && mark_epoch == 0) return Status::Ok();
  if (!segment_) return Status::FailedPrecondition("WAL has no log identity yet");
  if (Status s = CheckEntriesContinue(entries, last_id_ + 1, std::max(last_epoch_, mark_epoch_),
                                      epoch_);
      !s.ok()) {
    return s;
  }
  const LogId last = entries.empty() ? last_id_ : entries.back().id;
  if (mark_epoch != 0) {
    const uint64_t before = entries.empty() ? last_epoch_ : entries.back().epoch;
    if (Status s = CheckEpochMark(mark_epoch, before, epoch_); !s.ok()) return s;
    if (entries.empty() && mark_epoch == mark_epoch_) return Status::Ok();  // Written already.
    if (entries.empty() && mark_epoch < mark_epoch_) {
      return Status::InvalidArgument("an epoch mark of epoch " + std::to_string(mark_epoch) +
                                     " after one of epoch " + std::to_string(mark_epoch_));
    }
  }
  if (segment_->size() >= options_.segment_bytes && segment_first_id_ <= last_id_) {
    if (Status s = Rotate(); !s.ok()) return s;
  }
  buffer_.clear();
  for (const Entry& e : entries) {
    EncodeRecord({e.idempotency_key.empty() ? RecordType::kEntry : RecordType::kKeyedEntry, e.id,
                  e.epoch, e.timestamp_ms, e.message, e.idempotency_key},
                 &buffer_);
  }
  if (mark_epoch != 0) EncodeRecord({RecordType::kEpochMark, last + 1, mark_epoch, 0, {}}, &buffer_);
  const uint64_t good = segment_->size();
  if (Status s = Reserve(good + buffer_.size()); !s.ok()) return s;
  if (Status s = segment_->Append(buffer_); !s.ok()) {
    const std::string what =
        "WAL append of " +
        (entries.empty() ? std::string("an epoch mark")
                         : "ids " + std::to_string(entries.front().id) + ".." +
                               std::to_string(entries.back().id)) +
        " failed, not written: " + s.message();
    if (Status cut = segment_->Truncate(good); !cut.ok()) {
      return Fail(
          Status::IOError(what + "; cutting the partial write back failed too: " + cut.message()));
    }
    return Status::IOError(what);
  }
  if (!entries.empty()) {
    last_id_ = last;
    last_epoch_ = entries.back().epoch;
    mark_epoch_ = 0;
  }
  if (mark_epoch != 0) mark_epoch_ = mark_epoch;
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

// Whichever of its steps a crash keeps, a truncation must leave no gap between segments and
// must not lose the identity or the accepted epoch. The segment that will hold the last kept entry
// (`home`; the first segment when nothing is kept) stays; the segments after it go, newest first,
// and only then is `home` cut. The accepted epoch is in the newest headers (or, in a directory
// this writer did not write, maybe only in entries), so when `home`'s own is older it is first
// rewritten whole with the accepted epoch (a temporary file, synced, renamed over it): recovery
// takes the highest epoch of any header, whatever the order of the headers.
Status Wal::TruncateAfter(LogId keep, uint64_t marks_through) {
  if (!failed_.ok()) return failed_;
  if (keep > last_id_) {
    return Status::InvalidArgument("cannot keep ids up to " + std::to_string(keep) +
                                   ": the WAL ends at " + std::to_string(last_id_));
  }
  // Also a log without identity: no entries, no marks.
  if (keep == last_id_ && mark_epoch_ <= marks_through) return Status::Ok();
  auto names = fs_.ListDir(dir_);
  if (!names.ok()) return names.status();
  // `home` holds what follows entry `keep`: the marks after it (they start the next segment when
  // the log went on in a new one) or else the entry itself.
  LogId home = 0, before_home = 0;  // And the segment before it.
  std::vector<LogId> later;
  for (const std::string& name : names.value()) {
    const std::optional<LogId> first = ParseSegmentFileName(name);
    if (!first) continue;
    if (*first > keep + 1) {
      later.push_back(*first);
    } else if (*first > home) {
      before_home = home;
      home = *first;
    } else {
      before_home = std::max(before_home, *first);
    }
  }
  if (home == 0) return Status::Corruption("no WAL segment in " + dir_ + " (truncation refused)");
  bool found = keep == 0 || home == keep + 1;  // Entry `keep` ends the segment before.
  uint64_t keep_epoch = 0, keep_mark = 0;
  if (home == keep + 1 && keep > 0) {
    // Its epoch, for the next entry's check: the last entry of the segment before. Marks after
    // it may end that segment too (written with the entries before them, and the log went on in
    // a new segment): if one of them goes, the cut is made there, and `home` goes whole.
    auto tail = EntryTailIn(JoinPath(dir_, SegmentFileName(before_home)), keep);
    if (!tail.ok()) return tail.status();
    if (tail.value().newest_mark > marks_through) {
      later.push_back(home);
      home = before_home;
      found = false;
    } else {
      keep_epoch = tail.value().epoch;
      keep_mark = tail.value().newest_mark;  // Stays; marks at the start of `home` may follow.
    }
  }
  const std::string home_path = JoinPath(dir_, SegmentFileName(home));
  auto bytes = ReadFileToString(fs_, home_path);
  if (!bytes.ok()) return bytes.status();
  // Where the records of `home` end, where the last kept one ends, and the epochs involved.
  const std::string_view in = bytes.value();
  uint64_t end = 0, cut = 0, header_bytes = 0, header_epoch = 0;
  uint32_t header_version = kFormatVersion;
  Record record;
  size_t size = 0;
  while (DecodeRecord(in.substr(end), &record, &size) == DecodeStatus::kOk) {
    if (end == 0) {
      auto header = ParseSegmentHeader(record);
      if (!header.ok()) return header.status();
      header_epoch = header.value().epoch;
      header_version = header.value().version;
      header_bytes = cut = size;
    } else if (record.id <= keep) {  // Entries up to `keep`, and marks before them.
      cut = end + size;
      if (IsEntry(record.type)) {
        keep_epoch = record.epoch;
        found = record.id == keep;
      }
    } else if (found && cut == end && record.type == RecordType::kEpochMark &&
               record.id == keep + 1 && record.epoch <= marks_through) {
      cut = end + size;  // A mark right after entry `keep` that stays.
      keep_mark = record.epoch;
    }
    end += size;
  }
  if (!found) {
    return Status::Corruption("WAL segment " + home_path + " does not hold id " +
                              std::to_string(keep) + " (truncation refused)");
  }
  std::string replacement;
  if (header_epoch < epoch_ || header_version < kFormatVersion) {
    // The new header has the old one's size (same log id), so offsets are unchanged. An older
    // version's goes too: `home` becomes the live segment again, and keyed entries will follow
    // (Open's upgrade, docs/wal-format.md "Versions").
    auto temp = WriteReplacement(home, in.substr(header_bytes, end - header_bytes));
    if (!temp.ok()) return temp.status();
    replacement = std::move(temp.value());
  }
  if (Status s = CutSegments(home, replacement, std::move(later), cut); !s.ok()) return s;
  last_id_ = keep;
  last_epoch_ = keep_epoch;
  mark_epoch_ = keep_mark;
  synced_id_ = keep;
  return Status::Ok();
}

Result<Wal::EntryTail> Wal::EntryTailIn(const std::string& path, LogId id) {
  auto bytes = ReadFileToString(fs_, path);
  if (!bytes.ok()) return bytes.status();
  const std::string_view in = bytes.value();
  Record record;
  size_t size = 0;
  std::optional<uint64_t> epoch;
  uint64_t newest_mark = 0;
  for (uint64_t at = 0; DecodeRecord(in.substr(at), &record, &size) == DecodeStatus::kOk;
       at += size) {
    if (at > 0 && IsEntry(record.type) && record.id == id) epoch = record.epoch;
    if (epoch && record.type == RecordType::kEpochMark && record.id == id + 1) {
      newest_mark = std::max(newest_mark, record.epoch);
    }
  }
  if (!epoch) {
    return Status::Corruption("WAL segment " + path + " does not hold id " + std::to_string(id) +
                              " (truncation refused)");
  }
  return EntryTail{*epoch, newest_mark};
}

Status Wal::CutSegments(LogId home, const std::string& replacement, std::vector<LogId> later,
                        uint64_t cut) {
  // From here on the files no longer match this object: any error stops the WAL (recovery then
  // finds the old log or a shorter one, see TruncateAfter).
  (void)segment_->Close();
  segment_.reset();
  const std::string home_path = JoinPath(dir_, SegmentFileName(home));
  if (!replacement.empty()) {
    if (Status s = fs_.Rename(replacement, home_path); !s.ok()) return Fail(s);
    if (Status s = fs_.SyncDir(dir_); !s.ok()) return Fail(s);
  }
  // Newest first, each removal durable before the next: a crash in between leaves a shorter log,
  // never a gap, even on a file system that does not keep directory changes in order.
  std::sort(later.begin(), later.end(), std::greater<>());
  for (const LogId first : later) {
    if (Status s = fs_.Remove(JoinPath(dir_, SegmentFileName(first))); !s.ok()) return Fail(s);
    if (Status s = fs_.SyncDir(dir_); !s.ok()) return Fail(s);
  }
  if (later.empty()) {
    if (Status s = fs_.SyncDir(dir_); !s.ok()) return Fail(s);
  }
  dir_dirty_ = false;
  auto reopened = fs_.OpenForAppend(home_path, FileSystem::OpenMode::kOpenExisting);
  if (!reopened.ok()) return Fail(reopened.status());
  segment_ = std::move(reopened.value());
  segment_first_id_ = home;
  preallocation_failed_ = false;
  if (Status s = segment_->Truncate(cut); !s.ok()) return Fail(s);
  if (Status s = segment_->Sync(); !s.ok()) return Fail(s);
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

// Preallocation only makes fsyncs cheaper: when the zeros do not fit (ENOSPC, a file-size
// limit) they are cut off again and this segment goes on without them, so a write that fits is
// never refused for want of room for zeros. Only a failed cut stops the WAL.
Status Wal::Reserve(uint64_t end) {
  const uint64_t chunk = options_.preallocate_bytes;
  if (chunk == 0 || preallocation_failed_ || end <= segment_->allocated_size()) {
    return Status::Ok();
  }
  // Whole chunks, but not far past the size at which the segment rotates.
  const uint64_t rounded = (end / chunk + 1) * chunk;
  Status s = segment_->Preallocate(std::max(end, std::min(rounded, options_.segment_bytes)));
  if (s.ok()) return s;
  preallocation_failed_ = true;
  if (Status cut = DropReserve(); !cut.ok()) {
    return Fail(Status::IOError("preallocating WAL space failed (" + s.message() +
                                ") and cutting the zeros back failed too: " + cut.message()));
  }
  return Status::Ok();
}

Status Wal::DropReserve() {
  if (segment_->allocated_size() == segment_->size()) return Status::Ok();
  return segment_->Truncate(segment_->size());
}

// Starts the next segment. The current one loses its preallocated zeros and is synced first:
// every segment but the last must be complete on disk, and recovery treats anything else in a
// closed segment (zeros included) as corruption.
Status Wal::Rotate() {
  if (Status s = DropReserve(); !s.ok()) return s;
  if (Status s = segment_->Sync(); !s.ok()) return Fail(s);
  // The closed segment's own directory entry too, before a later one exists: otherwise, with
  // fsync: never (no Sync between rotations), a file system that does not keep directory changes
  // in order could lose a middle segment, and recovery would refuse the whole log.
  if (dir_dirty_) {
    if (Status s = fs_.SyncDir(dir_); !s.ok()) return Fail(s);
    dir_dirty_ = false;
  }
  auto next =
      CreateSegment(JoinPath(dir_, SegmentFileName(last_id_ + 1)), {last_id_ + 1, epoch_, log_id_});
  if (!next.ok()) return next.status();
  (void)segment_->Close();  // Already synced; nothing left to lose.
  segment_ = std::move(next.value());
  preallocation_failed_ = false;
  segment_first_id_ = last_id_ + 1;
  return Status::Ok();
}

// The current segment holds no entry, only its header and maybe epoch marks: write a new one
// (with the new identity) beside it, sync it, and rename it into place. A newer epoch of the same
// log keeps the marks: they rank this log (a take-over that wrote no entry yet), and the node
// goes on reporting them (NodeLog::DurableLastEpoch) after the change.
Status Wal::ReplaceSegment(bool keep_marks) {
  std::string marks;
  if (keep_marks) {
    auto bytes = ReadFileToString(fs_, JoinPath(dir_, SegmentFileName(segment_first_id_)));
    if (!bytes.ok()) return bytes.status();
    const std::string_view in = std::string_view(bytes.value()).substr(0, segment_->size());
    Record header;
    size_t header_bytes = 0;
    if (DecodeRecord(in, &header, &header_bytes) != DecodeStatus::kOk) {
      return Status::Corruption("WAL segment " + segment_->path() +
                                " lost its header (epoch change refused)");
    }
    marks = in.substr(header_bytes);
  }
  auto temp = WriteReplacement(segment_first_id_, marks);
  if (!temp.ok()) return temp.status();
  return InstallReplacement(temp.value(), segment_first_id_);
}

Result<std::string> Wal::WriteReplacement(LogId first_id, std::string_view records) {
  const std::string temp = JoinPath(dir_, SegmentFileName(first_id)) + std::string(kTempSuffix);
  (void)fs_.Remove(temp);  // Left by an earlier failed attempt, if any.
  auto file = CreateSegment(temp, {first_id, epoch_, log_id_});
  if (!file.ok()) return file.status();
  if (!records.empty()) {
    if (Status s = file.value()->Append(records); !s.ok()) {
      (void)file.value()->Close();
      (void)fs_.Remove(temp);
      return s;
    }
  }
  if (Status s = file.value()->Sync(); !s.ok()) return Fail(s);
  (void)file.value()->Close();
  return temp;
}

Status Wal::InstallReplacement(const std::string& temp, LogId first_id) {
  const std::string path = JoinPath(dir_, SegmentFileName(first_id));
  if (Status s = fs_.Rename(temp, path); !s.ok()) {
    (void)fs_.Remove(temp);
    return s;
  }
  dir_dirty_ = true;
  auto reopened = fs_.OpenForAppend(path, FileSystem::OpenMode::kOpenExisting);
  if (!reopened.ok()) return Fail(reopened.status());
  if (segment_) (void)segment_->Close();
  segment_ = std::move(reopened.value());
  preallocation_failed_ = false;
  segment_first_id_ = first_id;
  return Status::Ok();
}

Status Wal::Fail(const Status& cause) {
  failed_ = Status::IOError(cause.message() + " -- the WAL in " + dir_ +
                            " has stopped; nothing after id " + std::to_string(synced_id_) +
                            " is known durable. Stop the process and restart it (recovery "
                            "repairs the files); never retry a failed fsync.");
  return failed_;
}

Status CheckEntriesContinue(std::span<const Entry> entries, LogId next_id, uint64_t last_epoch,
                            uint64_t epoch) {
  for (const Entry& e : entries) {
    const std::string which = "entry " + std::to_string(e.id);
    if (e.id != next_id) {
      return Status::InvalidArgument(which + " where id " + std::to_string(next_id) +
                                     " was expected");
    }
    if (e.epoch < last_epoch) {
      return Status::InvalidArgument(which + " has epoch " + std::to_string(e.epoch) +
                                     ", older than the entry before it (" +
                                     std::to_string(last_epoch) + ")");
    }
    if (e.epoch > epoch) {
      return Status::InvalidArgument(which + " has epoch " + std::to_string(e.epoch) +
                                     ", newer than the log's epoch " + std::to_string(epoch) +
                                     " (adopt the master's epoch first)");
    }
    if (e.message.size() > kMaxPayloadBytes) {
      return Status::InvalidArgument(which + " is larger than the WAL's record limit");
    }
    if (e.idempotency_key.size() > kMaxKeyBytes) {
      return Status::InvalidArgument(which + " has an idempotency key longer than " +
                                     std::to_string(kMaxKeyBytes) + " bytes");
    }
    ++next_id;
    last_epoch = e.epoch;
  }
  return Status::Ok();
}

Status CheckEpochMark(uint64_t mark_epoch, uint64_t last_epoch, uint64_t epoch) {
  if (mark_epoch <= last_epoch) {
    return Status::InvalidArgument("an epoch mark of epoch " + std::to_string(mark_epoch) +
                                   " after an entry of epoch " + std::to_string(last_epoch) +
                                   " (a mark must be newer)");
  }
  if (mark_epoch > epoch) {
    return Status::InvalidArgument("an epoch mark of epoch " + std::to_string(mark_epoch) +
                                   ", newer than the log's epoch " + std::to_string(epoch));
  }
  return Status::Ok();
}

Status CheckLogIdentity(const std::string& log_id, uint64_t epoch, bool holds_entries,
                        const std::string& new_log_id, uint64_t new_epoch) {
  if (new_log_id.empty()) return Status::InvalidArgument("empty log id");
  if (log_id.empty()) return Status::Ok();
  if (new_log_id != log_id) {
    if (!holds_entries) return Status::Ok();
    return Status::FailedPrecondition("this node holds entries of log '" + log_id + "', not '" +
                                      new_log_id + "'");
  }
  if (new_epoch < epoch) {
    return Status::FailedPrecondition("epoch " + std::to_string(new_epoch) +
                                      " is older than the accepted epoch " + std::to_string(epoch));
  }
  return Status::Ok();
}

}  // namespace rlog::storage
