#include "core/quorum.h"

#include <algorithm>
#include <functional>
#include <vector>

namespace rlog::core {

LogId CommittedAt(std::span<const LogId> positions, size_t w) {
  if (w == 0 || w > positions.size()) return 0;
  // Clusters are small (a master and a handful of sentinels): a sorted copy is cheapest.
  LogId sorted[16];
  std::vector<LogId> heap;
  LogId* begin = sorted;
  if (positions.size() > std::size(sorted)) {
    heap.assign(positions.begin(), positions.end());
    begin = heap.data();
  } else {
    std::copy(positions.begin(), positions.end(), sorted);
  }
  LogId* end = begin + positions.size();
  std::nth_element(begin, begin + (w - 1), end, std::greater<>());
  return begin[w - 1];
}

}  // namespace rlog::core
