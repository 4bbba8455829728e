#include "storage/memory_log.h"

#include <algorithm>
#include <iterator>
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

std::vector<core::EpochStart> MemoryLog::EpochStarts() const {
  std::shared_lock lock(mu_);
  return epoch_starts_;
}

namespace {

// What one kept key costs, about: its element in the deque and its bytes.
uint64_t KeyBytes(const MemoryLog::KeyedId& k) { return sizeof(MemoryLog::KeyedId) + k.key.size(); }

}  // namespace

void MemoryLog::set_key_capacity(size_t capacity) {
  std::unique_lock lock(mu_);
  key_capacity_ = capacity;
  TrimKeysLocked();
  CountMemoryLocked();
}

LogId MemoryLog::AppendNext(uint64_t epoch, int64_t timestamp_ms, std::string_view message,
                            std::string_view idempotency_key) {
  std::unique_lock lock(mu_);
  return Extend(epoch, timestamp_ms, message, idempotency_key) ? entries_.size() : 0;
}

LogId MemoryLog::Apply(std::vector<Entry> entries, LogId* refused) {
  std::unique_lock lock(mu_);
  LogId first_refused = 0;
  auto take = [&](const Entry& e) {
    if (!Extend(e.epoch, e.timestamp_ms, e.message, e.idempotency_key) && first_refused == 0) {
      first_refused = e.id;
    }
  };
  for (Entry& e : entries) {
    LogId last = entries_.size();
    if (e.id <= last) continue;  // Already held: a resend.
    if (e.id == last + 1) {
      take(e);
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
    if (first->first == last + 1) take(first->second);
    held_back_.erase(first);  // Taken, stale, or refused (then the next one waits: a gap).
  }
  if (refused != nullptr) *refused = first_refused;
  return entries_.size();
}

void MemoryLog::TruncateAfter(LogId last) {
  std::unique_lock lock(mu_);
  if (last >= entries_.size()) return;
  payloads_.DropAfter(last, [this](LogId id) { return entries_[id - 1].message; });
  entries_.resize(last);
  while (!keys_.empty() && keys_.back().id > last) {
    key_bytes_ -= KeyBytes(keys_.back());
    keys_.pop_back();
  }
  CountMemoryLocked();
  while (!epoch_starts_.empty() && epoch_starts_.back().first_id > last) epoch_starts_.pop_back();
}

void MemoryLog::DropHeldBack() {
  std::unique_lock lock(mu_);
  held_back_.clear();
}

void MemoryLog::Clear() {
  std::unique_lock lock(mu_);
  entries_.clear();
  payloads_.Clear();
  held_back_.clear();
  keys_.clear();
  key_bytes_ = 0;
  CountMemoryLocked();
  epoch_starts_.clear();
}

std::vector<Entry> MemoryLog::Read(LogId from, size_t max_entries, uint64_t max_bytes) const {
  std::shared_lock lock(mu_);
  std::vector<Entry> out;
  if (from == 0) from = 1;
  // The epoch run `from` falls in; runs are few, entries many: step along them while reading.
  auto run = std::upper_bound(epoch_starts_.begin(), epoch_starts_.end(), from,
                              [](LogId id, const auto& start) { return id < start.first_id; });
  // The same for the keys: the first one at or after `from`.
  auto key = std::lower_bound(keys_.begin(), keys_.end(), from,
                              [](const KeyedId& k, LogId id) { return k.id < id; });
  uint64_t bytes = 0;
  for (LogId id = from; id <= entries_.size() && out.size() < max_entries; ++id) {
    const Slot& e = entries_[id - 1];
    if (!out.empty() && bytes + e.message.size() > max_bytes) break;
    bytes += e.message.size();
    while (run != epoch_starts_.end() && run->first_id <= id) ++run;
    out.push_back(Entry{id, e.timestamp_ms, std::string(e.message), std::prev(run)->epoch});
    if (key != keys_.end() && key->id == id) out.back().idempotency_key = (key++)->key;
  }
  return out;
}

std::vector<MemoryLog::KeyedId> MemoryLog::Keys() const {
  std::shared_lock lock(mu_);
  return {keys_.begin(), keys_.end()};
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

bool MemoryLog::Extend(uint64_t epoch, int64_t timestamp_ms, std::string_view message,
                       std::string_view idempotency_key) {
  if (epoch < LastEpochLocked()) return false;
  const LogId id = entries_.size() + 1;
  if (epoch_starts_.empty() || epoch_starts_.back().epoch != epoch) {
    epoch_starts_.push_back({epoch, id});
  }
  entries_.push_back(Slot{payloads_.Add(id, message), timestamp_ms});
  if (!idempotency_key.empty() && key_capacity_ > 0) {
    keys_.push_back(KeyedId{id, std::string(idempotency_key)});
    key_bytes_ += KeyBytes(keys_.back());
    TrimKeysLocked();
  }
  CountMemoryLocked();
  return true;
}

void MemoryLog::TrimKeysLocked() {
  while (keys_.size() > key_capacity_) {
    key_bytes_ -= KeyBytes(keys_.front());
    keys_.pop_front();
  }
}

void MemoryLog::CountMemoryLocked() {
  memory_bytes_.store(payloads_.reserved_bytes() + entries_.size() * sizeof(Slot) + key_bytes_,
                      std::memory_order_relaxed);
}

uint64_t MemoryLog::LastEpochLocked() const {
  return epoch_starts_.empty() ? 0 : epoch_starts_.back().epoch;
}

}  // namespace rlog::storage
