#include "storage/wal_format.h"

#include <cstdio>

#include "storage/crc32c.h"

namespace rlog::storage {
namespace {

void PutFixed32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint32_t GetFixed32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return static_cast<uint32_t>(u[0]) | static_cast<uint32_t>(u[1]) << 8 |
         static_cast<uint32_t>(u[2]) << 16 | static_cast<uint32_t>(u[3]) << 24;
}
uint64_t GetFixed64(const char* p) {
  return static_cast<uint64_t>(GetFixed32(p)) | static_cast<uint64_t>(GetFixed32(p + 4)) << 32;
}

bool KnownType(uint8_t type) {
  return type == static_cast<uint8_t>(RecordType::kSegmentHeader) ||
         type == static_cast<uint8_t>(RecordType::kEntry) ||
         type == static_cast<uint8_t>(RecordType::kEpochMark) ||
         type == static_cast<uint8_t>(RecordType::kKeyedEntry);
}

constexpr std::string_view kPrefix = "wal-";
constexpr std::string_view kSuffix = ".log";
constexpr size_t kIdDigits = 20;

}  // namespace

void EncodeRecord(const Record& record, std::string* out) {
  const size_t start = out->size();
  const bool keyed = record.type == RecordType::kKeyedEntry;
  const size_t key_bytes = keyed ? kKeyLengthBytes + record.key.size() : 0;
  PutFixed32(out, static_cast<uint32_t>(kRecordFixedBytes + key_bytes + record.payload.size()));
  PutFixed32(out, 0);  // crc, filled in below.
  out->push_back(static_cast<char>(record.type));
  PutFixed64(out, record.id);
  PutFixed64(out, record.epoch);
  PutFixed64(out, static_cast<uint64_t>(record.timestamp_ms));
  if (keyed) {
    const auto size = static_cast<uint16_t>(record.key.size());
    out->push_back(static_cast<char>(size & 0xFF));
    out->push_back(static_cast<char>(size >> 8));
    out->append(record.key);
  }
  out->append(record.payload);
  const char* covered = out->data() + start + kRecordPrefixBytes;
  const uint32_t crc = crc32c::Extend(0, covered, out->size() - start - kRecordPrefixBytes);
  for (int i = 0; i < 4; ++i) (*out)[start + 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
}

const char* DecodeStatusName(DecodeStatus status) {
  switch (status) {
    case DecodeStatus::kOk:
      return "ok";
    case DecodeStatus::kNeedMore:
      return "incomplete record";
    case DecodeStatus::kBadLength:
      return "bad record length";
    case DecodeStatus::kBadCrc:
      return "checksum mismatch";
    case DecodeStatus::kBadType:
      return "unknown record type";
    case DecodeStatus::kBadKey:
      return "key length past the record";
  }
  return "?";
}

DecodeStatus DecodeRecord(std::string_view in, Record* record, size_t* record_bytes) {
  if (in.size() < kRecordPrefixBytes) {
    *record_bytes = kRecordHeaderBytes;
    return DecodeStatus::kNeedMore;
  }
  const uint32_t length = GetFixed32(in.data());
  if (length < kRecordFixedBytes || length > kMaxRecordLength) return DecodeStatus::kBadLength;
  const size_t total = kRecordPrefixBytes + length;
  if (in.size() < total) {
    *record_bytes = total;
    return DecodeStatus::kNeedMore;
  }
  const char* body = in.data() + kRecordPrefixBytes;
  if (crc32c::Extend(0, body, length) != GetFixed32(in.data() + 4)) return DecodeStatus::kBadCrc;
  const auto type = static_cast<uint8_t>(body[0]);
  if (!KnownType(type)) return DecodeStatus::kBadType;
  record->type = static_cast<RecordType>(type);
  record->id = GetFixed64(body + 1);
  record->epoch = GetFixed64(body + 9);
  record->timestamp_ms = static_cast<int64_t>(GetFixed64(body + 17));
  record->payload = std::string_view(body + kRecordFixedBytes, length - kRecordFixedBytes);
  record->key = {};
  if (record->type == RecordType::kKeyedEntry) {
    const std::string_view p = record->payload;
    if (p.size() < kKeyLengthBytes) return DecodeStatus::kBadKey;
    const size_t key_size =
        static_cast<uint8_t>(p[0]) | static_cast<size_t>(static_cast<uint8_t>(p[1])) << 8;
    if (p.size() - kKeyLengthBytes < key_size) return DecodeStatus::kBadKey;
    record->key = p.substr(kKeyLengthBytes, key_size);
    record->payload = p.substr(kKeyLengthBytes + key_size);
  }
  *record_bytes = total;
  return DecodeStatus::kOk;
}

bool ValidRecordFollows(std::string_view in) {
  for (size_t at = 1; at + kRecordHeaderBytes <= in.size(); ++at) {
    // Cheap filters first: most offsets of a torn or zeroed tail fail on length or type.
    const uint32_t length = GetFixed32(in.data() + at);
    if (length < kRecordFixedBytes || length > in.size() - at - kRecordPrefixBytes) continue;
    if (!KnownType(static_cast<uint8_t>(in[at + kRecordPrefixBytes]))) continue;
    Record record;
    size_t bytes = 0;
    if (DecodeRecord(in.substr(at), &record, &bytes) == DecodeStatus::kOk) return true;
  }
  return false;
}

uint64_t CountRecordStarts(std::string_view tail) {
  uint64_t records = 0;
  size_t at = 0;
  while (at + 4 <= tail.size()) {
    const uint32_t length = GetFixed32(tail.data() + at);
    if (length < kRecordFixedBytes || length > kMaxRecordLength) break;
    ++records;
    at += kRecordPrefixBytes + length;
  }
  if (records == 0 && tail.size() < 4 && tail.find_first_not_of('\0') != std::string_view::npos) {
    return 1;
  }
  return records;
}

std::string EncodeSegmentHeader(const SegmentHeader& header) {
  std::string payload(kSegmentMagic);
  PutFixed32(&payload, header.version);
  PutFixed32(&payload, static_cast<uint32_t>(header.log_id.size()));
  payload += header.log_id;
  std::string out;
  EncodeRecord({RecordType::kSegmentHeader, header.first_id, header.epoch, 0, payload}, &out);
  return out;
}

Result<SegmentHeader> ParseSegmentHeader(const Record& record) {
  const std::string_view p = record.payload;
  if (record.type != RecordType::kSegmentHeader) {
    return Status::Corruption("first record is not a segment header");
  }
  if (p.size() < kSegmentMagic.size() + 8 || p.substr(0, kSegmentMagic.size()) != kSegmentMagic) {
    return Status::Corruption("bad segment magic");
  }
  const uint32_t version = GetFixed32(p.data() + kSegmentMagic.size());
  if (version < kOldestReadableVersion || version > kFormatVersion) {
    return Status::Corruption("unsupported WAL format version " + std::to_string(version) +
                              " (this rlog reads versions " +
                              std::to_string(kOldestReadableVersion) + " to " +
                              std::to_string(kFormatVersion) + ")");
  }
  const uint32_t id_size = GetFixed32(p.data() + kSegmentMagic.size() + 4);
  if (p.size() != kSegmentMagic.size() + 8 + id_size) {
    return Status::Corruption("bad log id length in segment header");
  }
  return SegmentHeader{record.id, record.epoch,
                       std::string(p.substr(kSegmentMagic.size() + 8, id_size)), version};
}

std::string SegmentFileName(LogId first_id) {
  char name[48];
  std::snprintf(name, sizeof(name), "wal-%020llu.log", static_cast<unsigned long long>(first_id));
  return name;
}

std::optional<LogId> ParseSegmentFileName(std::string_view name) {
  if (name.size() != kPrefix.size() + kIdDigits + kSuffix.size() ||
      name.substr(0, kPrefix.size()) != kPrefix ||
      name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  LogId id = 0;
  for (const char c : name.substr(kPrefix.size(), kIdDigits)) {
    if (c < '0' || c > '9') return std::nullopt;
    const LogId digit = static_cast<LogId>(c - '0');
    if (id > (UINT64_MAX - digit) / 10) return std::nullopt;
    id = id * 10 + digit;
  }
  return id;
}

}  // namespace rlog::storage
