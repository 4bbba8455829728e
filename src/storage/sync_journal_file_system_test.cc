// The sync journal that process-level power-loss tests cut a killed node's files by: every
// durable change is in it, in order, and nothing that failed or was not synced is.
#include "storage/sync_journal_file_system.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "storage/fault_injection_file_system.h"
#include "storage/temp_dir_testing.h"

namespace rlog::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SyncJournalFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(tmp_.ok()); }

  std::vector<std::string> JournalLines() const {
    std::ifstream in(journal_);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::unique_ptr<SyncJournalFileSystem> Open(FileSystem& base) {
    auto opened = SyncJournalFileSystem::Open(base, journal_);
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  TempDir tmp_{"rlog-journal"};
  const std::string& dir_ = tmp_.path();
  const std::string journal_ = JoinPath(dir_, "syncs");
};

TEST_F(SyncJournalFileSystemTest, JournalsWhatEachSyncCoveredAndEveryRenameAndRemoval) {
  auto fs = Open(PosixFileSystem());
  ASSERT_TRUE(fs);
  const std::string a = JoinPath(dir_, "a");
  const std::string b = JoinPath(dir_, "b");
  auto file = fs->OpenForAppend(a, FileSystem::OpenMode::kCreateNew);
  ASSERT_TRUE(file.ok()) << file.status().message();
  WritableFile& f = *file.value();
  ASSERT_TRUE(f.Append("hello").ok());
  ASSERT_TRUE(f.Preallocate(64).ok());  // Zeros ahead are not data: the sync covers 5 bytes.
  ASSERT_TRUE(f.Sync().ok());
  ASSERT_TRUE(f.Append(" world").ok());  // Not synced: no line.
  ASSERT_TRUE(f.Truncate(7).ok());
  ASSERT_TRUE(f.Sync().ok());
  ASSERT_TRUE(f.Close().ok());
  ASSERT_TRUE(fs->Rename(a, b).ok());
  // Reopening an existing file is no change; reads pass through.
  auto again = fs->OpenForAppend(b, FileSystem::OpenMode::kOpenExisting);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value()->size(), 7u);
  auto content = ReadFileToString(*fs, b);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(content.value(), std::string("hello w"));
  ASSERT_TRUE(fs->SyncDir(dir_).ok());
  ASSERT_TRUE(fs->Remove(b).ok());
  const std::string lock = JoinPath(dir_, "LOCK");
  auto locked = fs->LockFile(lock);
  ASSERT_TRUE(locked.ok()) << locked.status().message();
  EXPECT_THAT(JournalLines(),
              ElementsAre("create\t" + a, "sync\t" + a + "\t5", "truncate\t" + a + "\t7",
                          "sync\t" + a + "\t7", "rename\t" + a + "\t" + b, "remove\t" + b,
                          "lock\t" + lock));
}

TEST_F(SyncJournalFileSystemTest, AFailedCallLeavesNoLine) {
  FaultInjectionFileSystem base;  // In memory; only the journal is a real file.
  ASSERT_TRUE(base.CreateDir("/d").ok());
  auto fs = Open(base);
  ASSERT_TRUE(fs);
  const std::string a = "/d/a";
  auto file = fs->OpenForAppend(a, FileSystem::OpenMode::kCreateNew);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(file.value()->Append("abc").ok());
  base.InjectError(FaultInjectionFileSystem::Op::kSync, 1, EIO);
  EXPECT_FALSE(file.value()->Sync().ok());
  base.InjectError(FaultInjectionFileSystem::Op::kTruncate, 1, EIO);
  EXPECT_FALSE(file.value()->Truncate(1).ok());
  EXPECT_FALSE(fs->Rename("/d/missing", a).ok());
  EXPECT_FALSE(fs->Remove("/d/missing").ok());
  EXPECT_FALSE(fs->OpenForAppend(a, FileSystem::OpenMode::kCreateNew).ok());  // Exists.
  auto held = base.LockFile("/d/LOCK");
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(fs->LockFile("/d/LOCK").ok());
  EXPECT_THAT(JournalLines(), ElementsAre("create\t" + a));
}

TEST_F(SyncJournalFileSystemTest, ACallWhoseLineCannotBeWrittenFails) {
  // /dev/full takes the open and refuses every write with ENOSPC.
  auto opened = SyncJournalFileSystem::Open(PosixFileSystem(), "/dev/full");
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  SyncJournalFileSystem& fs = *opened.value();
  const std::string a = JoinPath(dir_, "a");
  auto created = fs.OpenForAppend(a, FileSystem::OpenMode::kCreateNew);
  ASSERT_FALSE(created.ok());
  EXPECT_THAT(created.status().message(), HasSubstr("/dev/full"));
  auto file = fs.OpenForAppend(a, FileSystem::OpenMode::kOpenExisting);  // No line needed.
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_TRUE(file.value()->Append("abc").ok());
  Status synced = file.value()->Sync();
  EXPECT_FALSE(synced.ok());
  EXPECT_THAT(synced.message(), HasSubstr("/dev/full"));
}

TEST_F(SyncJournalFileSystemTest, OpenFailsWithTheJournalsPath) {
  auto opened = SyncJournalFileSystem::Open(PosixFileSystem(), JoinPath(dir_, "no/such/dir"));
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened.status().message(), HasSubstr("no/such/dir"));
}

}  // namespace
}  // namespace rlog::storage
