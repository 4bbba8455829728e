#include "storage/memory_log.h"

#include <mutex>

namespace rlog::storage {

LogId MemoryLog::last_id() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

LogId MemoryLog::AppendNext(int64_t timestamp_ms, std::string message) {
  std::unique_lock lock(mu_);
  LogId id = entries_.size() + 1;
  entries_.push_back(Entry{id, timestamp_ms, std::move(message)});
  return id;
}

LogId MemoryLog::Apply(std::vector<Entry> entries) {
  std::unique_lock lock(mu_);
  for (Entry& e : entries) {
    LogId last = entries_.size();
    if (e.id <= last) continue;  // Already held: a resend.
    if (e.id == last + 1) {
      entries_.push_back(std::move(e));
    } else {
      held_back_.emplace(e.id, std::move(e));
      if (held_back_.size() > kMaxHeldBack) held_back_.erase(std::prev(held_back_.end()));
    }
  }
  // Close gaps with what was held back.
  while (!held_back_.empty()) {
    auto first = held_back_.begin();
    LogId last = entries_.size();
    if (first->first <= last) {
      held_back_.erase(first);
    } else if (first->first == last + 1) {
      entries_.push_back(std::move(first->second));
      held_back_.erase(first);
    } else {
      break;
    }
  }
  return entries_.size();
}

std::vector<Entry> MemoryLog::Read(LogId from, size_t max_entries, uint64_t max_bytes) const {
  std::shared_lock lock(mu_);
  std::vector<Entry> out;
  if (from == 0) from = 1;
  uint64_t bytes = 0;
  for (LogId id = from; id <= entries_.size() && out.size() < max_entries; ++id) {
    const Entry& e = entries_[id - 1];
    if (!out.empty() && bytes + e.message.size() > max_bytes) break;
    bytes += e.message.size();
    out.push_back(e);
  }
  return out;
}

LogId MemoryLog::BatchEnd(LogId first, LogId last, uint64_t max_bytes) const {
  std::shared_lock lock(mu_);
  last = std::min<LogId>(last, entries_.size());
  if (first > last) return first;
  uint64_t bytes = entries_[first - 1].message.size();
  LogId end = first;
  while (end < last && bytes + entries_[end].message.size() <= max_bytes) {
    bytes += entries_[end].message.size();
    ++end;
  }
  return end;
}

size_t MemoryLog::held_back() const {
  std::shared_lock lock(mu_);
  return held_back_.size();
}

}  // namespace rlog::storage
