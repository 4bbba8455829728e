// The two file systems: the POSIX one against a real temporary directory, and the fault-injecting
// one's durability model (the WAL tests are only as good as it is).
#include "storage/file_system.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "storage/fault_injection_file_system.h"
#include "storage/temp_dir_testing.h"

namespace rlog::storage {
namespace {

using Tail = FaultInjectionFileSystem::PowerLoss::Tail;

std::unique_ptr<WritableFile> Create(FileSystem& fs, const std::string& path) {
  auto file = fs.OpenForAppend(path, FileSystem::OpenMode::kCreateNew);
  EXPECT_TRUE(file.ok()) << file.status().message();
  return file.ok() ? std::move(file.value()) : nullptr;
}

std::string Read(FileSystem& fs, const std::string& path) {
  auto data = ReadFileToString(fs, path);
  return data.ok() ? data.value() : "<" + data.status().message() + ">";
}

TEST(PathHelpers, JoinAndParent) {
  EXPECT_EQ(JoinPath("/data", "a"), "/data/a");
  EXPECT_EQ(JoinPath("/data/", "a"), "/data/a");
  EXPECT_EQ(ParentDir("/data/a"), "/data");
  EXPECT_EQ(ParentDir("/a"), "/");
  EXPECT_EQ(ParentDir("a"), ".");
  EXPECT_EQ(ParentDir("x/y/"), "x");
}

class PosixFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(tmp_.ok()); }
  TempDir tmp_{"rlog-fs"};
  const std::string& dir_ = tmp_.path();
};

TEST_F(PosixFileSystemTest, WritesSyncsReadsRenamesAndRemoves) {
  FileSystem& fs = PosixFileSystem();
  const std::string a = JoinPath(dir_, "a");
  auto file = Create(fs, a);
  ASSERT_TRUE(file);
  ASSERT_TRUE(file->Append("hello ").ok());
  ASSERT_TRUE(file->Append("world").ok());
  EXPECT_EQ(file->size(), 11u);
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Truncate(5).ok());
  ASSERT_TRUE(file->Append("!").ok());
  ASSERT_TRUE(file->Close().ok());
  EXPECT_EQ(Read(fs, a), "hello!");
  EXPECT_EQ(fs.FileSize(a).value(), 6u);

  auto reader = fs.OpenForRead(a);
  ASSERT_TRUE(reader.ok());
  char buf[8];
  EXPECT_EQ(reader.value()->ReadAt(2, buf, sizeof(buf)).value(), 4u);
  EXPECT_EQ(std::string(buf, 4), "llo!");

  const std::string b = JoinPath(dir_, "b");
  ASSERT_TRUE(fs.Rename(a, b).ok());
  ASSERT_TRUE(fs.CreateDir(JoinPath(dir_, "sub")).ok());
  ASSERT_TRUE(fs.CreateDir(JoinPath(dir_, "sub")).ok());  // Already there: fine.
  ASSERT_TRUE(fs.SyncDir(dir_).ok());
  EXPECT_EQ(fs.ListDir(dir_).value(), (std::vector<std::string>{"b", "sub"}));
  auto again = fs.OpenForAppend(b, FileSystem::OpenMode::kOpenExisting);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value()->size(), 6u);
  ASSERT_TRUE(fs.Remove(b).ok());
  EXPECT_EQ(fs.ListDir(dir_).value(), (std::vector<std::string>{"sub"}));
}

TEST_F(PosixFileSystemTest, PreallocatedZerosAreOverwrittenInPlace) {
  FileSystem& fs = PosixFileSystem();
  const std::string a = JoinPath(dir_, "a");
  auto file = Create(fs, a);
  ASSERT_TRUE(file);
  ASSERT_TRUE(file->Append("abc").ok());
  ASSERT_TRUE(file->Preallocate(4096).ok());
  EXPECT_EQ(file->size(), 3u);
  EXPECT_EQ(file->allocated_size(), 4096u);
  EXPECT_EQ(fs.FileSize(a).value(), 4096u);
  ASSERT_TRUE(file->Preallocate(100).ok());  // Already that long: nothing to do.
  ASSERT_TRUE(file->Append("def").ok());
  EXPECT_EQ(file->size(), 6u);
  EXPECT_EQ(fs.FileSize(a).value(), 4096u);  // Appends into the zeros leave the size alone.
  std::string expected = "abcdef";
  expected.resize(4096, '\0');
  EXPECT_EQ(Read(fs, a), expected);
  ASSERT_TRUE(file->Append(std::string(5000, 'x')).ok());  // Past the zeros: the file grows.
  EXPECT_EQ(file->allocated_size(), 5006u);
  ASSERT_TRUE(file->Preallocate(6000).ok());
  ASSERT_TRUE(file->Truncate(file->size()).ok());  // Drops the zeros.
  EXPECT_EQ(file->allocated_size(), 5006u);
  ASSERT_TRUE(file->Close().ok());
  EXPECT_EQ(fs.FileSize(a).value(), 5006u);
  auto again = fs.OpenForAppend(a, FileSystem::OpenMode::kOpenExisting);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value()->size(), 5006u);
}

