#include "storage/wal_format.h"

#include <gtest/gtest.h>

#include <random>

#include "storage/crc32c.h"

namespace rlog::storage {
namespace {

std::string Encode(const Record& r) {
  std::string out;
  EncodeRecord(r, &out);
  return out;
}

TEST(WalFormat, RecordRoundTripsWithDocumentedLayout) {
  const std::string bytes = Encode({RecordType::kEntry, 7, 3, -5, "hello"});
  ASSERT_EQ(bytes.size(), kRecordHeaderBytes + 5);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 25 + 5);  // length, little-endian
  EXPECT_EQ(bytes[8], 2);                             // type kEntry
  EXPECT_EQ(bytes[9], 7);                             // id, little-endian
  Record r;
  size_t n = 0;
  ASSERT_EQ(DecodeRecord(bytes, &r, &n), DecodeStatus::kOk);
  EXPECT_EQ(n, bytes.size());
  EXPECT_EQ(r.type, RecordType::kEntry);
  EXPECT_EQ(r.id, 7u);
  EXPECT_EQ(r.epoch, 3u);
  EXPECT_EQ(r.timestamp_ms, -5);
  EXPECT_EQ(r.payload, "hello");
}

TEST(WalFormat, KeyedEntryCarriesItsKeyBeforeTheMessage) {
  Record keyed{RecordType::kKeyedEntry, 7, 3, 11, "hello"};
  keyed.key = "order-42";
  const std::string bytes = Encode(keyed);
  ASSERT_EQ(bytes.size(), kRecordHeaderBytes + 2 + 8 + 5);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 25 + 2 + 8 + 5);  // length counts key and message
  EXPECT_EQ(bytes[8], 4);                                     // type kKeyedEntry
  EXPECT_EQ(bytes[kRecordHeaderBytes], 8);                    // key length, little-endian u16
  EXPECT_EQ(bytes[kRecordHeaderBytes + 1], 0);
  EXPECT_EQ(bytes.substr(kRecordHeaderBytes + 2, 8), "order-42");
  EXPECT_EQ(bytes.substr(kRecordHeaderBytes + 10), "hello");
  Record r;
  size_t n = 0;
  ASSERT_EQ(DecodeRecord(bytes, &r, &n), DecodeStatus::kOk);
  EXPECT_EQ(n, bytes.size());
  EXPECT_EQ(r.type, RecordType::kKeyedEntry);
  EXPECT_TRUE(IsEntry(r.type));
  EXPECT_EQ(r.id, 7u);
  EXPECT_EQ(r.key, "order-42");
  EXPECT_EQ(r.payload, "hello");
  // A plain entry decodes with no key, also into a Record that held one.
  const std::string plain = Encode({RecordType::kEntry, 8, 3, 11, "plain"});
  ASSERT_EQ(DecodeRecord(plain, &r, &n), DecodeStatus::kOk);
  EXPECT_EQ(r.key, "");
  EXPECT_EQ(r.payload, "plain");
}

TEST(WalFormat, KeyedEntryWhoseKeyRunsPastItIsBad) {
  // A record with a valid checksum whose key length points past its payload: written by hand,
  // as no encoder makes one.
  for (const std::string& body : {std::string("\x09\x00"
                                              "12345678",
                                              10),
                                  std::string("\x01", 1)}) {
    std::string bytes;
    EncodeRecord({RecordType::kEntry, 1, 1, 0, body}, &bytes);
    bytes[8] = static_cast<char>(RecordType::kKeyedEntry);
    const uint32_t crc =
        crc32c::Extend(0, bytes.data() + kRecordPrefixBytes, bytes.size() - kRecordPrefixBytes);
    for (int i = 0; i < 4; ++i) bytes[4 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
    Record r;
    size_t n = 0;
    EXPECT_EQ(DecodeRecord(bytes, &r, &n), DecodeStatus::kBadKey) << body.size();
  }
}

TEST(WalFormat, EveryPrefixNeedsMoreAndEveryFlippedBitIsCaught) {
  const std::string bytes = Encode({RecordType::kEntry, 1, 1, 1000, "payload bytes"});
  Record r;
  size_t n = 0;
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_EQ(DecodeRecord(std::string_view(bytes).substr(0, len), &r, &n),
              DecodeStatus::kNeedMore);
  }
  for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    std::string bad = bytes;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    const DecodeStatus status = DecodeRecord(bad, &r, &n);
    EXPECT_NE(status, DecodeStatus::kOk) << "bit " << bit;
  }
}

