// Fuzz target: WAL recovery (storage/wal_recovery.h) of directories a crash, a bad disk or a
// hostile hand could leave, on the in-memory FaultInjectionFileSystem. Three shapes of input:
//
// - written and damaged: a real Wal writes entries (sizes, batches, epochs, segment size and
//   preallocation from the input), maybe loses power, and then bytes are flipped, zeroed, cut,
//   appended, files removed, renamed or planted;
// - planted records: segment files made of well-formed records (valid checksums) whose ids,
//   epochs, types and log ids come from the input, so the rules above the checksum are reached;
// - raw bytes: segment files of arbitrary content.
//
// The oracle, for every input (docs/wal-format.md, "Recovery"):
// - recovery ends ok, or with Corruption naming the file and the offset; it never crashes;
// - when ok, the ids handed out are 1..last_id with epochs that never decrease, and no segment
//   file left claims an id beyond them;
// - when ok, every entry that was durable and whose record and segment header were not damaged
//   is recovered unchanged: a cut tail is only ever a torn write, never valid records after a
//   damaged one (those make recovery refuse with Corruption);
// - recovery run again on what the first one left gives the same result and repairs nothing;
// - after an ok recovery the WAL opens, takes the next id, and a third recovery returns it too;
// - then (inputs with bytes left) a truncation, maybe stopped by an error and followed by a power
//   loss, keeps every kept entry unchanged and the accepted epoch.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "storage/fault_injection_file_system.h"
#include "storage/wal.h"
#include "storage/wal_format.h"
#include "storage/wal_recovery.h"

namespace {

using namespace rlog::storage;
using rlog::fuzz::Input;

constexpr const char* kDir = "/wal";

std::string Path(const std::string& name) { return std::string(kDir) + "/" + name; }

struct Recovered {
  rlog::Status status;
  RecoveredWal wal;
  std::vector<Entry> entries;
};

Recovered Recover(FaultInjectionFileSystem& fs, const WalOptions& options) {
  Recovered r;
  auto got = RecoverWal(fs, kDir, options, [&](std::vector<Entry>&& batch) {
    for (Entry& e : batch) r.entries.push_back(std::move(e));
  });
  if (got.ok()) {
    r.wal = std::move(got.value());
  } else {
    r.status = got.status();
  }
  return r;
}

bool SameEntry(const Entry& a, const Entry& b) {
  return a.id == b.id && a.timestamp_ms == b.timestamp_ms && a.message == b.message &&
         a.epoch == b.epoch && a.idempotency_key == b.idempotency_key;
}

// Where a record of the log sits, for the damage rules.
struct Placed {
  std::string file;
  uint64_t begin = 0;       // Offset of the record.
  uint64_t end = 0;         // Offset just past it.
  uint64_t header_end = 0;  // End of its segment's header record.
  Entry entry;
};

// The entries of the log in `files` (name order), decoded from the front of each segment until
// the first record that does not verify.
std::map<LogId, Placed> Index(const std::map<std::string, std::string>& files) {
  std::map<LogId, Placed> out;
  for (const auto& [name, bytes] : files) {
    if (!ParseSegmentFileName(name)) continue;
    size_t pos = 0;
    size_t header_end = 0;
    Record record;
    size_t n = 0;
    while (DecodeRecord(std::string_view(bytes).substr(pos), &record, &n) == DecodeStatus::kOk) {
      if (record.type == RecordType::kSegmentHeader && pos == 0) header_end = n;
      if (IsEntry(record.type) && header_end > 0) {
        out[record.id] = {name, pos, pos + n, header_end,
                          Entry{record.id, record.timestamp_ms, std::string(record.payload),
                                record.epoch, std::string(record.key)}};
      }
      pos += n;
    }
  }
  return out;
}

std::map<std::string, std::string> Snapshot(FaultInjectionFileSystem& fs) {
  std::map<std::string, std::string> out;
  auto names = fs.ListDir(kDir);
  if (!names.ok()) return out;
  for (const std::string& name : names.value()) {
    auto bytes = fs.Contents(Path(name));
    if (bytes.ok()) out[name] = bytes.value();
  }
  return out;
}

void Put(FaultInjectionFileSystem& fs, const std::string& name, const std::string& bytes) {
  (void)fs.Remove(Path(name));
  auto file = fs.OpenForAppend(Path(name), FileSystem::OpenMode::kCreateNew);
  if (!file.ok()) return;
  (void)file.value()->Append(bytes);
  (void)file.value()->Sync();
  (void)file.value()->Close();
  (void)fs.SyncDir(kDir);
}

// What was damaged: byte ranges per file (a removed or renamed file is damaged whole).
class Damage {
 public:
  static constexpr uint64_t kToEnd = UINT64_MAX;
  void Range(const std::string& file, uint64_t begin, uint64_t end) {
    ranges_[file].emplace_back(begin, end);
  }
  // True if bytes [begin, end) of `file` are untouched.
  bool Untouched(const std::string& file, uint64_t begin, uint64_t end) const {
    auto it = ranges_.find(file);
    if (it == ranges_.end()) return true;
    for (const auto& [b, e] : it->second) {
      if (b < end && begin < e) return false;
    }
    return true;
  }

