// Writing the WAL through the fault-injecting file system: what Sync makes durable, power loss,
// rotation, disk errors (issue 3, items 2, 6 and 8); one round trip on the real file system.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <set>
#include <utility>

#include "storage/temp_dir_testing.h"
#include "storage/wal_test_fixture.h"

namespace rlog::storage {
namespace {

using namespace wal_testing;  // NOLINT(google-build-using-namespace): test helpers.

TEST_F(WalTest, NewLogIsEmptyWithoutIdentity) {
  std::unique_ptr<Wal> wal;
  REOPEN(wal);
  EXPECT_EQ(wal->log_id(), "");
  EXPECT_EQ(wal->last_id(), 0u);
  EXPECT_EQ(wal->Append(Entries(1, 1)).code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(wal->Sync().ok());
}

TEST_F(WalTest, AppendedAndSyncedEntriesAreRecovered) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->Append(Entries(1, 3)).ok());
  ASSERT_TRUE(wal->Append(Entries(4, 97, 100)).ok());
  EXPECT_EQ(wal->synced_id(), 0u);
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_EQ(wal->synced_id(), 100u);
  wal.reset();
  REOPEN(wal);
  EXPECT_EQ(wal->log_id(), "log-a");
  EXPECT_EQ(wal->epoch(), 1u);
  EXPECT_EQ(wal->last_id(), 100u);
  ASSERT_EQ(recovered_.size(), 100u);
  EXPECT_EQ(recovered_[99].message, std::string(100, static_cast<char>('a' + 100 % 26)));
  EXPECT_EQ(recovered_[99].timestamp_ms, 1100);
  EXPECT_EQ(wal->recovery().entries, 100u);
  EXPECT_EQ(wal->recovery().truncated_bytes, 0u);
  ASSERT_TRUE(wal->Append(Entries(101, 1)).ok());  // And it continues where it was.
}

TEST_F(WalTest, AppendRejectsIdsThatDoNotContinueTheLog) {
  auto wal = NewLog(5);
  EXPECT_EQ(wal->Append(Entries(7, 1)).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(wal->Append(Entries(5, 1)).code(), Status::Code::kInvalidArgument);
  std::vector<Entry> gap = Entries(6, 3);
  gap[2].id = 9;
  EXPECT_EQ(wal->Append(gap).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(wal->last_id(), 5u);
}

TEST_F(WalTest, LogIdentityIsDurableOnReturnAndFixedOnceItHoldsEntries) {
  auto wal = NewLog(1);
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(wal->log_id(), "log-a");
  EXPECT_EQ(wal->SetLogIdentity("log-b", 1).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(wal->SetLogIdentity("log-a", 0).code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(wal->SetLogIdentity("log-a", 1).ok());
}

TEST_F(WalTest, NewerEpochIsDurableOnReturnAndStampsLaterRecords) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 2).ok());  // Header-only segment: replaced by rename.
  EXPECT_EQ(fs_.ListDir(dir_).value(), std::vector<std::string>{SegmentFileName(1)});
  ASSERT_TRUE(wal->Append(Entries(1, 4)).ok());
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 5).ok());  // Segment with entries: a new segment.
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(wal->epoch(), 5u);
  EXPECT_EQ(RecoveredIds(), Ids(1, 4));
  EXPECT_EQ(fs_.ListDir(dir_).value(),
            (std::vector<std::string>{SegmentFileName(1), SegmentFileName(5)}));
}