TEST(WalFormat, ZerosAreABadLength) {
  Record r;
  size_t n = 0;
  EXPECT_EQ(DecodeRecord(std::string(64, '\0'), &r, &n), DecodeStatus::kBadLength);
}

TEST(WalFormat, ValidRecordFollowsFindsARecordAfterGarbage) {
  std::string tail = "garbage that is not a record";
  EXPECT_FALSE(ValidRecordFollows(tail));
  EXPECT_FALSE(ValidRecordFollows(std::string(4096, '\0')));
  tail += Encode({RecordType::kEntry, 9, 1, 0, "x"});
  EXPECT_TRUE(ValidRecordFollows(tail));
  // A torn record alone never counts as valid.
  const std::string record = Encode({RecordType::kEntry, 9, 1, 0, "some message"});
  EXPECT_FALSE(ValidRecordFollows(record.substr(0, record.size() - 1)));
}

TEST(WalFormat, CountRecordStarts) {
  const std::string record = Encode({RecordType::kEntry, 9, 1, 0, "some message"});
  EXPECT_EQ(CountRecordStarts(record.substr(0, 10)), 1u);
  EXPECT_EQ(CountRecordStarts(record + record.substr(0, 5)), 2u);
  EXPECT_EQ(CountRecordStarts(std::string(100, '\0')), 0u);
  EXPECT_EQ(CountRecordStarts("ab"), 1u);
}

TEST(WalFormat, SegmentHeaderRoundTrips) {
  const std::string bytes = EncodeSegmentHeader({42, 5, "log-0123"});
  EXPECT_EQ(bytes.substr(kRecordHeaderBytes, kSegmentMagic.size()), kSegmentMagic);
  Record r;
  size_t n = 0;
  ASSERT_EQ(DecodeRecord(bytes, &r, &n), DecodeStatus::kOk);
  auto header = ParseSegmentHeader(r);
  ASSERT_TRUE(header.ok()) << header.status().message();
  EXPECT_EQ(header->first_id, 42u);
  EXPECT_EQ(header->epoch, 5u);
  EXPECT_EQ(header->log_id, "log-0123");
  EXPECT_EQ(header->version, kFormatVersion);
  EXPECT_FALSE(ParseSegmentHeader({RecordType::kEntry, 1, 1, 0, "x"}).ok());
}

TEST(WalFormat, SegmentHeaderVersionsOneAndTwoAreReadAndOthersRefused) {
  EXPECT_EQ(kFormatVersion, 2u);
  for (uint32_t version : {0u, 1u, 2u, 3u}) {
    const std::string bytes = EncodeSegmentHeader({1, 1, "log", version});
    EXPECT_EQ(static_cast<uint8_t>(bytes[kRecordHeaderBytes + kSegmentMagic.size()]), version);
    Record r;
    size_t n = 0;
    ASSERT_EQ(DecodeRecord(bytes, &r, &n), DecodeStatus::kOk);
    auto header = ParseSegmentHeader(r);
    if (version == 1 || version == 2) {
      ASSERT_TRUE(header.ok()) << header.status().message();
      EXPECT_EQ(header->version, version);
    } else {
      ASSERT_FALSE(header.ok());
      EXPECT_NE(header.status().message().find("unsupported WAL format version " +
                                               std::to_string(version)),
                std::string::npos)
          << header.status().message();
    }
  }
}

TEST(WalFormat, SegmentFileNamesSortInIdOrder) {
  EXPECT_EQ(SegmentFileName(1), "wal-00000000000000000001.log");
  EXPECT_EQ(SegmentFileName(UINT64_MAX), "wal-18446744073709551615.log");
  EXPECT_LT(SegmentFileName(999), SegmentFileName(1000));
  EXPECT_EQ(ParseSegmentFileName("wal-00000000000000000042.log"), 42u);
  EXPECT_EQ(ParseSegmentFileName(SegmentFileName(UINT64_MAX)), UINT64_MAX);
  EXPECT_FALSE(ParseSegmentFileName("wal-99999999999999999999.log"));  // Overflows.
  EXPECT_FALSE(ParseSegmentFileName("wal-0000000000000000004.log"));
  EXPECT_FALSE(ParseSegmentFileName("wal-00000000000000000042.log.tmp"));
  EXPECT_FALSE(ParseSegmentFileName("wal-0000000000000000004x.log"));
}

}  // namespace
}  // namespace rlog::storage
