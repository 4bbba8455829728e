#include "storage/payload_arena.h"

#include <cstring>

namespace rlog::storage {

std::string_view PayloadArena::Add(core::LogId id, std::string_view bytes) {
  if (bytes.empty()) return {};
  if (bytes.size() >= kDedicatedBytes) {
    Chunk& c = chunks_.emplace_back();
    c.bytes = std::make_unique_for_overwrite<char[]>(bytes.size());
    c.capacity = c.used = bytes.size();
    c.first_id = id;
    c.dedicated = true;
    reserved_ += c.capacity;
    std::memcpy(c.bytes.get(), bytes.data(), bytes.size());
    return {c.bytes.get(), bytes.size()};
  }
  if (current_ < 0 || chunks_[current_].capacity - chunks_[current_].used < bytes.size()) {
    Chunk& c = chunks_.emplace_back();
    c.bytes = std::make_unique_for_overwrite<char[]>(kChunkBytes);
    c.capacity = kChunkBytes;
    c.first_id = id;
    reserved_ += c.capacity;
    current_ = static_cast<long>(chunks_.size()) - 1;
  }
  Chunk& c = chunks_[current_];
  char* at = c.bytes.get() + c.used;
  std::memcpy(at, bytes.data(), bytes.size());
  c.used += bytes.size();
  return {at, bytes.size()};
}

void PayloadArena::DropAfter(core::LogId last,
                             const std::function<std::string_view(core::LogId)>& payload_of) {
  // First ids grow along chunks_, so every chunk that starts after `last` is at the back.
  while (!chunks_.empty() && chunks_.back().first_id > last) {
    reserved_ -= chunks_.back().capacity;
    chunks_.pop_back();
  }
  current_ = -1;
  for (long i = static_cast<long>(chunks_.size()) - 1; i >= 0; --i) {
    if (!chunks_[i].dedicated) {
      current_ = i;
      break;
    }
  }
  if (current_ < 0) return;
  // Within a shared chunk payloads lie in id order: it now ends where its newest kept one does.
  Chunk& c = chunks_[current_];
  const char* begin = c.bytes.get();
  c.used = 0;
  for (core::LogId id = last; id >= c.first_id && id > 0; --id) {
    std::string_view p = payload_of(id);
    if (p.empty() || p.size() >= kDedicatedBytes) continue;
    if (p.data() >= begin && p.data() < begin + c.capacity) {
      c.used = static_cast<size_t>(p.data() - begin) + p.size();
      break;
    }
  }
}

void PayloadArena::Clear() {
  chunks_.clear();
  current_ = -1;
  reserved_ = 0;
}

}  // namespace rlog::storage
