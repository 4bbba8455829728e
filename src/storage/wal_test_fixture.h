// Test support shared by the WAL tests: entry builders and a fixture that opens a WAL on a
// FaultInjectionFileSystem and collects what recovery hands out.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/fault_injection_file_system.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

namespace rlog::storage::wal_testing {

inline std::vector<Entry> Entries(LogId first, size_t n, size_t bytes = 10, uint64_t epoch = 0) {
  std::vector<Entry> out;
  for (LogId id = first; id < first + n; ++id) {
    out.push_back({id, static_cast<int64_t>(1000 + id),
                   std::string(bytes, static_cast<char>('a' + id % 26)), epoch});
  }
  return out;
}

// One encoded entry record, for planting records the writer would refuse.
inline std::string EntryRecord(LogId id, uint64_t epoch, std::string_view message = "planted") {
  std::string out;
  EncodeRecord({RecordType::kEntry, id, epoch, 0, message}, &out);
  return out;
}

inline uint64_t RecordBytes(size_t payload) { return kRecordHeaderBytes + payload; }
// Bytes of the header record a segment of `log_id` starts with.
inline uint64_t HeaderBytes(const std::string& log_id) {
  return EncodeSegmentHeader({1, 1, log_id}).size();
}

inline bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Closes `wal` (a crash, as far as unsynced data goes) and recovers the directory into it.
#define REOPEN(wal)                                              \
  do {                                                           \
    (wal).reset();                                               \
    auto reopened_ = Open();                                     \
    ASSERT_TRUE(reopened_.ok()) << reopened_.status().message(); \
    (wal) = std::move(reopened_.value());                        \
  } while (0)

class WalTest : public ::testing::Test {
 protected:
  using Op = FaultInjectionFileSystem::Op;
  using Tail = FaultInjectionFileSystem::PowerLoss::Tail;

  Result<std::unique_ptr<Wal>> Open() {
    recovered_.clear();
    return Wal::Open(fs_, dir_, options_, [this](std::vector<Entry>&& batch) {
      for (Entry& e : batch) recovered_.push_back(std::move(e));
    });
  }
  std::unique_ptr<Wal> OpenOk() {
    auto wal = Open();
    EXPECT_TRUE(wal.ok()) << wal.status().message();
    return wal.ok() ? std::move(wal.value()) : nullptr;
  }
  // A log with ids 1..n appended and synced.
  std::unique_ptr<Wal> NewLog(size_t n) {
    std::unique_ptr<Wal> wal = OpenOk();
    EXPECT_TRUE(wal->SetLogIdentity("log-a", 1).ok());
    if (n > 0) {
      EXPECT_TRUE(wal->Append(Entries(1, n)).ok());
    }
    EXPECT_TRUE(wal->Sync().ok());
    return wal;
  }
  std::string Segment(LogId first) const { return JoinPath(dir_, SegmentFileName(first)); }
  uint64_t Size(const std::string& path) { return fs_.FileSize(path).value(); }
  std::vector<uint64_t> RecoveredEpochs() const {
    std::vector<uint64_t> epochs;
    for (const Entry& e : recovered_) epochs.push_back(e.epoch);
    return epochs;
  }
  std::vector<LogId> RecoveredIds() const {
    std::vector<LogId> ids;
    for (const Entry& e : recovered_) ids.push_back(e.id);
    return ids;
  }
  static std::vector<LogId> Ids(LogId first, LogId last) {
    std::vector<LogId> ids;
    for (LogId id = first; id <= last; ++id) ids.push_back(id);
    return ids;
  }

  FaultInjectionFileSystem fs_;
  const std::string dir_ = "/wal";
  WalOptions options_;
  std::vector<Entry> recovered_;
};

}  // namespace rlog::storage::wal_testing