TEST_F(WalTest, EntryEpochsRoundTripThroughRecovery) {
  auto wal = NewLog(0);                               // Accepted epoch 1.
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 3).ok());  // Header-only segment 1, epoch 3.
  // Older entries copied after accepting epoch 3, then the epoch-3 master's own.
  ASSERT_TRUE(wal->Append(Entries(1, 2, 10, 1)).ok());
  ASSERT_TRUE(wal->Append(Entries(3, 1, 10, 2)).ok());
  ASSERT_TRUE(wal->Append(Entries(4, 2, 10, 3)).ok());
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 7).ok());  // Segment 6, epoch 7.
  ASSERT_TRUE(wal->Append(Entries(6, 1, 10, 3)).ok());
  ASSERT_TRUE(wal->Append(Entries(7, 1, 10, 7)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 7));
  EXPECT_EQ(RecoveredEpochs(), (std::vector<uint64_t>{1, 1, 2, 3, 3, 3, 7}));
  EXPECT_EQ(wal->epoch(), 7u);
  EXPECT_EQ(wal->last_epoch(), 7u);
  EXPECT_EQ(fs_.ListDir(dir_).value(),
            (std::vector<std::string>{SegmentFileName(1), SegmentFileName(6)}));
}

TEST_F(WalTest, AppendRefusesEpochsRecoveryWouldRefuse) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 4).ok());
  ASSERT_TRUE(wal->Append(Entries(1, 2, 10, 3)).ok());
  const Status older = wal->Append(Entries(3, 1, 10, 2));
  EXPECT_EQ(older.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(older.message(), "entry 3 has epoch 2, older than the entry before it (3)");
  std::vector<Entry> decreasing = Entries(3, 2, 10, 4);
  decreasing[1].epoch = 3;
  EXPECT_EQ(wal->Append(decreasing).code(), Status::Code::kInvalidArgument);
  const Status newer = wal->Append(Entries(3, 1, 10, 5));
  EXPECT_EQ(newer.message(),
            "entry 3 has epoch 5, newer than the log's epoch 4 (adopt the master's epoch first)");
  EXPECT_EQ(wal->last_id(), 2u);
  EXPECT_EQ(wal->last_epoch(), 3u);
  ASSERT_TRUE(wal->Append(Entries(3, 1, 10, 4)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredEpochs(), (std::vector<uint64_t>{3, 3, 4}));
}

TEST_F(WalTest, EmptyLogAdoptsAnotherLogIdDurably) {
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-b", 1).ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(wal->log_id(), "log-b");
  ASSERT_TRUE(wal->Append(Entries(1, 1)).ok());
  EXPECT_EQ(wal->SetLogIdentity("log-a", 1).code(), Status::Code::kFailedPrecondition);
}

TEST_F(WalTest, TruncateAfterZeroDropsEveryEntryDurablyAndKeepsTheIdentity) {
  options_.segment_bytes = 200;
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 3).ok());
  for (LogId id = 1; id <= 20; ++id) ASSERT_TRUE(wal->Append(Entries(id, 1, 10, 2)).ok());
  ASSERT_GT(fs_.ListDir(dir_).value().size(), 3u);
  ASSERT_TRUE(wal->TruncateAfter(0).ok());
  EXPECT_EQ(wal->last_id(), 0u);
  EXPECT_EQ(wal->last_epoch(), 0u);
  fs_.DropUnsyncedData();  // Durable on return.
  REOPEN(wal);
  EXPECT_TRUE(recovered_.empty());
  EXPECT_EQ(wal->log_id(), "log-a");
  EXPECT_EQ(wal->epoch(), 3u);
  EXPECT_EQ(fs_.ListDir(dir_).value(), std::vector<std::string>{SegmentFileName(1)});
  ASSERT_TRUE(wal->Append(Entries(1, 2, 10, 3)).ok());  // Starts again at id 1.
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 2));
}

