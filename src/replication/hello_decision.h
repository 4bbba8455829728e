// What a sentinel does with a master's Hello, given the log it holds: the fencing and divergence
// rules of proto/rlog/replication.proto ("Epochs"), without the stream around them. Pure.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/epochs.h"
#include "core/types.h"

namespace rlog::replication {

// The sentinel's side of the decision.
struct SentinelLogView {
  std::string log_id;       // Empty: no log yet.
  uint64_t epoch = 0;       // Newest master epoch accepted.
  core::LogId last_id = 0;  // Contiguous last id held.
  uint64_t last_epoch = 0;  // Epoch of the entry at last_id (0 when empty).
};

// The master's side, from its Hello.
struct HelloView {
  std::string log_id;
  uint64_t epoch = 0;
  core::LogId master_last_id = 0;
  std::span<const core::EpochStart> history;
};

enum class HelloVerdict {
  kAccept,            // Welcome it; the sentinel's log is a prefix of the master's.
  kResetThenAccept,   // The sentinel's tail is not in the master's log: drop the log, fetch again.
  kRefuseOtherLog,    // The sentinel holds entries of another log.
  kRefuseOlderEpoch,  // A master older than one this sentinel already accepted (fenced).
};

// Epochs only compare within one log: a sentinel without entries adopts any new log id (as it
// did before epochs existed), whatever that log's epoch.
HelloVerdict DecideHello(const SentinelLogView& sentinel, const HelloView& hello);

}  // namespace rlog::replication
