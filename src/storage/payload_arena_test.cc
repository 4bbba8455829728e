#include "storage/payload_arena.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace rlog::storage {
namespace {

TEST(PayloadArena, SmallPayloadsShareAChunk) {
  PayloadArena arena;
  std::string_view a = arena.Add(1, "alpha");
  std::string_view b = arena.Add(2, "beta");
  EXPECT_EQ(a, "alpha");
  EXPECT_EQ(b, "beta");
  EXPECT_EQ(a.data() + a.size(), b.data());
  EXPECT_EQ(arena.chunk_count(), 1u);
  EXPECT_EQ(arena.reserved_bytes(), PayloadArena::kChunkBytes);
}

TEST(PayloadArena, EmptyPayloadsTakeNoSpace) {
  PayloadArena arena;
  EXPECT_TRUE(arena.Add(1, "").empty());
  EXPECT_EQ(arena.chunk_count(), 0u);
}

TEST(PayloadArena, LargePayloadsGetAChunkOfTheirOwnAndTheSharedOneGoesOn) {
  PayloadArena arena;
  std::string_view a = arena.Add(1, "a");
  std::string big(PayloadArena::kDedicatedBytes, 'x');
  std::string_view b = arena.Add(2, big);
  std::string_view c = arena.Add(3, "c");
  EXPECT_EQ(b, big);
  EXPECT_EQ(arena.chunk_count(), 2u);
  EXPECT_EQ(arena.reserved_bytes(), PayloadArena::kChunkBytes + big.size());
  EXPECT_EQ(a.data() + 1, c.data());  // No chunk tail wasted for the big one.
}

TEST(PayloadArena, AFullChunkIsFollowedByANewOne) {
  PayloadArena arena;
  std::string piece(PayloadArena::kDedicatedBytes - 1, 'p');
  size_t per_chunk = PayloadArena::kChunkBytes / piece.size();
  for (size_t i = 1; i <= per_chunk + 1; ++i) arena.Add(i, piece);
  EXPECT_EQ(arena.chunk_count(), 2u);
}

// Random adds and drops, checked against a map of copies: every kept view still reads what was
// added, space freed by a drop is reused, and nothing is reserved beyond what holds kept bytes.
TEST(PayloadArena, RandomAddsAndDropsKeepEveryKeptPayloadIntact) {
  std::mt19937_64 rng(20261206);
  PayloadArena arena;
  std::map<core::LogId, std::string> want;
  std::map<core::LogId, std::string_view> views;
  core::LogId last = 0;
  auto payload_of = [&](core::LogId id) { return views.at(id); };
  for (int step = 0; step < 20000; ++step) {
    if (rng() % 50 == 0 && last > 0) {
      core::LogId keep = rng() % (last + 1);
      arena.DropAfter(keep, payload_of);
      want.erase(want.upper_bound(keep), want.end());
      views.erase(views.upper_bound(keep), views.end());
      last = keep;
      if (keep == 0) arena.Clear();
      continue;
    }
    size_t size = rng() % 8 == 0 ? PayloadArena::kDedicatedBytes + rng() % 1000 : rng() % 3000;
    std::string bytes(size, static_cast<char>('a' + rng() % 26));
    if (!bytes.empty()) bytes[0] = static_cast<char>(step);
    ++last;
    views[last] = arena.Add(last, bytes);
    want[last] = bytes;
    if (step % 1000 == 0) {
      for (const auto& [id, bytes_wanted] : want) ASSERT_EQ(views[id], bytes_wanted) << id;
    }
  }
  size_t kept = 0;
  for (const auto& [id, bytes_wanted] : want) {
    ASSERT_EQ(views[id], bytes_wanted) << id;
    kept += bytes_wanted.size();
  }
  EXPECT_GE(arena.reserved_bytes(), kept);
  EXPECT_LE(arena.reserved_bytes(),
            kept + 2 * PayloadArena::kChunkBytes * (1 + kept / PayloadArena::kChunkBytes));
}

TEST(PayloadArena, DropAfterReusesTheSpaceOfDroppedPayloads) {
  PayloadArena arena;
  std::map<core::LogId, std::string_view> views;
  views[1] = arena.Add(1, "one");
  views[2] = arena.Add(2, std::string(PayloadArena::kDedicatedBytes, 'b'));
  views[3] = arena.Add(3, "three");
  arena.DropAfter(2, [&](core::LogId id) { return views.at(id); });
  EXPECT_EQ(arena.chunk_count(), 2u);  // The dedicated chunk of id 2 stays.
  std::string_view again = arena.Add(3, "tres");
  EXPECT_EQ(again.data(), views[1].data() + 3);
  arena.DropAfter(1, [&](core::LogId id) { return views.at(id); });
  EXPECT_EQ(arena.chunk_count(), 1u);
  EXPECT_EQ(views[1], "one");
}

}  // namespace
}  // namespace rlog::storage