// Cuts in the live segment, in a closed one, and at a segment's end: what is kept comes back
// unchanged with its epochs, the accepted epoch survives the removal of the segments that
// carried it, and the log goes on from keep + 1.
TEST_F(WalTest, TruncateAfterKeepsThePrefixAndTheAcceptedEpochDurably) {
  options_.segment_bytes = 200;
  for (const LogId keep : {LogId{19}, LogId{7}, LogId{1}}) {
    if (auto names = fs_.ListDir(dir_); names.ok()) {  // The previous round's log.
      for (const std::string& name : names.value()) {
        ASSERT_TRUE(fs_.Remove(JoinPath(dir_, name)).ok());
      }
    }
    auto wal = NewLog(0);
    for (LogId id = 1; id <= 10; ++id) ASSERT_TRUE(wal->Append(Entries(id, 1, 10, 1)).ok());
    ASSERT_TRUE(wal->SetLogIdentity("log-a", 4).ok());  // A header of epoch 4, after id 10.
    for (LogId id = 11; id <= 20; ++id) ASSERT_TRUE(wal->Append(Entries(id, 1, 10, 4)).ok());
    ASSERT_GT(fs_.ListDir(dir_).value().size(), 3u);
    ASSERT_TRUE(wal->TruncateAfter(keep).ok()) << keep;
    EXPECT_EQ(wal->last_id(), keep);
    EXPECT_EQ(wal->synced_id(), keep);
    EXPECT_EQ(wal->last_epoch(), keep > 10 ? 4u : 1u);
    fs_.DropUnsyncedData();  // Durable on return.
    REOPEN(wal);
    EXPECT_EQ(RecoveredIds(), Ids(1, keep));
    for (const Entry& e : recovered_) EXPECT_EQ(e.message, Entries(e.id, 1)[0].message);
    EXPECT_EQ(wal->epoch(), 4u) << "keep " << keep;
    EXPECT_EQ(wal->last_epoch(), keep > 10 ? 4u : 1u);
    ASSERT_TRUE(wal->Append(Entries(keep + 1, 3, 10, 4)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    REOPEN(wal);
    EXPECT_EQ(RecoveredIds(), Ids(1, keep + 3));
    EXPECT_EQ(recovered_.back().epoch, 4u);
  }
}

// A directory this writer did not write may hold its highest epoch in an entry only (recovery
// takes the highest of any header or entry). Cutting that entry must not take the epoch with it.
// Found by wal_recovery_fuzz.
TEST_F(WalTest, TruncateAfterKeepsAnEpochThatOnlyACutEntryCarried) {
  auto wal = NewLog(2);  // Header epoch 1, entries of epoch 0.
  wal.reset();
  ASSERT_TRUE(fs_.Corrupt(Segment(1), Size(Segment(1)), EntryRecord(3, 9)).ok());
  REOPEN(wal);
  ASSERT_EQ(wal->epoch(), 9u);
  ASSERT_TRUE(wal->TruncateAfter(2).ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 2));
  EXPECT_EQ(wal->epoch(), 9u);
}

TEST_F(WalTest, TruncateAfterTheEndIsRefusedAndAtTheEndChangesNothing) {
  auto wal = NewLog(5);
  EXPECT_EQ(wal->TruncateAfter(6).code(), Status::Code::kInvalidArgument);
  const auto files = fs_.ListDir(dir_).value();
  EXPECT_TRUE(wal->TruncateAfter(5).ok());
  EXPECT_EQ(wal->last_id(), 5u);
  EXPECT_EQ(fs_.ListDir(dir_).value(), files);
  EXPECT_TRUE(wal->failure().ok());
}

// Whatever part of a truncation's changes a power loss keeps (the directory's in order, as file
// systems that commit metadata in order do), recovery finds the old log or a shorter one that
// still holds every kept entry, the identity and the accepted epoch, never corruption. The
// truncation is stopped by an error at each of its steps in turn.
TEST(WalTruncate, PowerLossPartWayKeepsThePrefixTheIdentityAndTheEpoch) {
  using Op = FaultInjectionFileSystem::Op;
  const std::pair<Op, uint64_t> failures[] = {
      {Op::kCreate, 1}, {Op::kWrite, 1},  {Op::kSync, 1},    {Op::kRename, 1},   {Op::kSyncDir, 1},
      {Op::kRemove, 1}, {Op::kRemove, 2}, {Op::kSyncDir, 2}, {Op::kTruncate, 1}, {Op::kSync, 2}};
  WalOptions options;
  options.segment_bytes = 200;
  std::set<size_t> lengths;  // Recovered log lengths seen: the cases really differ.
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    const LogId keep = seed % 4 == 0 ? 0 : 5 + seed % 13;
    FaultInjectionFileSystem fs;
    std::vector<Entry> recovered;
    auto sink = [&recovered](std::vector<Entry>&& b) {
      recovered.insert(recovered.end(), b.begin(), b.end());
    };
    {
      auto wal = Wal::Open(fs, "/wal", options, sink);
      ASSERT_TRUE(wal.ok());
      ASSERT_TRUE(wal.value()->SetLogIdentity("log-a", 2).ok());
      ASSERT_TRUE(wal.value()->Append(Entries(1, 20, 10, 2)).ok());
      ASSERT_TRUE(wal.value()->SetLogIdentity("log-a", 5).ok());
      for (LogId id = 21; id <= 40; ++id) {
        ASSERT_TRUE(wal.value()->Append(Entries(id, 1, 10, 5)).ok());
      }
      ASSERT_TRUE(wal.value()->Sync().ok());
      if (seed % (std::size(failures) + 1) < std::size(failures)) {  // Else it completes.
        const auto [op, nth] = failures[seed % (std::size(failures) + 1)];
        fs.InjectError(op, nth, EIO);
      }
      if (!wal.value()->TruncateAfter(keep).ok() && wal.value()->failure().ok()) {
        // Refused before any file changed: the WAL goes on.
        EXPECT_EQ(wal.value()->last_id(), 40u);
      }
    }
    fs.ClearInjectedErrors();
    fs.DropUnsyncedData({FaultInjectionFileSystem::PowerLoss::Tail::kDropped,
                         /*random_directory_prefix=*/seed % 2 == 0, seed});
    recovered.clear();
    auto wal = Wal::Open(fs, "/wal", options, sink);
    ASSERT_TRUE(wal.ok()) << "seed " << seed << ": " << wal.status().message();
    EXPECT_EQ(wal.value()->log_id(), "log-a");
    EXPECT_EQ(wal.value()->epoch(), 5u) << "seed " << seed << ": the accepted epoch was lost";
    ASSERT_GE(recovered.size(), keep) << "seed " << seed << ": a kept entry was lost";
    for (size_t i = 0; i < recovered.size(); ++i) {
      ASSERT_EQ(recovered[i].id, i + 1);
      ASSERT_EQ(recovered[i].epoch, i < 20 ? 2u : 5u);
      ASSERT_EQ(recovered[i].message, Entries(i + 1, 1)[0].message);
    }
    lengths.insert(recovered.size());
  }
  EXPECT_TRUE(lengths.contains(0)) << "a log truncated to nothing";
  EXPECT_TRUE(lengths.contains(40)) << "the untouched log";
  EXPECT_GT(lengths.size(), 8u) << "lengths in between";
}

