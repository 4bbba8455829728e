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

void IdempotencyCache::Restore(std::span<const std::pair<std::string_view, LogId>> keys) {
  ids_.clear();
  order_.clear();
  std::unordered_map<std::string_view, size_t> last;
  for (size_t i = 0; i < keys.size(); ++i) last[keys[i].first] = i;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (last[keys[i].first] == i) Insert(std::string(keys[i].first), keys[i].second);
  }
}

}  // namespace rlog::core