 private:
  std::map<std::string, std::vector<std::pair<uint64_t, uint64_t>>> ranges_;
};

// A Wal writes entries; some may be lost to a power loss. Returns the last id that must survive.
LogId WriteLog(Input& in, FaultInjectionFileSystem& fs, const WalOptions& options) {
  auto opened = Wal::Open(fs, kDir, options, [](std::vector<Entry>&&) {});
  if (!opened.ok()) return 0;
  std::unique_ptr<Wal> wal = std::move(opened.value());
  uint64_t epoch = 1 + in.Int(3);
  if (!wal->SetLogIdentity("log-a", epoch).ok()) return 0;
  LogId id = 0;
  const uint64_t batches = in.Int(12);
  for (uint64_t b = 0; b < batches; ++b) {
    if (in.Int(7) == 0 && wal->SetLogIdentity("log-a", epoch + 1).ok()) {
      ++epoch;
      // A master taking over here marks its epoch (docs/wal-format.md, "Epoch marks").
      if (in.Bool() && !wal->Append({}, epoch).ok()) return 0;
    }
    std::vector<Entry> entries;
    const uint64_t count = 1 + in.Int(7);
    for (uint64_t i = 0; i < count; ++i) {
      ++id;
      const size_t bytes = in.Int(3) == 0 ? in.Int(600) : in.Int(40);
      entries.push_back({id, static_cast<int64_t>(1700000000000 + id),
                         std::string(bytes, static_cast<char>('a' + id % 26)), epoch});
    }
    if (!wal->Append(entries).ok()) return 0;
    if (in.Bool() && !wal->Sync().ok()) return 0;
  }
  if (in.Bool()) {  // A clean close: everything was written, and is synced.
    if (!wal->Sync().ok()) return 0;
    return wal->last_id();
  }
  // Power loss with the WAL open; only what it synced must survive.
  const LogId durable = wal->synced_id();
  FaultInjectionFileSystem::PowerLoss how;
  how.tail = static_cast<FaultInjectionFileSystem::PowerLoss::Tail>(in.Int(2));
  how.random_directory_prefix = in.Bool();
  how.seed = in.Int(255);
  fs.DropUnsyncedData(how);
  wal.reset();
  return durable;
}

void DamageLog(Input& in, FaultInjectionFileSystem& fs, Damage* damage) {
  const uint64_t ops = in.Int(3);
  for (uint64_t op = 0; op < ops; ++op) {
    const auto files = Snapshot(fs);
    if (files.empty()) return;
    auto it = files.begin();
    std::advance(it, in.Int(files.size() - 1));
    const std::string& name = it->first;
    const uint64_t size = it->second.size();
    const uint64_t offset = in.Int(size);
    switch (in.Int(6)) {
      case 0: {  // Bytes overwritten.
        std::string bytes = in.Bytes(1 + in.Int(7));
        if (bytes.empty()) bytes = "x";
        (void)fs.Corrupt(Path(name), offset, bytes);
        damage->Range(name, offset, offset + bytes.size());
        break;
      }
      case 1: {  // A zeroed range.
        const uint64_t n = 1 + in.Int(200);
        (void)fs.Corrupt(Path(name), offset, std::string(n, '\0'));
        damage->Range(name, offset, offset + n);
        break;
      }
      case 2: {  // Cut short.
        auto file = fs.OpenForAppend(Path(name), FileSystem::OpenMode::kOpenExisting);
        if (file.ok() && file.value()->Truncate(offset).ok()) {
          damage->Range(name, offset, Damage::kToEnd);
        }
        if (file.ok()) (void)file.value()->Sync();
        break;
      }
      case 3:  // Bytes after the end (garbage, or zeros, as preallocation leaves).
        (void)fs.Corrupt(Path(name), size,
                         in.Bool() ? in.Bytes(1 + in.Int(63)) : std::string(in.Int(300), '\0'));
        damage->Range(name, size, Damage::kToEnd);
        break;
      case 4:  // Removed.
        if (fs.Remove(Path(name)).ok()) damage->Range(name, 0, Damage::kToEnd);
        (void)fs.SyncDir(kDir);
        break;
      case 5: {  // Renamed to another segment's name (or a replacement's).
        const auto first = ParseSegmentFileName(name).value_or(1);
        std::string to = SegmentFileName(first + in.Int(4));
        if (in.Bool()) to += std::string(kTempSuffix);
        if (to != name && fs.Rename(Path(name), Path(to)).ok()) {
          damage->Range(name, 0, Damage::kToEnd);
          damage->Range(to, 0, Damage::kToEnd);
        }
        (void)fs.SyncDir(kDir);
        break;
      }
      default: {  // A leftover file beside the segments.
        // Two reads, sequenced: as one expression gcc and clang read them in opposite orders.
        // This is the order of the gcc build that replays the corpus in CTest.
        const bool temporary = in.Bool();
        std::string to = SegmentFileName(1 + in.Int(9)) + (temporary ? ".tmp" : ".old");
        Put(fs, to, in.Bytes(in.Int(64)));  // Recovery removes or ignores it: no damage.
        break;
      }
    }
  }
}

// Segment files of well-formed records chosen by the input.
void PlantRecords(Input& in, FaultInjectionFileSystem& fs) {
  const uint64_t files = 1 + in.Int(2);
  LogId next = 1;
  for (uint64_t f = 0; f < files; ++f) {
    const LogId first = in.Int(3) == 0 ? in.Int(4) : next;
    std::string bytes;
    const uint64_t records = in.Int(8);
    for (uint64_t r = 0; r < records; ++r) {
      if (r == 0 && in.Int(5) != 0) {
        bytes += EncodeSegmentHeader({first, in.Int(3), in.Int(4) == 0 ? "log-b" : "log-a"});
        continue;
      }
      const LogId id = in.Int(3) == 0 ? in.Int(12) : next;
      if (id == next) ++next;
      std::string payload = in.Bytes(in.Int(24));
      Record record{in.Int(9) == 0 ? static_cast<RecordType>(in.Int(3)) : RecordType::kEntry, id,
                    in.Int(3), static_cast<int64_t>(in.Int(1000)), payload};
      std::string key;
      if (record.type == RecordType::kEntry && in.Int(3) == 0) {  // A keyed entry.
        record.type = RecordType::kKeyedEntry;
        key = in.Bytes(1 + in.Int(8));
        record.key = key;
      }
      EncodeRecord(record, &bytes);
    }
    if (in.Bool()) bytes += in.Bytes(in.Int(40));  // A tail.
    Put(fs, SegmentFileName(first), bytes);
  }
}

void PlantRaw(Input& in, FaultInjectionFileSystem& fs) {
  const uint64_t files = 1 + in.Int(2);
  for (uint64_t f = 0; f < files; ++f) {
    std::string bytes;
    if (in.Bool()) bytes = EncodeSegmentHeader({1 + in.Int(8), in.Int(2), "log-a"});
    bytes += in.Bytes(in.Int(2000));
    Put(fs, SegmentFileName(1 + in.Int(8)), bytes);
  }
}

void CheckRecovered(const Recovered& r) {
  const std::string what = "recovered " + std::to_string(r.entries.size()) + " entries";
  FUZZ_CHECK(r.wal.last_id == r.entries.size(), what);
  uint64_t epoch = 0;
  for (size_t i = 0; i < r.entries.size(); ++i) {
    FUZZ_CHECK(r.entries[i].id == i + 1, what);
    FUZZ_CHECK(r.entries[i].epoch >= epoch, what);
    FUZZ_CHECK(r.entries[i].epoch <= r.wal.epoch, what);
    epoch = r.entries[i].epoch;
  }
  FUZZ_CHECK(r.wal.last_entry_epoch == epoch, what);
  FUZZ_CHECK(r.entries.empty() || !r.wal.log_id.empty(), what);
  // Epoch marks: in log order, each newer than the entry before it, none newer than the log's
  // epoch, and no entry after one older than it.
  LogId after = 0;
  uint64_t mark_epoch = 0;
  for (const EpochMark& m : r.wal.marks) {
    FUZZ_CHECK(m.after_id <= r.entries.size() && m.after_id >= after, "epoch marks");
    FUZZ_CHECK(m.epoch <= r.wal.epoch, "epoch marks");
    FUZZ_CHECK(m.after_id == 0 || r.entries[m.after_id - 1].epoch < m.epoch, "epoch marks");
    FUZZ_CHECK(m.after_id > after || m.epoch >= mark_epoch, "epoch marks");
    if (m.after_id < r.entries.size()) {
      FUZZ_CHECK(r.entries[m.after_id].epoch >= m.epoch, "an entry older than the mark before it");
    }
    after = m.after_id;
    mark_epoch = m.epoch;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  FaultInjectionFileSystem fs;
  FUZZ_CHECK(fs.CreateDir(kDir).ok(), "CreateDir");
  WalOptions options;
  options.segment_bytes = 64 + in.Int(2048);
  options.preallocate_bytes = in.Bool() ? 0 : in.Int(1024);
  options.read_chunk_bytes = 1 + in.Int(700);

  LogId durable = 0;
  Damage damage;
  switch (in.Int(3)) {
    case 0:
    case 1:
      durable = WriteLog(in, fs, options);
      break;
    case 2:
      PlantRecords(in, fs);
      break;
    default:
      PlantRaw(in, fs);
      break;
  }
  const auto before = Snapshot(fs);
  DamageLog(in, fs, &damage);

  Recovered first = Recover(fs, options);
  if (!first.status.ok()) {
    const std::string& m = first.status.message();
    FUZZ_CHECK(first.status.code() == rlog::Status::Code::kCorruption, m);
    FUZZ_CHECK(m.find(std::string("WAL segment ") + kDir + "/") == 0, m);
    FUZZ_CHECK(m.find(" at offset ") != std::string::npos, m);
  } else {
    CheckRecovered(first);
    // What it accepted is what the files say: no segment left that claims ids it did not return
    // (a segment lost from the middle is Corruption, not a shorter log).
    LogId expected_first = 1;
    for (const auto& [name, bytes] : Snapshot(fs)) {
      const auto named = ParseSegmentFileName(name);
      if (!named) continue;
      FUZZ_CHECK(*named >= expected_first && *named <= first.wal.last_id + 1, name);
      expected_first = *named + 1;
    }
  }

  // Damage loses nothing silently: recovery refuses (Corruption) or returns every durable entry
  // whose record and segment header are untouched. A cut tail is only ever a torn write, never
  // valid records after a damaged one.
  for (const auto& [id, placed] : Index(before)) {
    if (!first.status.ok()) break;
    if (id > durable) continue;
    if (!damage.Untouched(placed.file, placed.begin, placed.end) ||
        !damage.Untouched(placed.file, 0, placed.header_end)) {
      continue;
    }
    const std::string what = "entry " + std::to_string(id) + " of " + placed.file;
    FUZZ_CHECK(id <= first.entries.size(), what + " lost");
    FUZZ_CHECK(SameEntry(first.entries[id - 1], placed.entry), what + " changed");
  }

  // A second recovery finds what the first left and repairs nothing.
  Recovered second = Recover(fs, options);
  FUZZ_CHECK(second.status.code() == first.status.code(), second.status.message());
  FUZZ_CHECK(second.status.message() == first.status.message(), second.status.message());
  if (!first.status.ok()) return 0;
  FUZZ_CHECK(second.entries.size() == first.entries.size(), "second recovery");
  for (size_t i = 0; i < first.entries.size(); ++i) {
    FUZZ_CHECK(SameEntry(second.entries[i], first.entries[i]), "second recovery");
  }
  FUZZ_CHECK(second.wal.report.truncated_bytes == 0, second.wal.report.truncated_reason);
  FUZZ_CHECK(second.wal.report.removed_files == 0, "second recovery removed");
  FUZZ_CHECK(second.wal.log_id == first.wal.log_id, second.wal.log_id);
  FUZZ_CHECK(second.wal.epoch == first.wal.epoch, "second recovery epoch");

  // The recovered log takes the next id, and keeps it.
  std::vector<Entry> reopened;
  auto wal = Wal::Open(fs, kDir, options, [&](std::vector<Entry>&& batch) {
    for (Entry& e : batch) reopened.push_back(std::move(e));
  });
  FUZZ_CHECK(wal.ok(), wal.status().message());
  FUZZ_CHECK(reopened.size() == first.entries.size(), "Wal::Open");
  if (wal.value()->log_id().empty()) {
    FUZZ_CHECK(wal.value()->SetLogIdentity("log-c", 1).ok(), "SetLogIdentity");
  }
  const Entry next{first.entries.size() + 1, 42, "next", wal.value()->epoch(), "key-next"};
  rlog::Status s = wal.value()->Append({&next, 1});
  FUZZ_CHECK(s.ok(), s.message());
  s = wal.value()->Sync();
  FUZZ_CHECK(s.ok(), s.message());
  wal.value().reset();
  Recovered third = Recover(fs, options);
  FUZZ_CHECK(third.status.ok(), third.status.message());
  CheckRecovered(third);
  FUZZ_CHECK(third.entries.size() == first.entries.size() + 1, "third recovery");
  FUZZ_CHECK(SameEntry(third.entries.back(), next), "third recovery");

  // With input left (inputs written before this step end earlier and are read as before): a
  // truncation (Wal::TruncateAfter), maybe stopped at one of its steps by an error, maybe
  // followed by a power loss. What comes back holds every kept entry unchanged and the accepted
  // epoch; a truncation that returned ok holds exactly the kept entries.
  if (in.empty()) return 0;
  const LogId keep = in.Int(third.entries.size());
  auto cut = Wal::Open(fs, kDir, options, [](std::vector<Entry>&&) {});
  FUZZ_CHECK(cut.ok(), cut.status().message());
  const uint64_t epoch = cut.value()->epoch();
  if (in.Bool()) {
    using Op = FaultInjectionFileSystem::Op;
    static constexpr Op kOps[] = {Op::kCreate,  Op::kWrite,  Op::kSync,    Op::kRename,
                                  Op::kSyncDir, Op::kRemove, Op::kTruncate};
    const Op op = kOps[in.Int(6)];  // Read before nth, in its own statement (see the other reads).
    const uint64_t nth = 1 + in.Int(2);
    fs.InjectError(op, nth, EIO);
  }
  // The marks right after `keep` up to this epoch stay (the next log has them), later ones go.
  const uint64_t marks_through = in.Int(4);
  const bool truncated = cut.value()->TruncateAfter(keep, marks_through).ok();
  fs.ClearInjectedErrors();
  if (in.Bool()) {
    FaultInjectionFileSystem::PowerLoss how;
    how.tail = static_cast<FaultInjectionFileSystem::PowerLoss::Tail>(in.Int(2));
    how.random_directory_prefix = in.Bool();
    how.seed = in.Int(255);
    fs.DropUnsyncedData(how);
  }
  cut.value().reset();
  Recovered fourth = Recover(fs, options);
  FUZZ_CHECK(fourth.status.ok(), "after a truncation: " + fourth.status.message());
  CheckRecovered(fourth);
  FUZZ_CHECK(fourth.entries.size() >= keep, "a truncation lost a kept entry");
  FUZZ_CHECK(!truncated || fourth.entries.size() == keep, "a finished truncation came back");
  for (size_t i = 0; i < fourth.entries.size(); ++i) {
    FUZZ_CHECK(SameEntry(fourth.entries[i], third.entries[i]), "an entry changed by a truncation");
  }
  FUZZ_CHECK(fourth.wal.epoch >= epoch, "a truncation lost the accepted epoch");
  for (const EpochMark& m : fourth.wal.marks) {
    FUZZ_CHECK(!truncated || m.after_id < keep || (m.after_id == keep && m.epoch <= marks_through),
               "a truncation kept a mark it was to drop");
  }
  for (const EpochMark& m : third.wal.marks) {  // Marks among the kept entries stay.
    if (m.after_id >= keep) continue;
    FUZZ_CHECK(std::find(fourth.wal.marks.begin(), fourth.wal.marks.end(), m) !=
                   fourth.wal.marks.end(),
               "a truncation lost a mark among the kept entries");
  }
  return 0;
}