TEST_F(WalTest, UnsyncedDataIsDroppedOnPowerLoss) {
  options_.preallocate_bytes = 0;
  auto wal = NewLog(10);
  ASSERT_TRUE(wal->Append(Entries(11, 5)).ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 10));
  EXPECT_EQ(wal->recovery().truncated_bytes, 0u);  // A clean cut at the last sync.
}

// Preallocation (docs/wal-format.md): zeros are written ahead of the appends, and appends land
// in them.
TEST_F(WalTest, PreallocatedZerosAreWrittenAheadAndCutOnClose) {
  options_.preallocate_bytes = 1000;
  auto wal = NewLog(10);
  const uint64_t used = HeaderBytes("log-a") + 10 * RecordBytes(10);
  EXPECT_EQ(Size(Segment(1)), 1000u);
  ASSERT_TRUE(wal->Append(Entries(11, 30)).ok());  // Past the first 1000 bytes: one more chunk.
  EXPECT_EQ(Size(Segment(1)), 2000u);
  wal.reset();  // A clean close cuts the zeros.
  EXPECT_EQ(Size(Segment(1)), used + 30 * RecordBytes(10));
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 40));
  EXPECT_EQ(wal->recovery().truncated_bytes, 0u);
}

TEST_F(WalTest, PowerLossLeavesTheZerosAsATailRecoveryCuts) {
  options_.preallocate_bytes = 1000;
  auto wal = NewLog(10);
  ASSERT_TRUE(wal->Append(Entries(11, 5)).ok());  // Over the synced zeros, not synced itself.
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 10));
  EXPECT_EQ(wal->recovery().truncated_reason, "zero-filled tail");
  EXPECT_EQ(wal->recovery().truncated_records, 0u);
  EXPECT_EQ(wal->recovery().truncated_bytes, 1000 - HeaderBytes("log-a") - 10 * RecordBytes(10));
  ASSERT_TRUE(wal->Append(Entries(11, 2)).ok());  // And the log goes on after them.
  ASSERT_TRUE(wal->Sync().ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 12));
}