TEST_F(PosixFileSystemTest, RenamesADirectoryWithItsFiles) {
  FileSystem& fs = PosixFileSystem();
  const std::string wal = JoinPath(dir_, "wal");
  ASSERT_TRUE(fs.CreateDir(wal).ok());
  ASSERT_TRUE(Create(fs, JoinPath(wal, "a"))->Append("x").ok());
  ASSERT_TRUE(fs.Rename(wal, JoinPath(dir_, "old")).ok());
  ASSERT_TRUE(fs.SyncDir(dir_).ok());
  EXPECT_EQ(fs.ListDir(dir_).value(), std::vector<std::string>{"old"});
  EXPECT_EQ(Read(fs, JoinPath(dir_, "old/a")), "x");
}

TEST_F(PosixFileSystemTest, CreateDirDurablyMakesMissingParentsAndAcceptsExisting) {
  FileSystem& fs = PosixFileSystem();
  const std::string deep = JoinPath(dir_, "a/b/c");
  ASSERT_TRUE(CreateDirDurably(fs, deep).ok());
  EXPECT_TRUE(std::filesystem::is_directory(deep));
  EXPECT_TRUE(CreateDirDurably(fs, deep).ok()) << "an existing directory is fine";
}

TEST_F(PosixFileSystemTest, ErrorsNameTheCallThePathAndTheErrno) {
  FileSystem& fs = PosixFileSystem();
  const std::string missing = JoinPath(dir_, "missing");
  auto file = fs.OpenForRead(missing);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(file.status().message(), "open " + missing + ": No such file or directory");
  EXPECT_EQ(fs.ListDir(missing).status().code(), Status::Code::kNotFound);
  ASSERT_TRUE(Create(fs, JoinPath(dir_, "x")));
  auto twice = fs.OpenForAppend(JoinPath(dir_, "x"), FileSystem::OpenMode::kCreateNew);
  EXPECT_EQ(twice.status().code(), Status::Code::kIOError);
  EXPECT_NE(twice.status().message().find("File exists"), std::string::npos);
}

