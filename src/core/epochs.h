// Epoch history arithmetic: which part of a sentinel's log the master's log still contains.
//
// Every master that takes over a log bumps the epoch and stamps it on the entries it appends
// (proto/rlog/replication.proto). Its history is the list of (epoch, first id appended in it),
// ascending in both. The entries of epochs <= E in the master's log are exactly the ids below the
// first id of the first later epoch. A sentinel whose last entry has epoch E and id n holds the
// master's log up to n only if n is within that range; past it, its tail was never part of the
// master's log (the unacknowledged tail of a master that crashed) and must be dropped. This is
// the check of Kafka's leader epochs (OffsetsForLeaderEpoch), reduced to a sentinel that drops
// its whole log and fetches it again.
//
// Pure: no I/O, no clocks. Preconditions: `history` ascending by epoch and by first_id.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "core/types.h"

namespace rlog::core {

struct EpochStart {
  uint64_t epoch = 0;
  LogId first_id = 0;  // First id appended in `epoch` (the next step's first_id - 1 is its last).

  bool operator==(const EpochStart&) const = default;
};

// The last id of the master's log that belongs to an epoch <= `epoch`: the first_id of the first
// step with a newer epoch, minus 1; `master_last_id` when there is none.
LogId EpochEnd(std::span<const EpochStart> history, uint64_t epoch, LogId master_last_id);

// True when a sentinel whose last entry is (sentinel_last_epoch, sentinel_last_id) holds entries
// the master's log does not have at those ids. An empty sentinel (id 0) never diverges. With an
// empty history every entry is taken to be of the current epoch: the sentinel diverges only when
// it is ahead of the master.
bool Diverges(std::span<const EpochStart> history, LogId master_last_id,
              uint64_t sentinel_last_epoch, LogId sentinel_last_id);

// A recovering master's plan (MasterNode::RecoverFromSentinels): which sentinel to copy its log
// from, and how much of its own log to keep.
//
// The source is the most up-to-date position reported, by the epoch of its last entry first and
// its length second, as Raft and Kafka choose a leader. Each position counts only as far as it
// extends the master's own log (EpochEnd of `history`: past that, a tail no majority
// acknowledged). A longer log of an older epoch is never chosen over a newer epoch's: its tail
// is what a crashed master never had acknowledged, while a write acknowledged by a majority in
// the newer epoch may exist only on the newer log.
//
// A source whose last entry is of an epoch newer than the master's own last entry was written by
// a master that took over after this one: it holds the master's entries only up to where the
// master's last epoch ends in the source's history (`own_epoch_end`, from Position). Anything of
// the master's own log after that was replaced by the newer master (so never acknowledged by a
// majority) and must go, as Kafka's followers truncate to the leader's epoch end; keeping it
// would give one id two messages.
struct RecoveryPosition {
  uint64_t last_epoch = 0;  // Epoch of the entry at last_id (0: empty).
  LogId last_id = 0;
  // The last id of this log in epochs <= the epoch of the master's own last entry.
  LogId own_epoch_end = 0;
};
struct RecoveryPlan {
  std::optional<size_t> source;  // Into the positions given; none: nothing to copy.
  LogId keep = 0;                // The master's own entries 1..keep stay; the rest must go.
  LogId copy_to = 0;             // Copy ids keep + 1 .. copy_to from the source.
};
RecoveryPlan PlanRecovery(std::span<const EpochStart> history, LogId own_last,
                          uint64_t own_last_epoch, std::span<const RecoveryPosition> positions);

}  // namespace rlog::core