TEST_F(WalTest, TornAppendOverPreallocatedZerosIsATornTail) {
  options_.preallocate_bytes = 1000;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    FaultInjectionFileSystem fs;
    std::vector<LogId> ids;
    auto sink = [&ids](std::vector<Entry>&& batch) {
      for (const Entry& e : batch) ids.push_back(e.id);
    };
    auto wal = Wal::Open(fs, dir_, options_, sink);
    ASSERT_TRUE(wal.ok());
    ASSERT_TRUE(wal.value()->SetLogIdentity("log-a", 1).ok());
    ASSERT_TRUE(wal.value()->Append(Entries(1, 10)).ok());
    ASSERT_TRUE(wal.value()->Sync().ok());
    ASSERT_TRUE(wal.value()->Append(Entries(11, 8)).ok());
    fs.DropUnsyncedData({Tail::kRandomPrefix, false, seed});
    wal.value().reset();
    auto reopened = Wal::Open(fs, dir_, options_, sink);
    ASSERT_TRUE(reopened.ok()) << "seed " << seed << ": " << reopened.status().message();
    ASSERT_GE(ids.size(), 10u) << "seed " << seed;
    ASSERT_LE(ids.size(), 18u) << "seed " << seed;
    EXPECT_EQ(ids, Ids(1, ids.size())) << "seed " << seed;
  }
}

// With fsync: never nothing calls Sync between rotations: each rotation makes the closed
// segment durable, its directory entry included, so a power loss keeps every closed segment.
// (Without the entry a file system that reorders directory changes could keep a later segment
// and lose this one: a gap recovery refuses.)
TEST_F(WalTest, RotationMakesTheClosedSegmentsDirectoryEntryDurable) {
  options_.segment_bytes = 100;
  auto wal = NewLog(0);
  for (LogId id = 1; id <= 12; ++id) ASSERT_TRUE(wal->Append(Entries(id, 1)).ok());  // No Sync.
  const std::vector<std::string> names = fs_.ListDir(dir_).value();
  ASSERT_GE(names.size(), 3u);
  const LogId live_first = ParseSegmentFileName(names.back()).value();
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, live_first - 1));
}

TEST_F(WalTest, RotationCutsTheZerosOffTheClosedSegment) {
  options_.segment_bytes = 4096;
  options_.preallocate_bytes = 1024;
  auto wal = NewLog(0);
  LogId id = 1;
  while (fs_.ListDir(dir_).value().size() < 2) {
    const Status s = wal->Append(Entries(id, 5));
    ASSERT_TRUE(s.ok()) << s.message();
    id += 5;
  }
  // The reserve never passes segment_bytes, so a rotation by size finds it used up; a newer
  // epoch rotates a segment with zeros left.
  ASSERT_TRUE(wal->Append(Entries(id, 2)).ok());
  id += 2;
  ASSERT_TRUE(wal->SetLogIdentity("log-a", 2).ok());
  ASSERT_TRUE(wal->Append(Entries(id, 2, 10, 2)).ok());
  id += 2;
  ASSERT_TRUE(wal->Sync().ok());
  const std::vector<std::string> names = fs_.ListDir(dir_).value();
  for (size_t i = 0; i + 1 < names.size(); ++i) {  // Closed: records only, ending in a payload.
    const std::string contents = fs_.Contents(JoinPath(dir_, names[i])).value();
    ASSERT_FALSE(contents.empty());
    EXPECT_NE(contents.back(), '\0') << names[i];
  }
  EXPECT_EQ(fs_.Contents(JoinPath(dir_, names.back())).value().back(), '\0') << "the live one";
  fs_.DropUnsyncedData();  // Closed segments hold no zeros that recovery would call corruption.
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, id - 1));
}

