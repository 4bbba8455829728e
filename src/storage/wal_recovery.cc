#include "storage/wal_recovery.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "storage/wal_format.h"

namespace rlog::storage {
namespace {

constexpr size_t kSinkBatch = 4096;

// Reads the records of one segment front to back through a buffer refilled in large chunks.
class SegmentReader {
 public:
  enum class Next { kRecord, kEnd, kBad };

  SegmentReader(ReadableFile& file, uint64_t size, size_t chunk)
      : file_(file), size_(size), chunk_(std::max<size_t>(chunk, kRecordHeaderBytes)) {}

  // kRecord: *record (valid until the next call) starts at offset(). kBad: the record at
  // offset() fails verification for *why (kNeedMore: the file ends inside it).
  Result<Next> Read(Record* record, DecodeStatus* why) {
    while (true) {
      const std::string_view in(buf_.data() + pos_, buf_.size() - pos_);
      offset_ = buf_offset_ + pos_;
      if (in.empty() && read_to_ == size_) return Next::kEnd;
      size_t bytes = 0;
      const DecodeStatus status = DecodeRecord(in, record, &bytes);
      if (status == DecodeStatus::kOk) {
        pos_ += bytes;
        return Next::kRecord;
      }
      if (status == DecodeStatus::kNeedMore && read_to_ < size_) {
        if (Status s = Fill(bytes); !s.ok()) return s;
        continue;
      }
      *why = status;
      return Next::kBad;
    }
  }

  uint64_t offset() const { return offset_; }

 private:
  // Makes up to `need` bytes available from pos_, reading at least a chunk.
  Status Fill(size_t need) {
    buf_.erase(0, pos_);
    buf_offset_ += pos_;
    pos_ = 0;
    const uint64_t want =
        std::min<uint64_t>(std::max(chunk_, need - buf_.size()), size_ - read_to_);
    const size_t old = buf_.size();
    buf_.resize(old + want);
    auto got = file_.ReadAt(read_to_, buf_.data() + old, want);
    if (!got.ok()) return got.status();
    buf_.resize(old + got.value());
    read_to_ += got.value();
    if (got.value() < want) size_ = read_to_;  // Shorter than it said: its end is here.
    return Status::Ok();
  }

  ReadableFile& file_;
  uint64_t size_;
  const size_t chunk_;
  std::string buf_;  // File bytes [buf_offset_, read_to_).
  uint64_t buf_offset_ = 0;
  size_t pos_ = 0;  // Next record in buf_.
  uint64_t read_to_ = 0;
  uint64_t offset_ = 0;  // Of the record last returned.
};

class Recovery {
 public:
  Recovery(FileSystem& fs, const std::string& dir, const WalOptions& options,
           const EntryBatchSink& sink)
      : fs_(fs), dir_(dir), options_(options), sink_(sink) {}

  Result<RecoveredWal> Run() {
    auto names = fs_.ListDir(dir_);
    if (!names.ok()) return names.status();
    std::vector<std::pair<LogId, std::string>> segments;
    for (const std::string& name : names.value()) {
      if (name.ends_with(kTempSuffix)) {  // A replacement that never got renamed into place.
        if (!ParseSegmentFileName(name.substr(0, name.size() - kTempSuffix.size()))) continue;
        if (Status s = fs_.Remove(JoinPath(dir_, name)); !s.ok()) return s;
        ++state_.report.removed_files;
        dir_dirty_ = true;
      } else if (auto id = ParseSegmentFileName(name)) {
        segments.emplace_back(*id, name);
      }
    }
    std::sort(segments.begin(), segments.end());
    for (size_t i = 0; i < segments.size(); ++i) {
      Status s = ReadSegment(segments[i].first, JoinPath(dir_, segments[i].second),
                             i + 1 == segments.size());
      if (!s.ok()) return s;
    }
    if (!batch_.empty()) sink_(std::move(batch_));
    if (dir_dirty_) {
      if (Status s = fs_.SyncDir(dir_); !s.ok()) return s;
    }
    state_.last_id = next_id_ - 1;
    return std::move(state_);
  }

 private:
  static Status Corrupt(const std::string& path, uint64_t offset, const std::string& what) {
    return Status::Corruption("WAL segment " + path + " at offset " + std::to_string(offset) +
                              ": " + what);
  }

  Status ReadSegment(LogId named_id, const std::string& path, bool last) {
    auto file = fs_.OpenForRead(path);
    if (!file.ok()) return file.status();
    auto size = file.value()->Size();
    if (!size.ok()) return size.status();
    SegmentReader reader(*file.value(), size.value(), options_.read_chunk_bytes);
    Record record;
    DecodeStatus why = DecodeStatus::kOk;
    auto next = reader.Read(&record, &why);
    if (!next.ok()) return next.status();
    if (next.value() != SegmentReader::Next::kRecord) {  // The header is missing or damaged.
      if (!last) return Corrupt(path, 0, std::string("segment header: ") + DecodeStatusName(why));
      // A segment whose header never reached the disk was the one the WAL created next, named
      // for the id after the last one. Any other name is not a crash's leftover: a segment
      // before it is missing (and the file is not ours to delete).
      if (named_id != next_id_) {
        return Corrupt(path, 0,
                       std::string("segment header: ") + DecodeStatusName(why) +
                           ", and the segment is named for id " + std::to_string(named_id) +
                           " where id " + std::to_string(next_id_) +
                           " was expected (a missing segment)");
      }
      return CutTail(path, *file.value(), size.value(), 0, why);
    }
    auto header = ParseSegmentHeader(record);
    if (!header.ok()) return Corrupt(path, 0, header.status().message());
    if (Status s = CheckHeader(path, named_id, header.value()); !s.ok()) return s;
    ++state_.report.segments;
    state_.last_segment_version = header.value().version;
    while (true) {
      next = reader.Read(&record, &why);
      if (!next.ok()) return next.status();
      if (next.value() == SegmentReader::Next::kEnd) break;
      if (next.value() == SegmentReader::Next::kBad) {
        if (!last) return Corrupt(path, reader.offset(), DecodeStatusName(why));
        if (Status s = CutTail(path, *file.value(), size.value(), reader.offset(), why); !s.ok()) {
          return s;
        }
        state_.last_segment_first_id = named_id;
        return Status::Ok();
      }
      if (Status s = TakeEntry(path, reader.offset(), record); !s.ok()) return s;
    }
    state_.last_segment_path = path;
    state_.last_segment_first_id = named_id;
    state_.last_segment_size = size.value();
    return Status::Ok();
  }

