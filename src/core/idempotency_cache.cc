#include "core/idempotency_cache.h"

namespace rlog::core {

std::optional<LogId> IdempotencyCache::Find(const std::string& key) const {
  auto it = ids_.find(key);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

void IdempotencyCache::Insert(const std::string& key, LogId id) {
  if (capacity_ == 0) return;
  if (!ids_.emplace(key, id).second) return;
  order_.push_back(key);
  while (order_.size() > capacity_) {
    ids_.erase(order_.front());
    order_.pop_front();
  }
}

}  // namespace rlog::core
