// Where MemoryLog keeps message bytes: appended into chunks of about a megabyte instead of one
// heap block per message, so a long log costs its payload plus a few bytes per chunk (a
// std::string per entry cost 32 bytes of string and the allocator's rounding on top: resident
// memory per 100-byte entry fell from 174 to 128 bytes, docs/PERFORMANCE.md), and growing the
// log allocates once a chunk, not once an entry.
//
// Payloads are added in log order, each under its id. A payload of at least kDedicatedBytes gets
// a chunk of its own, so large messages waste no chunk tails; smaller ones share the current
// chunk. A view returned by Add stays valid until DropAfter or Clear drops that id.
// Not thread-safe: MemoryLog's lock guards it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "core/types.h"

namespace rlog::storage {

class PayloadArena {
 public:
  static constexpr size_t kChunkBytes = 1 << 20;
  static constexpr size_t kDedicatedBytes = kChunkBytes / 16;

  // Copies `bytes` in as the payload of `id`. Precondition: id is greater than every id added
  // and not dropped before.
  std::string_view Add(core::LogId id, std::string_view bytes);

  // Drops the payloads of every id after `last`. `payload_of(id)` must return the view Add
  // returned for a kept id (the arena looks back from `last` for the newest shared-chunk one).
  void DropAfter(core::LogId last, const std::function<std::string_view(core::LogId)>& payload_of);

  void Clear();

  // Bytes held in chunks (capacity, not just what is used): for tests and memory accounting.
  size_t reserved_bytes() const { return reserved_; }
  size_t chunk_count() const { return chunks_.size(); }

 private:
  struct Chunk {
    std::unique_ptr<char[]> bytes;
    size_t capacity = 0;
    size_t used = 0;
    core::LogId first_id = 0;  // The first payload placed in it.
    bool dedicated = false;    // Holds exactly one large payload.
  };

  // Chunks in the order they were made, which is the order of their first ids.
  std::vector<Chunk> chunks_;
  // Index in chunks_ of the chunk small payloads go to; -1 if none.
  long current_ = -1;
  size_t reserved_ = 0;
};

}  // namespace rlog::storage
