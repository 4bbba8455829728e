// Idempotency keys in the WAL (docs/wal-format.md, "Keyed entries" and "Versions"): a keyed
// entry is recovered with its key, and a directory an older rlog wrote (format version 1) is
// read as it is but never appended to in that version.
#include <gtest/gtest.h>

#include "storage/wal_test_fixture.h"

namespace rlog::storage {
namespace {

using wal_testing::Entries;
using wal_testing::EntryRecord;

class WalKeyTest : public wal_testing::WalTest {
 protected:
  // Entries first..first + n - 1, each with the key "key-<id>".
  static std::vector<Entry> Keyed(LogId first, size_t n, uint64_t epoch = 1) {
    std::vector<Entry> entries = Entries(first, n, 10, epoch);
    for (Entry& e : entries) e.idempotency_key = "key-" + std::to_string(e.id);
    return entries;
  }
  std::vector<std::string> RecoveredKeys() const {
    std::vector<std::string> keys;
    for (const Entry& e : recovered_) keys.push_back(e.idempotency_key);
    return keys;
  }
  // Writes segment `first` as an rlog of format version 1 did: its header and `records`.
  void PlantVersionOneSegment(LogId first, const std::string& records) {
    ASSERT_TRUE(fs_.CreateDir(dir_).ok());
    auto file = fs_.OpenForAppend(Segment(first), FileSystem::OpenMode::kCreateNew);
    ASSERT_TRUE(file.ok()) << file.status().message();
    ASSERT_TRUE(file.value()->Append(EncodeSegmentHeader({first, 1, "log-a", 1}) + records).ok());
    ASSERT_TRUE(file.value()->Sync().ok());
    ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  }
  // The format version in the header of segment `first`.
  uint32_t VersionOf(LogId first) {
    auto bytes = ReadFileToString(fs_, Segment(first));
    EXPECT_TRUE(bytes.ok());
    Record record;
    size_t size = 0;
    if (!bytes.ok() || DecodeRecord(bytes.value(), &record, &size) != DecodeStatus::kOk) return 0;
    auto header = ParseSegmentHeader(record);
    return header.ok() ? header->version : 0;
  }
};

TEST_F(WalKeyTest, KeysAreRecoveredWithTheirEntriesAcrossSegments) {
  options_.segment_bytes = 200;  // A few entries a segment.
  auto wal = NewLog(2);          // Ids 1, 2 without keys.
  ASSERT_TRUE(wal->Append(Keyed(3, 5)).ok());
  ASSERT_TRUE(wal->Append(Entries(8, 1, 10, 1)).ok());
  ASSERT_TRUE(wal->Append(Keyed(9, 1)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_EQ(fs_.ListDir(dir_).value(),
            (std::vector<std::string>{SegmentFileName(1), SegmentFileName(8)}));
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 9));
  EXPECT_EQ(RecoveredKeys(), (std::vector<std::string>{"", "", "key-3", "key-4", "key-5", "key-6",
                                                       "key-7", "", "key-9"}));
  EXPECT_EQ(recovered_[2].message, Entries(3, 1)[0].message);  // The key is not in the message.
  // A truncation keeps the keys of what it keeps.
  ASSERT_TRUE(wal->TruncateAfter(5).ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredKeys(), (std::vector<std::string>{"", "", "key-3", "key-4", "key-5"}));
}

TEST_F(WalKeyTest, AKeyTooLongForTheFormatIsRefused) {
  auto wal = NewLog(1);
  std::vector<Entry> entries = Entries(2, 1, 10, 1);
  entries[0].idempotency_key.assign(kMaxKeyBytes + 1, 'k');
  EXPECT_EQ(wal->Append(entries).code(), Status::Code::kInvalidArgument);
  entries[0].idempotency_key.pop_back();
  ASSERT_TRUE(wal->Append(entries).ok());
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(recovered_.back().idempotency_key.size(), kMaxKeyBytes);
}

TEST_F(WalKeyTest, AVersionOneSegmentIsReadAndTheNextWritesGoToANewSegment) {
  const std::string records = EntryRecord(1, 1, "one") + EntryRecord(2, 1, "two");
  PlantVersionOneSegment(1, records);
  const std::string before = ReadFileToString(fs_, Segment(1)).value();
  std::unique_ptr<Wal> wal;
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 2));
  EXPECT_EQ(recovered_[1].message, "two");
  // Before anything is written, a segment of this version follows the old one, which an older
  // rlog then refuses to open instead of taking its keyed records for a torn tail.
  EXPECT_EQ(fs_.ListDir(dir_).value(),
            (std::vector<std::string>{SegmentFileName(1), SegmentFileName(3)}));
  EXPECT_EQ(VersionOf(3), kFormatVersion);
  EXPECT_EQ(ReadFileToString(fs_, Segment(1)).value(), before);  // Untouched.
  ASSERT_TRUE(wal->Append(Keyed(3, 1)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 3));
  EXPECT_EQ(RecoveredKeys(), (std::vector<std::string>{"", "", "key-3"}));
  EXPECT_EQ(fs_.ListDir(dir_).value().size(), 2u);  // A version 2 last segment is reused.
}

TEST_F(WalKeyTest, ATruncationIntoAVersionOneSegmentUpgradesItsHeader) {
  PlantVersionOneSegment(1, EntryRecord(1, 1, "one") + EntryRecord(2, 1, "two"));
  std::unique_ptr<Wal> wal;
  REOPEN(wal);                              // Segment 3, of this version, is where appends go now.
  ASSERT_TRUE(wal->TruncateAfter(1).ok());  // Segment 1 is the live one again.
  EXPECT_EQ(fs_.ListDir(dir_).value(), (std::vector<std::string>{SegmentFileName(1)}));
  EXPECT_EQ(VersionOf(1), kFormatVersion);
  ASSERT_TRUE(wal->Append(Keyed(2, 1)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredKeys(), (std::vector<std::string>{"", "key-2"}));
  EXPECT_EQ(recovered_[0].message, "one");
}

TEST_F(WalKeyTest, AVersionOneSegmentWithoutEntriesIsReplacedInPlace) {
  PlantVersionOneSegment(1, "");
  std::unique_ptr<Wal> wal;
  REOPEN(wal);
  EXPECT_EQ(wal->log_id(), "log-a");
  EXPECT_EQ(wal->last_id(), 0u);
  EXPECT_EQ(fs_.ListDir(dir_).value(), (std::vector<std::string>{SegmentFileName(1)}));
  EXPECT_EQ(VersionOf(1), kFormatVersion);
  fs_.DropUnsyncedData();  // The replacement is durable on return.
  EXPECT_EQ(VersionOf(1), kFormatVersion);
  REOPEN(wal);
  EXPECT_EQ(fs_.ListDir(dir_).value(), (std::vector<std::string>{SegmentFileName(1)}));
  Status appended = wal->Append(Keyed(1, 2));
  ASSERT_TRUE(appended.ok()) << appended.message();
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredKeys(), (std::vector<std::string>{"key-1", "key-2"}));
}

}  // namespace
}  // namespace rlog::storage
