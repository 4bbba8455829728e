// Test support: a naive model of what a WAL must give back after a crash, to check recoveries
// against (STYLE.md 7: compare with a naive reference).
//
// The model remembers the content last written for every id and the highest id acknowledged as
// durable. After a power loss a correct WAL recovers ids 1..n with n >= the acknowledged id, each
// with exactly the content written for it; after a process crash (no power loss) it also keeps
// everything whose append succeeded. Thread-safe (acks arrive on the group-commit thread).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "storage/entry.h"

namespace rlog::storage {

class DurabilityChecker {
 public:
  // These entries may be recovered (their append was issued; it may or may not have landed).
  void Written(std::span<const Entry> entries);
  // Their append succeeded: after a process crash (page cache intact) they must be there.
  void Appended(LogId last);
  // The entries after `keep` are being dropped (Wal::TruncateAfter): until that returns, a crash
  // may leave any prefix that holds 1..keep (and, of those, the acknowledged ones must be there).
  void TruncateStarted(LogId keep);
  // The truncation returned: nothing written after `keep` before it may come back.
  void TruncateDone(LogId keep);
  // Every id <= n was acknowledged as durable.
  void Acknowledged(LogId n);
  bool WaitAcknowledged(LogId n, std::chrono::milliseconds timeout);
  LogId acknowledged() const;

  enum class Crash { kPowerLoss, kProcessOnly };
  // Problems with `recovered` (empty when it is correct): lost acknowledged ids, gaps, entries
  // whose content (message, timestamp, epoch) was never written for their id.
  std::vector<std::string> Check(const std::vector<Entry>& recovered, Crash crash) const;
  // Adopts `recovered` as the new truth (after a recovery, all of it is durable).
  void Recovered(const std::vector<Entry>& recovered);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<LogId, Entry> content_;  // Last content written per id.
  LogId appended_ = 0;
  LogId acknowledged_ = 0;
};

}  // namespace rlog::storage