  Status CheckHeader(const std::string& path, LogId named_id, const SegmentHeader& header) {
    if (header.first_id != named_id) {
      return Corrupt(path, 0, "header says first id " + std::to_string(header.first_id));
    }
    if (header.first_id != next_id_) {
      return Corrupt(path, 0,
                     "segment starts at id " + std::to_string(header.first_id) + " but id " +
                         std::to_string(next_id_) +
                         " was expected (ids not contiguous across segments)");
    }
    if (state_.report.segments > 0 && header.log_id != state_.log_id) {
      return Corrupt(
          path, 0,
          "segment of log '" + header.log_id + "' among segments of log '" + state_.log_id + "'");
    }
    // Header epochs may decrease: a truncation rewrites an earlier header with the accepted
    // epoch before it removes the later segments (Wal::TruncateAfter).
    state_.log_id = header.log_id;
    state_.epoch = std::max(state_.epoch, header.epoch);
    return Status::Ok();
  }

  Status TakeEntry(const std::string& path, uint64_t offset, const Record& record) {
    if (record.type == RecordType::kSegmentHeader) {
      return Corrupt(path, offset, "header record mid-segment");
    }
    const bool mark = record.type == RecordType::kEpochMark;
    const char* what = mark ? "epoch mark" : "entry";
    if (record.id != next_id_) {
      return Corrupt(path, offset,
                     std::string(what) + " id " + std::to_string(record.id) + " where id " +
                         std::to_string(next_id_) + " was expected");
    }
    if (mark ? record.epoch <= state_.last_entry_epoch : record.epoch < state_.last_entry_epoch) {
      return Corrupt(path, offset,
                     std::string(what) + " " + std::to_string(record.id) + " has epoch " +
                         std::to_string(record.epoch) + ", " + (mark ? "not newer" : "older") +
                         " than the entry before it (" +
                         std::to_string(state_.last_entry_epoch) + ")");
    }
    const uint64_t mark_before = state_.marks.empty() ? 0 : state_.marks.back().epoch;
    if (record.epoch < mark_before) {
      return Corrupt(path, offset,
                     std::string(what) + " " + std::to_string(record.id) + " has epoch " +
                         std::to_string(record.epoch) + ", older than the epoch mark before it (" +
                         std::to_string(mark_before) + ")");
    }
    state_.epoch = std::max(state_.epoch, record.epoch);
    if (mark) {
      state_.marks.push_back({record.id - 1, record.epoch});
      return Status::Ok();
    }
    state_.last_entry_epoch = record.epoch;
    batch_.push_back(Entry{record.id, record.timestamp_ms, std::string(record.payload),
                           record.epoch, std::string(record.key)});
    ++next_id_;
    ++state_.report.entries;
    if (batch_.size() >= kSinkBatch) {
      sink_(std::move(batch_));
      batch_.clear();
    }
    return Status::Ok();
  }

  // The last segment has a bad record at `offset`: a torn tail if nothing valid follows.
  Status CutTail(const std::string& path, ReadableFile& file, uint64_t size, uint64_t offset,
                 DecodeStatus why) {
    std::string tail(size - offset, '\0');
    auto got = file.ReadAt(offset, tail.data(), tail.size());
    if (!got.ok()) return got.status();
    tail.resize(got.value());
    const bool zeros = tail.find_first_not_of('\0') == std::string::npos;
    const std::string reason = zeros ? "zero-filled tail" : DecodeStatusName(why);
    if (ValidRecordFollows(tail)) {
      return Corrupt(path, offset, reason + ", and valid records follow (not a torn tail)");
    }
    WalRecoveryReport& r = state_.report;
    r.truncated_bytes = tail.size();
    r.truncated_records = CountRecordStarts(tail);
    r.truncated_file = path;
    r.truncated_offset = offset;
    r.truncated_reason = reason;
    if (offset == 0) {  // Not even the header made it: the segment never existed.
      ++r.removed_files;
      dir_dirty_ = true;
      return fs_.Remove(path);
    }
    auto out = fs_.OpenForAppend(path, FileSystem::OpenMode::kOpenExisting);
    if (!out.ok()) return out.status();
    Status s = out.value()->Truncate(offset);
    if (s.ok()) s = out.value()->Sync();  // So a second recovery sees the same file.
    if (s.ok()) s = out.value()->Close();
    if (!s.ok()) return s;
    state_.last_segment_path = path;
    state_.last_segment_size = offset;
    return Status::Ok();
  }

  FileSystem& fs_;
  const std::string& dir_;
  const WalOptions& options_;
  const EntryBatchSink& sink_;
  RecoveredWal state_;
  LogId next_id_ = 1;
  std::vector<Entry> batch_;
  bool dir_dirty_ = false;
};

}  // namespace

Result<RecoveredWal> RecoverWal(FileSystem& fs, const std::string& dir, const WalOptions& options,
                                const EntryBatchSink& sink) {
  return Recovery(fs, dir, options, sink).Run();
}

}  // namespace rlog::storage