TEST_F(WalTest, EnospcWhilePreallocatingCutsTheZerosAndAppendsWithoutThem) {
  options_.preallocate_bytes = 256;
  auto wal = NewLog(3);
  const uint64_t used = HeaderBytes("log-a") + 3 * RecordBytes(10);
  fs_.InjectError(Op::kPreallocate, 1, ENOSPC, /*torn_bytes=*/100);
  ASSERT_TRUE(wal->Append(Entries(4, 10)).ok());  // Needs more room than the first chunk.
  EXPECT_EQ(Size(Segment(1)), used + 10 * RecordBytes(10)) << "no zeros left after the data";
  ASSERT_TRUE(wal->Append(Entries(14, 10)).ok());  // Not tried again in this segment.
  EXPECT_EQ(Size(Segment(1)), used + 20 * RecordBytes(10));
  ASSERT_TRUE(wal->Sync().ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 23));
  EXPECT_EQ(wal->recovery().truncated_bytes, 0u);
}

TEST_F(WalTest, EnospcWhilePreallocatingAndWritingFailsTheAppend) {
  options_.preallocate_bytes = 256;
  auto wal = NewLog(3);
  const uint64_t used = HeaderBytes("log-a") + 3 * RecordBytes(10);
  fs_.InjectError(Op::kPreallocate, 1, ENOSPC, /*torn_bytes=*/100);
  fs_.InjectError(Op::kWrite, 1, ENOSPC, /*torn_bytes=*/50);
  const Status s = wal->Append(Entries(4, 10));
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_TRUE(Contains(s.message(), "ids 4..13 failed, not written")) << s.message();
  EXPECT_TRUE(Contains(s.message(), "No space left on device"));
  EXPECT_EQ(wal->last_id(), 3u);
  EXPECT_EQ(Size(Segment(1)), used);  // Zeros and torn bytes cut back.
  EXPECT_TRUE(wal->failure().ok());
  ASSERT_TRUE(wal->Append(Entries(4, 10)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 13));
}

TEST_F(WalTest, FailedCutOfThePreallocatedZerosStopsTheWal) {
  options_.preallocate_bytes = 256;
  auto wal = NewLog(3);
  fs_.InjectError(Op::kPreallocate, 1, ENOSPC, /*torn_bytes=*/100);
  fs_.InjectError(Op::kTruncate, 1, EIO);
  const Status s = wal->Append(Entries(4, 10));
  EXPECT_TRUE(Contains(s.message(), "cutting the zeros back failed too")) << s.message();
  EXPECT_FALSE(wal->failure().ok());
  wal.reset();
  REOPEN(wal);  // The zeros are a tail recovery cuts.
  EXPECT_EQ(RecoveredIds(), Ids(1, 3));
}

TEST_F(WalTest, ProcessCrashWithoutPowerLossKeepsUnsyncedAppends) {
  auto wal = NewLog(10);
  ASSERT_TRUE(wal->Append(Entries(11, 5)).ok());
  wal.reset();  // The page cache survives a crash of the process.
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 15));
  fs_.DropUnsyncedData();  // Open made what it recovered durable.
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 15));
}

TEST_F(WalTest, DirectoryEntryNotSyncedLosesNewSegment) {
  options_.segment_bytes = 200;
  auto wal = NewLog(0);
  LogId id = 1;
  while (fs_.ListDir(dir_).value().size() < 2) ASSERT_TRUE(wal->Append(Entries(id++, 1)).ok());
  const LogId last_in_first = id - 2;  // The append that rotated went to the new segment.
  // Rotation synced the first segment; the second one's data is synced, its entry is not.
  auto second = fs_.OpenForAppend(Segment(last_in_first + 1), FileSystem::OpenMode::kOpenExisting);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second.value()->Sync().ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(fs_.ListDir(dir_).value(), std::vector<std::string>{SegmentFileName(1)});
  EXPECT_EQ(RecoveredIds(), Ids(1, last_in_first));

  // Sync() covers the directory: a new segment survives once it returns.
  const uint64_t dir_syncs = fs_.dir_sync_count();
  id = last_in_first + 1;
  while (fs_.ListDir(dir_).value().size() < 2) ASSERT_TRUE(wal->Append(Entries(id++, 1)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_EQ(fs_.dir_sync_count(), dir_syncs + 1);
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, id - 1));
}

