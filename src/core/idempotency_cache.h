// Remembers which id each idempotency key was given, for the last `capacity` keys.
//
// A client that retries an insert with the same key gets the id of the first attempt and nothing
// is appended again. Keys are forgotten oldest-first once more than `capacity` are held, so the
// guarantee holds for retries that come within the last `capacity` keyed inserts.
// Not thread-safe: the owner serialises access.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/types.h"

namespace rlog::core {

class IdempotencyCache {
 public:
  explicit IdempotencyCache(size_t capacity) : capacity_(capacity) {}

  std::optional<LogId> Find(const std::string& key) const;
  // Records key -> id; a key already present keeps its first id.
  void Insert(const std::string& key, LogId id);
  // Starts over from the keys a log holds, in id order (a master taking the log over). A key
  // that occurs twice was used again after the master then forgot it (more keyed inserts than
  // it remembered came between): the last use is the one a retry means, so it counts.
  void Restore(std::span<const std::pair<std::string_view, LogId>> keys);
  size_t size() const { return ids_.size(); }

 private:
  size_t capacity_;
  std::unordered_map<std::string, LogId> ids_;
  std::deque<std::string> order_;  // Insertion order, oldest first.
};

}  // namespace rlog::core
