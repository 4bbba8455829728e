// Recovery of a WAL directory: torn and zero-filled tails are cut, damage anywhere else is
// corruption naming file and offset (docs/wal-format.md, "Recovery"; issue 3, items 4 and 8).
#include <gtest/gtest.h>

#include "storage/wal_test_fixture.h"

namespace rlog::storage {
namespace {

using namespace wal_testing;  // NOLINT(google-build-using-namespace): test helpers.

TEST_F(WalTest, TornLastRecordIsTruncated) {
  auto wal = NewLog(10);
  wal.reset();
  const std::string path = Segment(1);
  auto file = fs_.OpenForAppend(path, FileSystem::OpenMode::kOpenExisting).value();
  ASSERT_TRUE(file->Truncate(Size(path) - 5).ok());  // The last record lost its end.
  ASSERT_TRUE(file->Sync().ok());

  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 9));
  EXPECT_EQ(wal->recovery().truncated_bytes, RecordBytes(10) - 5);
  EXPECT_EQ(wal->recovery().truncated_records, 1u);
  EXPECT_EQ(wal->recovery().truncated_reason, "incomplete record");
  EXPECT_EQ(wal->recovery().truncated_file, path);
  ASSERT_TRUE(wal->Append(Entries(10, 1)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 10));
}

TEST_F(WalTest, BadChecksumOnTheLastRecordIsATornTail) {
  auto wal = NewLog(10);
  wal.reset();
  ASSERT_TRUE(fs_.Corrupt(Segment(1), Size(Segment(1)) - 1, "\x7f").ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 9));
  EXPECT_EQ(wal->recovery().truncated_reason, "checksum mismatch");
}

TEST_F(WalTest, ZeroFilledTailIsTruncated) {
  options_.preallocate_bytes = 0;  // The zeros a crash leaves in a file that grew.
  auto wal = NewLog(10);
  ASSERT_TRUE(wal->Append(Entries(11, 5)).ok());
  fs_.DropUnsyncedData({Tail::kZeroFilled});  // The size reached the disk, the data did not.
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 10));
  EXPECT_EQ(wal->recovery().truncated_bytes, 5 * RecordBytes(10));
  EXPECT_EQ(wal->recovery().truncated_records, 0u);
  EXPECT_EQ(wal->recovery().truncated_reason, "zero-filled tail");
}

TEST_F(WalTest, CrcMismatchMidSegmentIsCorruption) {
  auto wal = NewLog(10);
  wal.reset();
  const uint64_t fifth = EncodeSegmentHeader({1, 1, "log-a"}).size() + 4 * RecordBytes(10);
  ASSERT_TRUE(fs_.Corrupt(Segment(1), fifth + kRecordHeaderBytes + 3, "?").ok());
  auto reopened = Open();
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(reopened.status().message(),
            "WAL segment " + Segment(1) + " at offset " + std::to_string(fifth) +
                ": checksum mismatch, and valid records follow (not a torn tail)");
}

TEST_F(WalTest, CorruptClosedSegmentIsCorruption) {
  options_.segment_bytes = 200;
  auto wal = NewLog(0);
  for (LogId id = 1; id <= 12; ++id) ASSERT_TRUE(wal->Append(Entries(id, 1)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  auto names = fs_.ListDir(dir_).value();
  ASSERT_GE(names.size(), 3u);
  // Damage the very end of the first segment: in the last segment that would be a torn tail,
  // in a closed one it is corruption.
  const std::string first = JoinPath(dir_, names[0]);
  ASSERT_TRUE(fs_.Corrupt(first, Size(first) - 1, "?").ok());
  auto reopened = Open();
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(reopened.status().message(), first + " at offset "))
      << reopened.status().message();
}

TEST_F(WalTest, TruncatedClosedSegmentIsCorruption) {
  options_.segment_bytes = 200;
  auto wal = NewLog(0);
  for (LogId id = 1; id <= 12; ++id) ASSERT_TRUE(wal->Append(Entries(id, 1)).ok());
  wal.reset();
  const std::string first = Segment(1);
  auto file = fs_.OpenForAppend(first, FileSystem::OpenMode::kOpenExisting).value();
  ASSERT_TRUE(file->Truncate(Size(first) - 3).ok());
  auto reopened = Open();
  EXPECT_EQ(reopened.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(reopened.status().message(), "incomplete record"));
}

TEST_F(WalTest, EntryIdOutOfSequenceIsCorruption) {
  auto wal = NewLog(10);
  wal.reset();
  const std::string path = Segment(1);
  const uint64_t size = Size(path);
  const std::string last_record = fs_.Contents(path).value().substr(size - RecordBytes(10));
  ASSERT_TRUE(fs_.Corrupt(path, size, last_record).ok());  // A valid record repeating id 10.
  auto reopened = Open();
  EXPECT_EQ(reopened.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(reopened.status().message(), "WAL segment " + path + " at offset " +
                                             std::to_string(size) +
                                             ": entry id 10 where id 11 was expected");
}

TEST_F(WalTest, DecreasingEntryEpochsAreCorruptionNamingFileAndOffset) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 3).ok());
  ASSERT_TRUE(wal->Append(Entries(1, 5, 10, 3)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  const std::string path = Segment(1);
  const uint64_t size = Size(path);
  // Id 6 goes back to epoch 2, and a valid id 7 follows it (so it is no torn tail).
  ASSERT_TRUE(fs_.Corrupt(path, size, EntryRecord(6, 2) + EntryRecord(7, 3)).ok());
  auto reopened = Open();
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(reopened.status().message(),
            "WAL segment " + path + " at offset " + std::to_string(size) +
                ": entry 6 has epoch 2, older than the entry before it (3)");
}

TEST_F(WalTest, EntryEpochBelowItsHeaderIsFineAndTheLogEpochIsTheHighestSeen) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 5).ok());
  ASSERT_TRUE(wal->Append(Entries(1, 2, 10, 2)).ok());  // Below the header's epoch 5.
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredEpochs(), (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(wal->epoch(), 5u);
  wal.reset();
  // A record above every header (not something this writer produces) raises the log's epoch.
  ASSERT_TRUE(fs_.Corrupt(Segment(1), Size(Segment(1)), EntryRecord(3, 9)).ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredEpochs(), (std::vector<uint64_t>{2, 2, 9}));
  EXPECT_EQ(wal->epoch(), 9u);
  EXPECT_EQ(wal->last_epoch(), 9u);
}

