#include "storage/memory_log.h"

#include <mutex>

namespace rlog::storage {

LogId MemoryLog::last_id() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

uint64_t MemoryLog::LastEpoch() const {
  std::shared_lock lock(mu_);
  return LastEpochLocked();
}

std::vector<std::pair<uint64_t, LogId>> MemoryLog::EpochStarts() const {
  std::shared_lock lock(mu_);
  return epoch_starts_;
}

LogId MemoryLog::AppendNext(uint64_t epoch, int64_t timestamp_ms, std::string message) {
  std::unique_lock lock(mu_);
  const LogId id = entries_.size() + 1;
  return Extend(Entry{id, timestamp_ms, std::move(message), epoch}) ? id : 0;
}

LogId MemoryLog::Apply(std::vector<Entry> entries, LogId* refused) {
  std::unique_lock lock(mu_);
  LogId first_refused = 0;
  auto take = [&](Entry&& e) {
    const LogId id = e.id;
    if (!Extend(std::move(e)) && first_refused == 0) first_refused = id;
  };
  for (Entry& e : entries) {
    LogId last = entries_.size();
    if (e.id <= last) continue;  // Already held: a resend.
    if (e.id == last + 1) {
      take(std::move(e));
    } else {
      held_back_.emplace(e.id, std::move(e));
      if (held_back_.size() > kMaxHeldBack) held_back_.erase(std::prev(held_back_.end()));
    }
  }
  // Close gaps with what was held back.
  while (!held_back_.empty()) {
    auto first = held_back_.begin();
    LogId last = entries_.size();
    if (first->first > last + 1) break;
    if (first->first == last + 1) take(std::move(first->second));
    held_back_.erase(first);  // Taken, stale, or refused (then the next one waits: a gap).
  }
  if (refused != nullptr) *refused = first_refused;
  return entries_.size();
}

void MemoryLog::TruncateAfter(LogId last) {
  std::unique_lock lock(mu_);
  if (last >= entries_.size()) return;
  entries_.resize(last);
  while (!epoch_starts_.empty() && epoch_starts_.back().second > last) epoch_starts_.pop_back();
}

void MemoryLog::Clear() {
  std::unique_lock lock(mu_);
  entries_.clear();
  held_back_.clear();
  epoch_starts_.clear();
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

bool MemoryLog::Extend(Entry&& e) {
  if (e.epoch < LastEpochLocked()) return false;
  if (epoch_starts_.empty() || epoch_starts_.back().first != e.epoch) {
    epoch_starts_.emplace_back(e.epoch, e.id);
  }
  entries_.push_back(std::move(e));
  return true;
}

uint64_t MemoryLog::LastEpochLocked() const {
  return epoch_starts_.empty() ? 0 : epoch_starts_.back().first;
}

}  // namespace rlog::storage
