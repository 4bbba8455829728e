// Epoch history arithmetic: which part of a node's log another node's log also holds.
//
// Every master that takes over a log bumps the epoch and stamps it on the entries it appends
// (proto/rlog/replication.proto). A log's history is the list of (epoch, first id appended in it),
// ascending in both, as MemoryLog::EpochStarts gives it. Within one epoch a single master appends,
// at consecutive ids right after the log it took over with, and a node holding an entry of that
// epoch holds that master's log up to it. So two logs agree at an id iff their entries there have
// the same epoch, and then they agree at every id below it too: the histories alone locate the
// longest common prefix (Kafka's leader epochs, OffsetsForLeaderEpoch, KIP-279).
//
// Pure: no I/O, no clocks. Preconditions: every history ascending by epoch and by first_id, its
// first step at id 1.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

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

// The longest prefix 1..n of a node's own log that the master's log holds too: a node syncing
// from the master keeps 1..n and drops the rest, which the master's log does not have.
//
// Computed as a Kafka follower does (KIP-279), without the round trips: for the epoch e of the
// node's last entry, take the master's newest epoch e* <= e and where its epochs <= e* end. If e*
// is e, both logs hold epoch e's master's log up to the smaller of the two ends. If not, the
// node's entries of epochs in (e*, e] are of masters the master's log never heard of: cut the
// node's log to its end of epochs <= e* (and to the master's end of them) and ask again, with an
// older epoch each round. Comparing only the last epochs (is the node's last id within the end of
// its last epoch in the master's history?) misses a node whose last epoch the master's log lacks
// while holding the same ids in an older epoch. O(size of the histories) per round, one round
// per epoch of the node's at most.
//
// Steps past master_last or own_last are ignored: a history may describe entries that are not
// durable yet. A history that is empty while its log is not (a master from before epochs sent none)
// says nothing against the other log: the logs are taken to agree as far as both go.
LogId CommonPrefix(std::span<const EpochStart> master_history, LogId master_last,
                   std::span<const EpochStart> own_history, LogId own_last);

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
// a master that took over after this one: it holds the master's own log only as far as their
// common prefix (CommonPrefix of the two histories). Anything of the master's own log after that
// was replaced by the newer master (so never acknowledged by a majority) and must go, as Kafka's
// followers truncate; keeping it would give one id two messages. A sentinel that sends no history
// (an older version) gives `own_epoch_end` instead, which is the same except when the master's
// last epoch is missing from the source's history.
struct RecoveryPosition {
  uint64_t last_epoch = 0;  // Epoch of the entry at last_id (0: empty).
  LogId last_id = 0;
  // The last id of this log in epochs <= the epoch of the master's own last entry.
  LogId own_epoch_end = 0;
  // The epoch history of 1..last_id (PositionReply.epochs); empty when not sent.
  std::vector<EpochStart> history = {};
};
struct RecoveryPlan {
  std::optional<size_t> source;  // Into the positions given; none: nothing to copy.
  LogId keep = 0;                // The master's own entries 1..keep stay; the rest must go.
  LogId copy_to = 0;             // Copy ids keep + 1 .. copy_to from the source.
  // Where the log taken over ends. A commit id some answer reports past it names committed ids
  // no answer holds (MasterNode::RecoverFromSentinels waits for them).
  LogId end() const { return source ? std::max(keep, copy_to) : keep; }
};
RecoveryPlan PlanRecovery(std::span<const EpochStart> history, LogId own_last,
                          uint64_t own_last_epoch, std::span<const RecoveryPosition> positions);

// How many of `sentinels` sentinels a recovering master must hear from before PlanRecovery may
// run. A write acknowledged by a majority M of the 1 + sentinels nodes is on at least M - 1
// sentinels (M if it is not on the master's own log): the answers must leave fewer sentinels
// unheard than that, S - (M - 1) + 1 of them.
//
// One fewer would do when the master's own log counts (it holds everything it ever counted itself
// for: an existing log written with fsync: always, and no answer of a newer epoch), but only if
// "no answer of a newer epoch" can be trusted: another master instance (with a directory of its
// own) may have taken over meanwhile, and its first take-over, from an empty directory, had
// S - M + 2 sentinels promise its epoch. The answers must meet that set to see it, so they are at
// least M - 1 (S - M + 1 and M - 1 are equal for odd cluster sizes; for even ones M - 1 is one
// more; RecoveryModel.* loses acknowledged writes in clusters of 2 and 4 nodes without it). It
// costs no availability: a master needs M - 1 sentinels to take writes anyway.
// For 3 nodes: both sentinels, or one with a log that counts.
size_t RecoveryAnswersNeeded(size_t sentinels, bool own_log_counts);

}  // namespace rlog::core
