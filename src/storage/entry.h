// One message of the log as every layer above storage sees it.
#pragma once

#include <cstdint>
#include <string>

#include "core/types.h"

namespace rlog::storage {

using core::LogId;

struct Entry {
  LogId id = 0;
  int64_t timestamp_ms = 0;  // Unix time when the master appended it.
  std::string message;
  // Epoch of the master that appended it. In a log, epochs never decrease from one id to the
  // next. Last member, so that {id, timestamp_ms, message} still builds an entry (of epoch 0).
  uint64_t epoch = 0;
  // The idempotency key the client inserted it with; empty if none. Kept with the entry (in the
  // WAL and on every node) so that a master taking over the log knows which keys it holds.
  std::string idempotency_key = {};
};

}  // namespace rlog::storage
