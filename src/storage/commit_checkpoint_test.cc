// The sentinel's commit checkpoint through the fault-injecting file system: a crash at any step
// of a save leaves the old value or the new one, and damage is reported, never read as a value.
#include "storage/commit_checkpoint.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "storage/fault_injection_file_system.h"

namespace rlog::storage {
namespace {

using Op = FaultInjectionFileSystem::Op;

class CommitCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.CreateDir("/data").ok()); }

  std::optional<CommitCheckpoint> Load() {
    auto loaded = LoadCommitCheckpoint(fs_, "/data");
    EXPECT_TRUE(loaded.ok()) << loaded.status().message();
    return loaded.ok() ? loaded.value() : std::nullopt;
  }

  FaultInjectionFileSystem fs_;
};

TEST_F(CommitCheckpointTest, NoneUntilSavedThenTheLastSaved) {
  EXPECT_EQ(Load(), std::nullopt);
  ASSERT_TRUE(SaveCommitCheckpoint(fs_, "/data", {"log-a", 7}).ok());
  EXPECT_EQ(Load(), (CommitCheckpoint{"log-a", 7}));
  ASSERT_TRUE(SaveCommitCheckpoint(fs_, "/data", {"log with spaces", 18446744073709551615u}).ok());
  EXPECT_EQ(Load(), (CommitCheckpoint{"log with spaces", 18446744073709551615u}));
  fs_.DropUnsyncedData();  // Saved means durable.
  EXPECT_EQ(Load(), (CommitCheckpoint{"log with spaces", 18446744073709551615u}));
  EXPECT_EQ(SaveCommitCheckpoint(fs_, "/data", {"", 1}).code(), Status::Code::kInvalidArgument);
}

TEST_F(CommitCheckpointTest, AFailedStepLeavesTheOldValueAndALaterSaveWorks) {
  for (Op op : {Op::kCreate, Op::kWrite, Op::kSync, Op::kRename, Op::kSyncDir}) {
    SCOPED_TRACE(static_cast<int>(op));
    ASSERT_TRUE(SaveCommitCheckpoint(fs_, "/data", {"log-a", 10}).ok());
    fs_.InjectError(op, 1, op == Op::kWrite ? ENOSPC : EIO, /*torn_bytes=*/5);
    EXPECT_FALSE(SaveCommitCheckpoint(fs_, "/data", {"log-a", 20}).ok());
    fs_.ClearInjectedErrors();
    // Before a power loss the file holds the old value, or (the directory sync failed) the new.
    std::optional<CommitCheckpoint> now = Load();
    ASSERT_TRUE(now.has_value());
    EXPECT_TRUE(now->commit_id == 10 || (op == Op::kSyncDir && now->commit_id == 20));
    fs_.DropUnsyncedData();
    EXPECT_EQ(Load(), (CommitCheckpoint{"log-a", 10}));
    // The temporary file a failed attempt left behind does not stop the next one.
    ASSERT_TRUE(SaveCommitCheckpoint(fs_, "/data", {"log-a", 30}).ok());
    EXPECT_EQ(Load(), (CommitCheckpoint{"log-a", 30}));
  }
}

TEST_F(CommitCheckpointTest, PowerLossAtAnyPointOfASaveLeavesOldOrNew) {
  // Every way a power loss can cut a save short: the new value is never half there.
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    FaultInjectionFileSystem fs;
    ASSERT_TRUE(fs.CreateDir("/data").ok());
    ASSERT_TRUE(SaveCommitCheckpoint(fs, "/data", {"log-a", 100}).ok());
    const Op fails[] = {Op::kWrite, Op::kSync, Op::kRename, Op::kSyncDir};
    fs.InjectError(fails[seed % 4], 1, EIO, /*torn_bytes=*/seed % 30);
    EXPECT_FALSE(SaveCommitCheckpoint(fs, "/data", {"log-a", 200}).ok());
    fs.ClearInjectedErrors();
    if (seed % 5 != 0) {
      ASSERT_TRUE(SaveCommitCheckpoint(fs, "/data", {"log-a", 300}).ok());
    }
    FaultInjectionFileSystem::PowerLoss how;
    how.tail = static_cast<FaultInjectionFileSystem::PowerLoss::Tail>(seed % 3);
    how.random_directory_prefix = true;
    how.seed = seed;
    fs.DropUnsyncedData(how);
    auto loaded = LoadCommitCheckpoint(fs, "/data");
    ASSERT_TRUE(loaded.ok()) << "seed " << seed << ": " << loaded.status().message();
    ASSERT_TRUE(loaded.value().has_value());
    uint64_t id = loaded.value()->commit_id;
    EXPECT_TRUE(id == 100 || id == 200 || id == 300) << "seed " << seed << ": " << id;
  }
}

TEST_F(CommitCheckpointTest, DamageIsReportedWithThePathNotReadAsAValue) {
  ASSERT_TRUE(SaveCommitCheckpoint(fs_, "/data", {"log-a", 12345}).ok());
  const std::string good = fs_.Contents("/data/commit").value();
  const std::vector<std::string> damaged = {
      "",                                                               // Empty.
      good.substr(0, good.size() - 1),                                  // No newline: torn.
      good.substr(0, good.size() / 2),                                  // Torn in the middle.
      std::string(good.size(), '\0'),                                   // Zero-filled.
      "rlog-commit 1 log-a 12345\n",                                    // No checksum.
      "rlog-commit 1 log-a 12346 " + good.substr(good.rfind(' ') + 1),  // A changed digit.
      "rlog-commit 1 log-a x " + good.substr(good.rfind(' ') + 1),
      "rlog-commit 2" + good.substr(13),  // Another version.
  };
  for (const std::string& bytes : damaged) {
    SCOPED_TRACE(bytes);
    FaultInjectionFileSystem fs;
    ASSERT_TRUE(fs.CreateDir("/data").ok());
    ASSERT_TRUE(fs.OpenForAppend("/data/commit", FileSystem::OpenMode::kCreateNew).ok());
    if (!bytes.empty()) {
      ASSERT_TRUE(fs.Corrupt("/data/commit", 0, bytes).ok());
    }
    auto loaded = LoadCommitCheckpoint(fs, "/data");
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.status().code(), Status::Code::kCorruption);
    EXPECT_NE(loaded.status().message().find("/data/commit"), std::string::npos);
  }
}

}  // namespace
}  // namespace rlog::storage