TEST_F(WalTest, EnospcFailsAppendWithoutHalfRecord) {
  options_.preallocate_bytes = 0;
  auto wal = NewLog(10);
  const uint64_t size = Size(Segment(1));
  fs_.InjectError(Op::kWrite, 1, ENOSPC, /*torn_bytes=*/RecordBytes(10) + 17);
  const Status s = wal->Append(Entries(11, 5));
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_TRUE(Contains(s.message(), "ids 11..15 failed, not written")) << s.message();
  EXPECT_TRUE(Contains(s.message(), "No space left on device"));
  EXPECT_EQ(wal->last_id(), 10u);
  EXPECT_EQ(Size(Segment(1)), size);  // Cut back: not even the whole first record stayed.
  EXPECT_TRUE(wal->failure().ok());   // Space may come back: the WAL goes on.
  std::vector<Entry> retry = Entries(11, 2);
  retry[0].message = "retried";
  ASSERT_TRUE(wal->Append(retry).ok());
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 12));
  EXPECT_EQ(recovered_[10].message, "retried");
  EXPECT_EQ(wal->recovery().truncated_bytes, 0u);
}

TEST_F(WalTest, EioOnWriteFailsAppend) {
  auto wal = NewLog(10);
  fs_.InjectError(Op::kWrite, 1, EIO, 7);
  const Status s = wal->Append(Entries(11, 1));
  EXPECT_TRUE(Contains(s.message(), "Input/output error")) << s.message();
  EXPECT_EQ(wal->last_id(), 10u);
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 10));
  EXPECT_EQ(wal->recovery().truncated_bytes, 0u);
}

TEST_F(WalTest, FailedCutBackStopsWalAndRecoveryDropsTheHalfRecord) {
  options_.preallocate_bytes = 0;
  auto wal = NewLog(10);
  fs_.InjectError(Op::kWrite, 1, EIO, 20);
  fs_.InjectError(Op::kTruncate, 1, EIO);
  const Status s = wal->Append(Entries(11, 1));
  EXPECT_TRUE(Contains(s.message(), "cutting the partial write back failed too")) << s.message();
  EXPECT_FALSE(wal->failure().ok());
  EXPECT_EQ(wal->Append(Entries(11, 1)).message(), s.message());  // Stopped for good.
  wal.reset();
  REOPEN(wal);  // The checksum catches the 20 bytes that did land.
  EXPECT_EQ(RecoveredIds(), Ids(1, 10));
  EXPECT_EQ(wal->recovery().truncated_bytes, 20u);
  EXPECT_EQ(wal->recovery().truncated_reason, "incomplete record");
}

TEST_F(WalTest, FailedFsyncIsReported) {
  auto wal = NewLog(10);
  ASSERT_TRUE(wal->Append(Entries(11, 1)).ok());
  fs_.InjectError(Op::kSync, 1, EIO);
  const Status s = wal->Sync();
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_TRUE(Contains(s.message(), "fdatasync " + Segment(1) + ": Input/output error"));
  EXPECT_TRUE(Contains(s.message(), "nothing after id 10 is known durable"));
  EXPECT_TRUE(Contains(s.message(), "never retry a failed fsync"));
  EXPECT_EQ(wal->synced_id(), 10u);
  // Sticky: a retry must not be able to report success.
  EXPECT_EQ(wal->Sync().message(), s.message());
  EXPECT_EQ(wal->Append(Entries(12, 1)).message(), s.message());
}

