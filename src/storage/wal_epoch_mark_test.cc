// Epoch marks in the WAL (docs/wal-format.md, "Epoch marks"): written with the entries before
// them, recovered with the id they follow, checked like entries, kept or cut by a truncation
// with the entries they speak for, and never durable before the sync that covers them.
#include <gtest/gtest.h>

#include "storage/wal_test_fixture.h"

namespace rlog::storage {
namespace {

using wal_testing::Contains;
using wal_testing::Entries;
using wal_testing::EntryRecord;

std::string MarkRecord(LogId id, uint64_t epoch) {
  std::string out;
  EncodeRecord({RecordType::kEpochMark, id, epoch, 0, {}}, &out);
  return out;
}

class WalEpochMarkTest : public wal_testing::WalTest {
 protected:
  // Appends `bytes` at the end of segment 1 (records the writer would refuse).
  void Plant(const std::string& bytes) {
    auto file = fs_.OpenForAppend(Segment(1), FileSystem::OpenMode::kOpenExisting);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE(file.value()->Append(bytes).ok());
    ASSERT_TRUE(file.value()->Sync().ok());
  }
  std::vector<EpochMark> Marks(const Wal& wal) const { return wal.recovered_marks(); }
};

TEST_F(WalEpochMarkTest, MarkIsWrittenWithTheEntriesBeforeItAndRecoveredAfterThem) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 3).ok());
  ASSERT_TRUE(wal->Append(Entries(1, 4, 10, 1), 3).ok());  // Copied entries, then epoch 3 begins.
  EXPECT_EQ(wal->last_id(), 4u);
  EXPECT_EQ(wal->last_epoch(), 1u);
  EXPECT_EQ(wal->mark_epoch(), 3u);
  ASSERT_TRUE(wal->Sync().ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 4));
  EXPECT_EQ(wal->last_epoch(), 1u);
  EXPECT_EQ(wal->mark_epoch(), 3u);
  EXPECT_EQ(Marks(*wal), (std::vector<EpochMark>{{4, 3}}));
  // The epoch's own entries follow it; the mark stays where it was, in the middle now.
  ASSERT_TRUE(wal->Append(Entries(5, 2, 10, 3)).ok());
  EXPECT_EQ(wal->mark_epoch(), 0u);
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 6));
  EXPECT_EQ(RecoveredEpochs(), (std::vector<uint64_t>{1, 1, 1, 1, 3, 3}));
  EXPECT_EQ(wal->mark_epoch(), 0u);
  EXPECT_EQ(Marks(*wal), (std::vector<EpochMark>{{4, 3}}));
}

TEST_F(WalEpochMarkTest, MarkAloneIsOneRecordAndWrittenOnce) {
  options_.preallocate_bytes = 0;  // Sizes are what was written.
  auto wal = NewLog(2);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 2).ok());  // A fresh segment 3 for epoch 2.
  const uint64_t before = Size(Segment(3));
  ASSERT_TRUE(wal->Append({}, 2).ok());
  EXPECT_EQ(Size(Segment(3)) - before, wal_testing::RecordBytes(0));
  ASSERT_TRUE(wal->Append({}, 2).ok());  // The same mark again: nothing written.
  EXPECT_EQ(Size(Segment(3)) - before, wal_testing::RecordBytes(0));
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(Marks(*wal), (std::vector<EpochMark>{{2, 2}}));
  EXPECT_EQ(wal->mark_epoch(), 2u);
  EXPECT_EQ(wal->epoch(), 2u);
}

// A master took the log over (its mark alone in a fresh segment) and wrote nothing; the next
// master's promise changes the epoch again. The mark still ranks the log, on disk as in memory.
TEST_F(WalEpochMarkTest, ANewerEpochKeepsTheMarksOfASegmentWithoutEntries) {
  auto wal = NewLog(3);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 2).ok());  // A fresh segment 4: header only.
  ASSERT_TRUE(wal->Append({}, 2).ok());
  ASSERT_TRUE(wal->Sync().ok());
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 3).ok());  // Segment 4 replaced: the header says 3.
  EXPECT_EQ(wal->mark_epoch(), 2u);
  fs_.DropUnsyncedData();  // Everything SetLogIdentity wrote was synced before it returned.
  REOPEN(wal);
  EXPECT_EQ(wal->epoch(), 3u);
  EXPECT_EQ(wal->mark_epoch(), 2u);
  EXPECT_EQ(Marks(*wal), (std::vector<EpochMark>{{3, 2}}));
  // The new master's own mark and entries follow it.
  ASSERT_TRUE(wal->Append({}, 3).ok());
  ASSERT_TRUE(wal->Append(Entries(4, 2, 10, 3)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 5));
  EXPECT_EQ(Marks(*wal), (std::vector<EpochMark>{{3, 2}, {3, 3}}));
}