// What an interrupted truncation leaves (Wal::TruncateAfter raises an earlier header first):
// recovery takes the highest header epoch, wherever it is.
TEST_F(WalTest, HeaderEpochGoingBackwardsIsFineAndTheHighestCounts) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 4).ok());
  ASSERT_TRUE(wal->Append(Entries(1, 2, 10, 4)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  wal.reset();
  auto file = fs_.OpenForAppend(Segment(3), FileSystem::OpenMode::kCreateNew).value();
  ASSERT_TRUE(file->Append(EncodeSegmentHeader({3, 2, "log-a"}) + EntryRecord(3, 4)).ok());
  ASSERT_TRUE(file->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredEpochs(), (std::vector<uint64_t>{4, 4, 4}));
  EXPECT_EQ(wal->epoch(), 4u);
}

TEST_F(WalTest, MissingMiddleSegmentIsCorruption) {
  options_.segment_bytes = 100;
  auto wal = NewLog(0);
  for (LogId id = 1; id <= 12; ++id) ASSERT_TRUE(wal->Append(Entries(id, 1)).ok());
  wal.reset();
  auto names = fs_.ListDir(dir_).value();
  ASSERT_GE(names.size(), 3u);
  ASSERT_TRUE(fs_.Remove(JoinPath(dir_, names[1])).ok());
  auto reopened = Open();
  EXPECT_EQ(reopened.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(reopened.status().message(), "ids not contiguous across segments"));
}

TEST_F(WalTest, RecoveryTwiceGivesSameResult) {
  auto wal = NewLog(10);
  ASSERT_TRUE(wal->Append(Entries(11, 5, 40)).ok());
  fs_.DropUnsyncedData({Tail::kRandomPrefix, false, 11});
  ASSERT_TRUE(fs_.Contents(Segment(1)).ok());
  const std::string before = fs_.Contents(Segment(1)).value();
  REOPEN(wal);
  const std::vector<Entry> first = recovered_;
  const WalRecoveryReport first_report = wal->recovery();
  const std::string after_first = fs_.Contents(Segment(1)).value();
  EXPECT_GT(first_report.truncated_bytes, 0u) << "seed should tear a record";
  EXPECT_EQ(after_first.size() + first_report.truncated_bytes, before.size());
  wal.reset();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), [&] {
    std::vector<LogId> ids;
    for (const Entry& e : first) ids.push_back(e.id);
    return ids;
  }());
  EXPECT_EQ(wal->recovery().truncated_bytes, 0u);
  EXPECT_EQ(fs_.Contents(Segment(1)).value(), after_first);
}

TEST_F(WalTest, LeftoverTempFileAndHeaderlessLastSegmentAreRemoved) {
  auto wal = NewLog(3);
  wal.reset();
  const std::string headerless = Segment(4);
  auto file = fs_.OpenForAppend(headerless, FileSystem::OpenMode::kCreateNew).value();
  ASSERT_TRUE(file->Append(EncodeSegmentHeader({4, 1, "log-a"}).substr(0, 12)).ok());
  ASSERT_TRUE(fs_.OpenForAppend(Segment(1) + ".tmp", FileSystem::OpenMode::kCreateNew).ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 3));
  EXPECT_EQ(wal->recovery().removed_files, 2u);
  EXPECT_EQ(fs_.ListDir(dir_).value(), std::vector<std::string>{SegmentFileName(1)});
  ASSERT_TRUE(wal->Append(Entries(4, 1)).ok());
}

// A headerless last segment named for an id past the expected one is not the WAL's own leftover
// (that one is named for the id after the last): the segments between are missing.
TEST_F(WalTest, HeaderlessLastSegmentAfterAGapIsCorruption) {
  auto wal = NewLog(3);
  wal.reset();
  auto file = fs_.OpenForAppend(Segment(500), FileSystem::OpenMode::kCreateNew).value();
  ASSERT_TRUE(file->Append(std::string(100, '\x5a')).ok());
  auto reopened = Open();
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(reopened.status().message(), Segment(500) + " at offset 0"))
      << reopened.status().message();
  EXPECT_TRUE(Contains(reopened.status().message(), "named for id 500 where id 4 was expected"))
      << reopened.status().message();
  EXPECT_TRUE(fs_.Contents(Segment(500)).ok()) << "left for a post-mortem";
}

TEST_F(WalTest, RecordsLargerThanTheReadChunkAreRecovered) {
  options_.read_chunk_bytes = 64;
  auto wal = NewLog(0);
  for (LogId id = 1; id <= 40; ++id) ASSERT_TRUE(wal->Append(Entries(id, 1, (id * 37) % 300)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  ASSERT_EQ(RecoveredIds(), Ids(1, 40));
  EXPECT_EQ(recovered_[39].message.size(), (40u * 37) % 300);
}

}  // namespace
}  // namespace rlog::storage