TEST_F(WalTest, FailedDirectorySyncIsReported) {
  options_.segment_bytes = 100;
  auto wal = NewLog(0);
  for (LogId id = 1; id <= 6; ++id) ASSERT_TRUE(wal->Append(Entries(id, 1)).ok());
  fs_.InjectError(Op::kSyncDir, 1, EIO);
  const Status s = wal->Sync();
  EXPECT_TRUE(Contains(s.message(), "fsync " + dir_ + ": Input/output error")) << s.message();
  EXPECT_FALSE(wal->failure().ok());
}

TEST_F(WalTest, RotationKeepsIdsContiguous) {
  options_.segment_bytes = 1000;
  auto wal = NewLog(0);
  LogId next = 1;
  for (size_t batch = 1; next <= 500; batch = batch % 7 + 1) {
    ASSERT_TRUE(wal->Append(Entries(next, batch, batch * 3)).ok());
    next += batch;
  }
  ASSERT_TRUE(wal->Sync().ok());
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, next - 1));
  auto names = fs_.ListDir(dir_).value();
  EXPECT_GT(names.size(), 10u);
  EXPECT_EQ(wal->recovery().segments, names.size());
  for (const std::string& name : names) {  // Each segment is named by its first id...
    auto data = fs_.Contents(JoinPath(dir_, name)).value();
    Record header;
    Record first_entry;
    size_t n = 0;
    size_t m = 0;
    ASSERT_EQ(DecodeRecord(data, &header, &n), DecodeStatus::kOk);
    ASSERT_EQ(DecodeRecord(std::string_view(data).substr(n), &first_entry, &m), DecodeStatus::kOk);
    EXPECT_EQ(ParseSegmentFileName(name), first_entry.id);
    EXPECT_EQ(header.id, first_entry.id);
  }
}

TEST_F(WalTest, SyncAfterRotationCoversTheClosedSegmentToo) {
  options_.segment_bytes = 100;
  auto wal = NewLog(0);
  ASSERT_TRUE(wal->Append(Entries(1, 2)).ok());  // Fills the first segment, unsynced.
  ASSERT_TRUE(wal->Append(Entries(3, 1)).ok());  // Rotates.
  ASSERT_EQ(fs_.ListDir(dir_).value().size(), 2u);
  ASSERT_TRUE(wal->Sync().ok());
  fs_.DropUnsyncedData();
  REOPEN(wal);
  EXPECT_EQ(RecoveredIds(), Ids(1, 3));
}

TEST(WalOnPosix, RoundTripAndTornTailOnRealFiles) {
  TempDir tmp("rlog-wal");
  ASSERT_TRUE(tmp.ok());
  const std::string dir = tmp.path() + "/wal";  // Created by Open.
  std::vector<Entry> got;
  auto sink = [&got](std::vector<Entry>&& b) { got.insert(got.end(), b.begin(), b.end()); };
  WalOptions options;
  options.segment_bytes = 4096;
  {
    auto wal = Wal::Open(PosixFileSystem(), dir, options, sink);
    ASSERT_TRUE(wal.ok()) << wal.status().message();
    ASSERT_TRUE(wal.value()->SetLogIdentity("log-p", 1).ok());
    ASSERT_TRUE(wal.value()->Append(Entries(1, 300, 50)).ok());
    ASSERT_TRUE(wal.value()->Append(Entries(301, 1, 50)).ok());
    ASSERT_TRUE(wal.value()->Sync().ok());
  }
  auto names = PosixFileSystem().ListDir(dir).value();
  const std::string last = JoinPath(dir, names.back());
  std::filesystem::resize_file(last, std::filesystem::file_size(last) - 3);
  auto wal = Wal::Open(PosixFileSystem(), dir, options, sink);
  ASSERT_TRUE(wal.ok()) << wal.status().message();
  EXPECT_EQ(wal.value()->last_id(), 300u);
  ASSERT_EQ(got.size(), 300u);
  EXPECT_EQ(got[299].id, 300u);
}

}  // namespace
}  // namespace rlog::storage
