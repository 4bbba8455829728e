// The in-memory log a node exposes: a contiguous prefix 1..last_id(), plus (on sentinels)
// entries that arrived ahead of a gap and are held back until the gap is filled.
//
// Invariants: ids exposed by Read are exactly 1..last_id() with no gaps (DESIGN invariant 2);
// Apply ignores ids it already holds (invariant 3). Thread-safe: one writer at a time (the
// master's append path or the sentinel's stream), any number of concurrent readers.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <shared_mutex>
#include <vector>

#include "core/replicator.h"
#include "storage/entry.h"

namespace rlog::storage {

class MemoryLog : public core::LogView {
 public:
  // At most this many held-back entries are kept; beyond it, the farthest are dropped (the
  // master resends them once the sentinel's acks show it lacks them).
  static constexpr size_t kMaxHeldBack = 100000;

  LogId last_id() const;

  // Master: appends one entry with the next id and returns it.
  LogId AppendNext(int64_t timestamp_ms, std::string message);

  // Sentinel: applies replicated entries in any order. Ids at or below last_id() are ignored;
  // ids beyond last_id() + 1 wait for the gap to close. Returns the new last_id().
  LogId Apply(std::vector<Entry> entries);

  // Up to max_entries entries from `from` (at least one if it exists), stopping before
  // max_bytes of messages would be exceeded.
  std::vector<Entry> Read(LogId from, size_t max_entries, uint64_t max_bytes) const;

  // core::LogView
  LogId BatchEnd(LogId first, LogId last, uint64_t max_bytes) const override;

  size_t held_back() const;

 private:
  mutable std::shared_mutex mu_;
  std::deque<Entry> entries_;           // entries_[i].id == i + 1. Guarded by mu_.
  std::map<LogId, Entry> held_back_;    // Ids > last_id() + 1. Guarded by mu_.
};

}  // namespace rlog::storage