// Another log's marks are not this log's: adopting another log id drops them.
TEST_F(WalEpochMarkTest, AnotherLogIdDropsTheMarks) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 2).ok());
  ASSERT_TRUE(wal->Append({}, 2).ok());
  ASSERT_TRUE(wal->SetLogIdentity("log-b", 1).ok());
  EXPECT_EQ(wal->mark_epoch(), 0u);
  REOPEN(wal);
  EXPECT_EQ(wal->log_id(), "log-b");
  EXPECT_EQ(wal->mark_epoch(), 0u);
  EXPECT_TRUE(Marks(*wal).empty());
}

TEST_F(WalEpochMarkTest, UnsyncedMarkIsLostWithItsEntriesOnPowerLoss) {
  auto wal = NewLog(2);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 2).ok());
  ASSERT_TRUE(wal->Append(Entries(3, 2, 10, 1), 2).ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 2));
  EXPECT_TRUE(Marks(*wal).empty());
  EXPECT_EQ(wal->mark_epoch(), 0u);
}

TEST_F(WalEpochMarkTest, AppendRefusesMarksRecoveryWouldRefuse) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 4).ok());
  ASSERT_TRUE(wal->Append(Entries(1, 2, 10, 3)).ok());
  const Status not_newer = wal->Append({}, 3);
  EXPECT_EQ(not_newer.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(not_newer.message(),
            "an epoch mark of epoch 3 after an entry of epoch 3 (a mark must be newer)");
  const Status too_new = wal->Append({}, 5);
  EXPECT_EQ(too_new.message(), "an epoch mark of epoch 5, newer than the log's epoch 4");
  EXPECT_EQ(wal->Append(Entries(3, 1, 10, 4), 4).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(wal->last_id(), 2u);  // A refused call writes nothing, entries included.
  EXPECT_EQ(wal->mark_epoch(), 0u);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 5).ok());
  ASSERT_TRUE(wal->Append({}, 5).ok());
  EXPECT_EQ(wal->Append({}, 4).message(), "an epoch mark of epoch 4 after one of epoch 5");
  // After the mark, entries are of its epoch or newer.
  const Status older = wal->Append(Entries(3, 1, 10, 4));
  EXPECT_EQ(older.message(), "entry 3 has epoch 4, older than the entry before it (5)");
  ASSERT_TRUE(wal->Append(Entries(3, 1, 10, 5)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(Marks(*wal), (std::vector<EpochMark>{{2, 5}}));
}

TEST_F(WalEpochMarkTest, RecoveryRefusesMarksTheWriterNeverWrites) {
  struct Case {
    std::string records;
    std::string error;
  };
  const std::vector<Case> cases = {
      {MarkRecord(4, 2), "epoch mark id 4 where id 3 was expected"},
      {MarkRecord(3, 0), "epoch mark 3 has epoch 0, not newer than the entry before it (0)"},
      {MarkRecord(3, 3) + EntryRecord(3, 2),
       "entry 3 has epoch 2, older than the epoch mark before it (3)"},
      {MarkRecord(3, 3) + MarkRecord(3, 2),
       "epoch mark 3 has epoch 2, older than the epoch mark before it (3)"},
  };
  for (const Case& c : cases) {
    if (const auto names = fs_.ListDir(dir_); names.ok()) {  // The previous case's log.
      for (const std::string& name : names.value()) {
        ASSERT_TRUE(fs_.Remove(JoinPath(dir_, name)).ok());
      }
    }
    auto wal = NewLog(2);
    wal.reset();
    Plant(c.records + EntryRecord(3, 9, "after"));  // A valid record follows: not a torn tail.
    auto reopened = Open();
    ASSERT_FALSE(reopened.ok()) << c.error;
    EXPECT_EQ(reopened.status().code(), Status::Code::kCorruption);
    EXPECT_TRUE(Contains(reopened.status().message(), c.error)) << reopened.status().message();
    EXPECT_TRUE(Contains(reopened.status().message(), Segment(1)));
  }
}

TEST_F(WalEpochMarkTest, TornMarkIsATornTail) {
  auto wal = NewLog(2);
  wal.reset();
  const std::string mark = MarkRecord(3, 2);
  Plant(mark.substr(0, mark.size() - 3));
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 2));
  EXPECT_TRUE(Marks(*wal).empty());
  EXPECT_EQ(wal->recovery().truncated_records, 1u);
}

