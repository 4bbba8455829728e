// Parsing and validation of POST /insert bodies (simdjson). Pure: no I/O, no node state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace rlog::http {

struct WriteConcern {
  enum class Kind { kCount, kMajority, kAll };
  Kind kind = Kind::kCount;
  uint64_t count = 1;  // For kCount; >= 1.

  // The number of nodes this concern needs in a cluster of `cluster_size` nodes.
  uint64_t Resolve(uint32_t cluster_size) const;
  std::string Label() const;  // "1", "2", ..., "majority", "all" (for metrics labels).
};

struct InsertRequest {
  std::string message;
  WriteConcern concern;
  std::optional<uint64_t> timeout_ms;
  std::optional<std::string> idempotency_key;
};

inline constexpr size_t kMaxIdempotencyKeyBytes = 256;

// InvalidArgument with a message fit for the client on anything malformed: not JSON (or not
// UTF-8), not an object, missing or non-string "message", a write concern that is not a positive
// integer / "majority" / "all", both "writeConcern" and "w" given, a bad "timeoutMs" or
// "idempotencyKey", or an unknown field. One UTF-8 byte order mark before the JSON is ignored.
Result<InsertRequest> ParseInsertRequest(std::string_view body);

}  // namespace rlog::http
