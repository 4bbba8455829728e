// The in-memory log a node exposes: a contiguous prefix 1..last_id(), plus (on sentinels)
// entries that arrived ahead of a gap and are held back until the gap is filled.
//
// Invariants: ids exposed by Read are exactly 1..last_id() with no gaps (DESIGN invariant 2);
// Apply ignores ids it already holds (invariant 3); epochs never decrease from one id to the next
// (no master writes such a history), so the epoch history is a short ascending list of where each
// epoch's run starts, kept as entries are added; an entry's epoch is read from it rather than
// stored with the entry. Message bytes live in a PayloadArena (large chunks, not one heap block
// per entry): an entry costs its message plus 24 bytes here. Thread-safe: one writer at a time
// (the master's append path or the sentinel's stream), any number of concurrent readers.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <map>
#include <shared_mutex>
#include <utility>
#include <vector>

#include "core/epochs.h"
#include "core/replicator.h"
#include "storage/entry.h"
#include "storage/payload_arena.h"

namespace rlog::storage {

class MemoryLog : public core::LogView {
 public:
  // At most this many held-back entries are kept; beyond it, the farthest are dropped (the
  // master resends them once the sentinel's acks show it lacks them).
  static constexpr size_t kMaxHeldBack = 100000;

  LogId last_id() const;
  // Epoch of entry last_id() (0 if empty).
  uint64_t LastEpoch() const;
  // The epoch history of 1..last_id() (core/epochs.h): (epoch, first id of that epoch's run),
  // ascending in both; empty if empty. Entries first..next start - 1 (or last_id()) all have
  // that epoch.
  std::vector<core::EpochStart> EpochStarts() const;

  // How many idempotency keys are kept: those of the newest `capacity` keyed entries (older
  // entries are then read without theirs). The master remembers as many (insert.idempotency_keys),
  // so a master taking over finds every key it would still have known. Trims at once.
  static constexpr size_t kDefaultKeyCapacity = 100000;
  void set_key_capacity(size_t capacity);

  // Master: appends one entry with the next id and returns it. An epoch older than LastEpoch()
  // is refused: nothing is appended and 0 returned.
  LogId AppendNext(uint64_t epoch, int64_t timestamp_ms, std::string_view message,
                   std::string_view idempotency_key = {});

  // Sentinel: applies replicated entries in any order. Ids at or below last_id() are ignored;
  // ids beyond last_id() + 1 wait for the gap to close. An entry that would follow one of a newer
  // epoch is refused (dropped; its id stays missing) and, if `refused` is given, the first such
  // id is stored there (0 if none). Returns the new last_id().
  LogId Apply(std::vector<Entry> entries, LogId* refused = nullptr);

  // Drops the entries after `last` (nothing if last >= last_id()); held-back ones stay. For
  // entries that turned out never to be durable (NodeLog).
  void TruncateAfter(LogId last);
  // Drops the held-back entries (ids > last_id() + 1).
  void DropHeldBack();
  // Drops every entry, held-back ones included.
  void Clear();

  // Up to max_entries entries from `from` (at least one if it exists), stopping before
  // max_bytes of messages would be exceeded.
  std::vector<Entry> Read(LogId from, size_t max_entries, uint64_t max_bytes) const;

  struct KeyedId {
    LogId id;
    std::string key;
  };
  // The idempotency keys kept (see set_key_capacity), in id order.
  std::vector<KeyedId> Keys() const;

  // core::LogView
  LogId BatchEnd(LogId first, LogId last, uint64_t max_bytes) const override;

  size_t held_back() const;

  // Memory the log's entries take: their slots and the payload chunks (reserved, not only used).
  // Held-back entries are not counted. Lock-free.
  uint64_t memory_bytes() const { return memory_bytes_.load(std::memory_order_relaxed); }

 private:
  // One entry as held: id and epoch are implied by its place (see epoch_starts_).
  struct Slot {
    std::string_view message;  // In payloads_.
    int64_t timestamp_ms;
  };

  // Appends id last_id() + 1 unless its epoch is older than the last entry's. Requires a unique
  // lock on mu_.
  bool Extend(uint64_t epoch, int64_t timestamp_ms, std::string_view message,
              std::string_view idempotency_key);
  // Drops the oldest keys beyond key_capacity_. Requires a unique lock on mu_.
  void TrimKeysLocked();
  uint64_t LastEpochLocked() const;
  // Recomputes memory_bytes_ after entries_ or payloads_ changed. Requires a unique lock on mu_.
  void CountMemoryLocked();

  mutable std::shared_mutex mu_;
  std::deque<Slot> entries_;          // entries_[i] is id i + 1. Guarded by mu_.
  PayloadArena payloads_;             // The bytes entries_ point to. Guarded by mu_.
  std::map<LogId, Entry> held_back_;  // Ids > last_id() + 1. Guarded by mu_.
  // One element per run of equal epochs in entries_, ascending. Guarded by mu_.
  std::vector<core::EpochStart> epoch_starts_;
  // The keys of keyed entries, ascending by id: few entries carry one, so they are kept beside
  // the slots rather than in them. Guarded by mu_.
  std::deque<KeyedId> keys_;
  size_t key_capacity_ = kDefaultKeyCapacity;  // Guarded by mu_.
  uint64_t key_bytes_ = 0;                 // Memory keys_ takes (approximately). Guarded by mu_.
  std::atomic<uint64_t> memory_bytes_{0};  // Written under a unique lock on mu_.
};

}  // namespace rlog::storage
