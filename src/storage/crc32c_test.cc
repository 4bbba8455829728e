#include "storage/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace rlog::storage::crc32c {
namespace {

// Known answers: the CRC-32C check value and the test vectors of RFC 3720, appendix B.4.
TEST(Crc32c, MatchesKnownVectors) {
  EXPECT_EQ(Value("123456789"), 0xE3069283u);
  EXPECT_EQ(Value(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Value(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending(32, '\0');
  std::string descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(Value(ascending), 0x46DD794Eu);
  EXPECT_EQ(Value(descending), 0x113FDB5Cu);
  EXPECT_EQ(Value(""), 0u);
}

TEST(Crc32c, ExtendEqualsWholeValue) {
  const std::string data = "hello, write-ahead log; hello again, write-ahead log";
  for (size_t split = 0; split <= data.size(); ++split) {
    const uint32_t first = Extend(0, data.data(), split);
    EXPECT_EQ(Extend(first, data.data() + split, data.size() - split), Value(data)) << split;
  }
}

TEST(Crc32c, PortableAndHardwareAgree) {
  std::mt19937_64 rng(7);
  std::string data(5000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  EXPECT_EQ(ExtendPortable(0, "123456789", 9), 0xE3069283u);
  if (!HardwareAvailable()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  EXPECT_EQ(ExtendHardware(0, "123456789", 9), 0xE3069283u);
  for (int round = 0; round < 2000; ++round) {  // Every alignment and tail length.
    const size_t start = rng() % 64;
    const size_t n = rng() % (data.size() - start);
    const auto seed = static_cast<uint32_t>(rng());
    ASSERT_EQ(ExtendPortable(seed, data.data() + start, n),
              ExtendHardware(seed, data.data() + start, n))
        << start << " " << n;
  }
}

}  // namespace
}  // namespace rlog::storage::crc32c