// A truncation keeps the marks right after the last kept entry up to the epoch it is told (the
// ones the log it goes on with has), and drops the rest, even at the end of the log.
TEST_F(WalEpochMarkTest, TruncationKeepsTheMarksItIsToldAfterTheLastKeptEntry) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 2).ok());
  ASSERT_TRUE(wal->Append(Entries(1, 3, 10, 1), 2).ok());  // Mark 2 after 3.
  ASSERT_TRUE(wal->Append(Entries(4, 2, 10, 2)).ok());
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 3).ok());       // Segment 6.
  ASSERT_TRUE(wal->Append(Entries(6, 1, 10, 2), 3).ok());  // Mark 3 after 6.
  ASSERT_TRUE(wal->Sync().ok());

  ASSERT_TRUE(wal->TruncateAfter(6, 3).ok());  // The next log has mark 3: nothing changes.
  EXPECT_EQ(wal->mark_epoch(), 3u);
  ASSERT_TRUE(wal->TruncateAfter(6, 0).ok());  // It lacks it: the mark goes, the entries stay.
  EXPECT_EQ(wal->last_id(), 6u);
  EXPECT_EQ(wal->mark_epoch(), 0u);
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 6));
  EXPECT_EQ(Marks(*wal), (std::vector<EpochMark>{{3, 2}}));
  ASSERT_TRUE(wal->TruncateAfter(3, 2).ok());  // Mark 2 right after 3 stays.
  EXPECT_EQ(wal->mark_epoch(), 2u);
  EXPECT_EQ(wal->last_epoch(), 1u);
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 3));
  EXPECT_EQ(Marks(*wal), (std::vector<EpochMark>{{3, 2}}));
  EXPECT_EQ(wal->epoch(), 3u);
  ASSERT_TRUE(wal->TruncateAfter(3, 0).ok());
  EXPECT_EQ(wal->mark_epoch(), 0u);
  fs_.DropUnsyncedData();  // Durable on return.
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 3));
  EXPECT_TRUE(Marks(*wal).empty());
  EXPECT_EQ(wal->epoch(), 3u);
  ASSERT_TRUE(wal->Append(Entries(4, 1, 10, 1)).ok());  // The next log's older entries fit.
}

// A mark that starts the next segment (the log went on in a new one when the epoch changed) is
// kept or dropped there, and the kept entries' epoch is read from the segment before.
TEST_F(WalEpochMarkTest, TruncationHandlesAMarkThatStartsTheNextSegment) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->Append(Entries(1, 2, 10, 1)).ok());
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 2).ok());  // Segment 3.
  ASSERT_TRUE(wal->Append({}, 2).ok());
  ASSERT_TRUE(wal->Append(Entries(3, 2, 10, 2)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  ASSERT_TRUE(wal->TruncateAfter(2, 2).ok());
  EXPECT_EQ(wal->last_epoch(), 1u);
  EXPECT_EQ(wal->mark_epoch(), 2u);
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 2));
  EXPECT_EQ(Marks(*wal), (std::vector<EpochMark>{{2, 2}}));
  EXPECT_EQ(fs_.ListDir(dir_).value(),
            (std::vector<std::string>{SegmentFileName(1), SegmentFileName(3)}));
  ASSERT_TRUE(wal->TruncateAfter(2, 0).ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 2));
  EXPECT_TRUE(Marks(*wal).empty());
  EXPECT_EQ(wal->epoch(), 2u);
  EXPECT_EQ(wal->last_epoch(), 1u);
}

// A mark written with the entries before it ends their segment when the log goes on in a new one
// (a newer epoch, a rotation): a truncation to those entries cuts that segment, not only the next.
// Found by wal_recovery_fuzz: the mark survived a truncation told to drop it.
TEST_F(WalEpochMarkTest, TruncationHandlesAMarkThatEndsTheSegmentBefore) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 2).ok());
  ASSERT_TRUE(wal->Append(Entries(1, 2, 10, 1), 2).ok());  // Mark 2 after 2, in segment 1.
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 3).ok());       // Segment 3.
  ASSERT_TRUE(wal->Append(Entries(3, 2, 10, 3)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  ASSERT_EQ(fs_.ListDir(dir_).value(),
            (std::vector<std::string>{SegmentFileName(1), SegmentFileName(3)}));

  ASSERT_TRUE(wal->TruncateAfter(2, 2).ok());  // The next log has mark 2: it stays.
  EXPECT_EQ(wal->mark_epoch(), 2u);
  EXPECT_EQ(wal->last_epoch(), 1u);
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 2));
  EXPECT_EQ(Marks(*wal), (std::vector<EpochMark>{{2, 2}}));
  EXPECT_EQ(wal->mark_epoch(), 2u);

  ASSERT_TRUE(wal->TruncateAfter(2, 1).ok());  // It lacks it: the mark goes.
  EXPECT_EQ(wal->mark_epoch(), 0u);
  fs_.DropUnsyncedData();  // Durable on return.
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 2));
  EXPECT_TRUE(Marks(*wal).empty());
  EXPECT_EQ(wal->epoch(), 3u);  // The accepted epoch stays.
  EXPECT_EQ(wal->last_epoch(), 1u);
  // And the log goes on from there with entries older than the dropped mark (the next master's).
  ASSERT_TRUE(wal->Append(Entries(3, 1, 10, 1)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 3));
}

}  // namespace
}  // namespace rlog::storage