TEST_F(PosixFileSystemTest, ALockedFileCannotBeLockedAgainUntilItsLockIsGone) {
  FileSystem& fs = PosixFileSystem();
  const std::string path = JoinPath(dir_, "LOCK");
  auto first = fs.LockFile(path);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(fs.FileSize(path).value(), 0u) << "created, empty";

  // flock: a second open description conflicts even in the same process, and /proc/locks names
  // the holder.
  auto second = fs.LockFile(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(second.status().message(),
            "lock " + path + ": held by process " + std::to_string(::getpid()));

  first.value().reset();
  auto again = fs.LockFile(path);
  EXPECT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(fs.LockFile(JoinPath(dir_, "missing/LOCK")).status().code(), Status::Code::kNotFound);
}

TEST(FaultInjectionFileSystem, CreateDirDurablySyncsTheParentOfAnExistingDirectoryToo) {
  FaultInjectionFileSystem fs;
  ASSERT_TRUE(CreateDirDurably(fs, "/data/wal").ok());
  const uint64_t syncs = fs.dir_sync_count();
  ASSERT_TRUE(CreateDirDurably(fs, "/data/wal").ok());  // A restart after a crash, say.
  EXPECT_EQ(fs.dir_sync_count(), syncs + 1);
}

TEST(FaultInjectionFileSystem, ALockHoldsUntilReleasedOrThePowerGoes) {
  FaultInjectionFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/d").ok());
  auto first = fs.LockFile("/d/LOCK");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(fs.ListDir("/d").value(), (std::vector<std::string>{"LOCK"}));
  EXPECT_EQ(fs.LockFile("/d/LOCK").status().code(), Status::Code::kFailedPrecondition);
  first.value().reset();
  auto second = fs.LockFile("/d/LOCK");
  ASSERT_TRUE(second.ok());

  fs.DropUnsyncedData();  // The process holding the lock is gone, and its lock with it.
  auto after = fs.LockFile("/d/LOCK");
  ASSERT_TRUE(after.ok());
  second.value().reset();  // The dead process's lock going must not release the new one.
  EXPECT_EQ(fs.LockFile("/d/LOCK").status().code(), Status::Code::kFailedPrecondition);
}

TEST(FaultInjectionFileSystem, PowerLossKeepsOnlySyncedBytesAndSyncedDirectoryEntries) {
  FaultInjectionFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/d").ok());
  auto old_file = Create(fs, "/d/old");
  ASSERT_TRUE(old_file->Append("durable").ok());
  ASSERT_TRUE(old_file->Sync().ok());
  ASSERT_TRUE(fs.SyncDir("/d").ok());
  ASSERT_TRUE(old_file->Append(" not yet").ok());
  auto fresh = Create(fs, "/d/new");  // Synced data, unsynced directory entry.
  ASSERT_TRUE(fresh->Append("x").ok());
  ASSERT_TRUE(fresh->Sync().ok());
  EXPECT_EQ(Read(fs, "/d/old"), "durable not yet");

  fs.DropUnsyncedData();
  EXPECT_EQ(Read(fs, "/d/old"), "durable");
  EXPECT_EQ(fs.ListDir("/d").value(), (std::vector<std::string>{"old"}));
  EXPECT_FALSE(old_file->Append("more").ok());  // Handles from before the power loss are dead.
}

TEST(FaultInjectionFileSystem, UnsyncedRenameAndRemoveAreUndone) {
  FaultInjectionFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/d").ok());
  ASSERT_TRUE(Create(fs, "/d/a")->Sync().ok());
  ASSERT_TRUE(Create(fs, "/d/b")->Sync().ok());
  ASSERT_TRUE(fs.SyncDir("/d").ok());
  ASSERT_TRUE(fs.Rename("/d/a", "/d/c").ok());
  ASSERT_TRUE(fs.Remove("/d/b").ok());
  EXPECT_EQ(fs.ListDir("/d").value(), (std::vector<std::string>{"c"}));
  fs.DropUnsyncedData();
  EXPECT_EQ(fs.ListDir("/d").value(), (std::vector<std::string>{"a", "b"}));
}

TEST(FaultInjectionFileSystem, DirectoryRenameMovesItsFilesAndIsDurableAfterParentSync) {
  FaultInjectionFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/data").ok());
  ASSERT_TRUE(fs.CreateDir("/data/wal").ok());
  auto synced = Create(fs, "/data/wal/a");
  ASSERT_TRUE(synced->Append("kept").ok());
  ASSERT_TRUE(synced->Sync().ok());
  ASSERT_TRUE(fs.SyncDir("/data/wal").ok());
  auto pending = Create(fs, "/data/wal/b");  // Its directory entry is not synced.

  ASSERT_TRUE(fs.Rename("/data/wal", "/data/old").ok());
  EXPECT_EQ(fs.ListDir("/data").value(), std::vector<std::string>{"old"});
  EXPECT_EQ(fs.ListDir("/data/old").value(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Read(fs, "/data/old/a"), "kept");
  EXPECT_EQ(fs.ListDir("/data/wal").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(fs.Rename("/data/old", "/data/old").code(), Status::Code::kIOError);

  fs.DropUnsyncedData();  // The parent was not synced: the rename is undone.
  EXPECT_EQ(fs.ListDir("/data").value(), std::vector<std::string>{"wal"});
  EXPECT_EQ(fs.ListDir("/data/wal").value(), std::vector<std::string>{"a"});

  ASSERT_TRUE(fs.Rename("/data/wal", "/data/old").ok());
  ASSERT_TRUE(fs.SyncDir("/data").ok());
  fs.DropUnsyncedData();
  EXPECT_EQ(fs.ListDir("/data").value(), std::vector<std::string>{"old"});
  EXPECT_EQ(Read(fs, "/data/old/a"), "kept");
}

// A new directory is durable at once; a rename before it in the same directory must then be too,
// or the power loss would leave the new directory and undo the older rename.
TEST(FaultInjectionFileSystem, NewDirectoryIsDurableWithTheChangesBeforeIt) {
  FaultInjectionFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/data").ok());
  ASSERT_TRUE(fs.CreateDir("/data/wal").ok());
  ASSERT_TRUE(Create(fs, "/data/wal/a")->Sync().ok());
  ASSERT_TRUE(fs.SyncDir("/data/wal").ok());
  ASSERT_TRUE(fs.Rename("/data/wal", "/data/old").ok());
  ASSERT_TRUE(fs.CreateDir("/data/wal").ok());
  fs.DropUnsyncedData();
  EXPECT_EQ(fs.ListDir("/data").value(), (std::vector<std::string>{"old", "wal"}));
  EXPECT_EQ(fs.ListDir("/data/old").value(), std::vector<std::string>{"a"});
  EXPECT_TRUE(fs.ListDir("/data/wal").value().empty());
}

TEST(FaultInjectionFileSystem, ZeroFilledAndRandomTails) {
  for (Tail tail : {Tail::kZeroFilled, Tail::kRandomPrefix}) {
    FaultInjectionFileSystem fs;
    auto file = Create(fs, "/f");
    ASSERT_TRUE(fs.SyncDir("/").ok());
    ASSERT_TRUE(file->Append("abc").ok());
    ASSERT_TRUE(file->Sync().ok());
    ASSERT_TRUE(file->Append("defgh").ok());
    fs.DropUnsyncedData({tail, false, 3});
    const std::string after = Read(fs, "/f");
    ASSERT_GE(after.size(), 3u);
    ASSERT_LE(after.size(), 8u);
    EXPECT_EQ(after.substr(0, 3), "abc");
    for (size_t i = 3; i < after.size(); ++i) {
      EXPECT_TRUE(after[i] == '\0' || after[i] == "abcdefgh"[i]) << i;
    }
    if (tail == Tail::kZeroFilled) {
      EXPECT_EQ(after, std::string("abc\0\0\0\0\0", 8));
    }
  }
}

TEST(FaultInjectionFileSystem, AnUnsyncedAppendOverPreallocatedZerosIsATail) {
  for (Tail tail : {Tail::kDropped, Tail::kZeroFilled, Tail::kRandomPrefix}) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
      FaultInjectionFileSystem fs;
      auto file = Create(fs, "/f");
      ASSERT_TRUE(fs.SyncDir("/").ok());
      ASSERT_TRUE(file->Append("abc").ok());
      ASSERT_TRUE(file->Preallocate(16).ok());
      ASSERT_TRUE(file->Sync().ok());  // "abc" and 13 zeros are durable.
      EXPECT_EQ(file->size(), 3u);
      EXPECT_EQ(file->allocated_size(), 16u);
      ASSERT_TRUE(file->Append("defgh").ok());  // Over the zeros, not synced.
      EXPECT_EQ(Read(fs, "/f"), std::string("abcdefgh\0\0\0\0\0\0\0\0", 16));
      fs.DropUnsyncedData({tail, false, seed});
      const std::string after = Read(fs, "/f");
      ASSERT_EQ(after.size(), 16u) << "the synced size stays";
      EXPECT_EQ(after.substr(0, 3), "abc");
      for (size_t i = 3; i < after.size(); ++i) {
        EXPECT_TRUE(after[i] == '\0' || (i < 8 && after[i] == "abcdefgh"[i])) << i;
      }
      if (tail != Tail::kRandomPrefix) {
        EXPECT_EQ(after, std::string("abc\0\0\0\0\0\0\0\0\0\0\0\0\0", 16));
      }
    }
  }
}

TEST(FaultInjectionFileSystem, InjectedPreallocateErrorLandsSomeZeros) {
  FaultInjectionFileSystem fs;
  auto file = Create(fs, "/f");
  ASSERT_TRUE(file->Append("one").ok());
  fs.InjectError(FaultInjectionFileSystem::Op::kPreallocate, 1, ENOSPC, 4);
  EXPECT_EQ(file->Preallocate(100).message(), "write /f: No space left on device");
  EXPECT_EQ(file->size(), 3u);
  EXPECT_EQ(file->allocated_size(), 7u);
  ASSERT_TRUE(file->Truncate(file->size()).ok());
  EXPECT_EQ(Read(fs, "/f"), "one");
}

TEST(FaultInjectionFileSystem, InjectedWriteErrorLandsATornPrefix) {
  FaultInjectionFileSystem fs;
  auto file = Create(fs, "/f");
  fs.InjectError(FaultInjectionFileSystem::Op::kWrite, 2, ENOSPC, 2);
  ASSERT_TRUE(file->Append("one").ok());
  const Status s = file->Append("two");
  EXPECT_EQ(s.message(), "write /f: No space left on device");
  EXPECT_EQ(Read(fs, "/f"), "onetw");
  EXPECT_TRUE(file->Append("three").ok());  // Only the nth call fails.
  fs.InjectError(FaultInjectionFileSystem::Op::kSync, 1, EIO);
  EXPECT_EQ(file->Sync().message(), "fdatasync /f: Input/output error");
  EXPECT_EQ(fs.sync_count(), 0u);
}

}  // namespace
}  // namespace rlog::storage
