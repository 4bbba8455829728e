// Which id is held by at least w nodes.
//
// positions[i] is the highest id node i holds contiguously (the master counts as a node). A
// write of id x with write concern w is satisfied once CommittedAt(positions, w) >= x.
#pragma once

#include <cstddef>
#include <span>

#include "core/types.h"

namespace rlog::core {

// The w-th highest position, i.e. the highest id held by at least w nodes. Returns 0 when
// w == 0 is asked for nothing sensible (w must be >= 1) or fewer than w positions exist.
LogId CommittedAt(std::span<const LogId> positions, size_t w);

}  // namespace rlog::core
