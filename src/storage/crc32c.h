// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every WAL record
// (docs/wal-format.md). Uses the SSE4.2 crc32 instruction when the CPU has it and a table-driven
// slice-by-8 loop otherwise; both give the same values. Stateless and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rlog::storage::crc32c {

// The CRC of the concatenation of the bytes that gave `crc` and data[0, n).
// Extend(0, ...) starts a new checksum.
uint32_t Extend(uint32_t crc, const char* data, size_t n);

inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

// The two implementations, exposed so tests can check they agree.
uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n);
bool HardwareAvailable();
// Precondition: HardwareAvailable().
uint32_t ExtendHardware(uint32_t crc, const char* data, size_t n);

}  // namespace rlog::storage::crc32c
