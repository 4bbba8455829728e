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
};

}  // namespace rlog::storage
