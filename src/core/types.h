// Vocabulary of the replication core: ids, sentinel handles, health states.
#pragma once

#include <cstdint>

namespace rlog::core {

// Log ids start at 1; 0 means "nothing". Ids are dense: the master never skips one.
using LogId = uint64_t;
// Logical time: the shell turns its clock into ticks of a fixed length.
using Tick = uint64_t;
// Index of a sentinel in the core's table; stable for the sentinel's lifetime.
using SentinelId = uint32_t;
// Names one parked write; assigned by the core, unique for the core's lifetime.
using WriteHandle = uint64_t;

enum class Health { kHealthy, kSuspected, kUnhealthy };

const char* HealthName(Health health);

}  // namespace rlog::core
