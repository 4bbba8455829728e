// The on-disk format of the write-ahead log; docs/wal-format.md is the specification and this
// file implements it (change both together, and bump kFormatVersion on incompatible changes).
//
// A WAL directory holds segment files wal-<first id, 20 digits>.log. A segment is a sequence of
// records, all integers little-endian:
//
//   [length u32][crc32c u32][type u8][id u64][epoch u64][timestamp_ms i64][payload]
//
// `length` counts the bytes after the crc field (25 + payload size); the crc covers exactly those
// bytes. Every segment starts with a kSegmentHeader record; kEntry, kKeyedEntry and kEpochMark
// records follow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "core/types.h"

namespace rlog::storage {

using core::LogId;

inline constexpr size_t kRecordPrefixBytes = 8;  // length + crc.
inline constexpr size_t kRecordFixedBytes = 25;  // type + id + epoch + timestamp_ms.
inline constexpr size_t kRecordHeaderBytes = kRecordPrefixBytes + kRecordFixedBytes;  // 33
inline constexpr uint32_t kMaxPayloadBytes = 64u << 20;

inline constexpr std::string_view kSegmentMagic = "rlog-wal";  // 8 bytes, start of the payload.
// Written in every new segment header. Version 2 added kKeyedEntry; version 1 segments (no keyed
// entries) are still read, and a node that opens one as its last segment starts a new segment
// before it writes anything, so that a version 1 binary never meets a record it does not know
// (it refuses a version 2 header instead: docs/wal-format.md, "Versions").
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr uint32_t kOldestReadableVersion = 1;
inline constexpr size_t kKeyLengthBytes = 2;    // A kKeyedEntry's key length is a u16,
inline constexpr size_t kMaxKeyBytes = 0xFFFF;  // so a key is at most this long.
// The largest `length` field a record may have.
inline constexpr uint32_t kMaxRecordLength =
    kRecordFixedBytes + kKeyLengthBytes + kMaxKeyBytes + kMaxPayloadBytes;

enum class RecordType : uint8_t {
  kSegmentHeader = 1,  // id = first entry id of the segment; payload = magic, version, log id.
  kEntry = 2,          // One log entry; payload = the message bytes.
  // id = the next entry id, epoch = a master epoch newer than the entries before it, no payload:
  // this log's entries up to id - 1 are that master's log up to there (docs/wal-format.md,
  // "Epoch marks").
  kEpochMark = 3,
  // One log entry inserted with an idempotency key (version 2 on): payload = key length (u16),
  // the key, then the message bytes.
  kKeyedEntry = 4,
};

inline bool IsEntry(RecordType type) {
  return type == RecordType::kEntry || type == RecordType::kKeyedEntry;
}

// A decoded record. `payload` and `key` point into the buffer it was decoded from. For a
// kKeyedEntry, `payload` is the message alone and `key` the idempotency key (empty otherwise).
struct Record {
  RecordType type = RecordType::kEntry;
  LogId id = 0;
  uint64_t epoch = 0;
  int64_t timestamp_ms = 0;
  std::string_view payload;
  std::string_view key = {};
};

// Appends the encoding of `record` to *out. Preconditions: payload.size() <= kMaxPayloadBytes;
// key.size() <= kMaxKeyBytes, and key is empty unless the type is kKeyedEntry.
void EncodeRecord(const Record& record, std::string* out);

enum class DecodeStatus {
  kOk,
  kNeedMore,   // `in` ends inside the record; *record_bytes says how many bytes it needs.
  kBadLength,  // The length field is impossible (zeros, garbage).
  kBadCrc,     // The bytes do not match their checksum.
  kBadType,    // Checksum fine, but a type this version does not know.
  kBadKey,     // Checksum fine, but a kKeyedEntry's key length runs past its payload.
};
const char* DecodeStatusName(DecodeStatus status);

// Decodes the record at the start of `in`. On kOk sets *record and *record_bytes (its encoded
// size). Verifies the checksum; does not interpret the payload.
DecodeStatus DecodeRecord(std::string_view in, Record* record, size_t* record_bytes);

// True if a record with a valid checksum starts at some offset in `in` (after offset 0). Used to
// tell a torn tail (nothing valid follows the bad record) from corruption in the middle.
bool ValidRecordFollows(std::string_view in);

// How many records a dropped tail began: record starts found by following plausible length
// fields from offset 0 (a tail too short for a length field but not all zeros counts as one).
// A zero-filled tail gives 0. For reporting only.
uint64_t CountRecordStarts(std::string_view tail);

struct SegmentHeader {
  LogId first_id = 1;  // Id of the segment's first entry (the previous segment's last + 1).
  uint64_t epoch = 0;  // Master epoch when the segment was started.
  std::string log_id;  // The log this directory belongs to; the same in every segment.
  uint32_t version = kFormatVersion;  // Format version the segment was written in.
};

// The full encoded header record (to be written at offset 0 of a new segment), with
// header.version (tests write older versions; the WAL writes only kFormatVersion).
std::string EncodeSegmentHeader(const SegmentHeader& header);
// Interprets a decoded kSegmentHeader record; Corruption (without file context) if malformed.
Result<SegmentHeader> ParseSegmentHeader(const Record& record);

// "wal-00000000000000000001.log"; names sort in id order.
std::string SegmentFileName(LogId first_id);
// The first id named by a segment file name, or nullopt if `name` is not a segment's name.
std::optional<LogId> ParseSegmentFileName(std::string_view name);
// Suffix of a segment being replaced (written, synced, then renamed over the segment).
inline constexpr std::string_view kTempSuffix = ".tmp";

}  // namespace rlog::storage
