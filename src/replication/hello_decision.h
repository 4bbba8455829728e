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
  // Epoch history of 1..last_id (NodeLog::EpochStarts).
  std::span<const core::EpochStart> history;
};

// The master's side, from its Hello.
struct HelloView {
  std::string log_id;
  uint64_t epoch = 0;
  core::LogId master_last_id = 0;
  std::span<const core::EpochStart> history;
};

enum class HelloVerdict {
  kAccept,              // Welcome it; the sentinel's log is a prefix of the master's.
  kTruncateThenAccept,  // Entries after `keep` are not in the master's log: drop them, then
                        // welcome it (and fetch the master's entries from keep + 1).
  kRefuseOtherLog,      // The sentinel holds entries of another log.
  kRefuseOlderEpoch,    // A master older than one this sentinel already accepted (fenced).
};

struct HelloDecision {
  HelloVerdict verdict = HelloVerdict::kAccept;
  // The sentinel's entries 1..keep are in the master's log (core::CommonPrefix): last_id with
  // kAccept, less with kTruncateThenAccept (maybe 0), 0 with a refusal.
  core::LogId keep = 0;

  bool operator==(const HelloDecision&) const = default;
};

// Fencing comes first: a master older than the newest accepted must not make the sentinel drop
// entries. Epochs only compare within one log: a sentinel without entries adopts any new log id
// (as it did before epochs existed), whatever that log's epoch.
HelloDecision DecideHello(const SentinelLogView& sentinel, const HelloView& hello);

}  // namespace rlog::replication
