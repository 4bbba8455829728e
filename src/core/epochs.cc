#include "core/epochs.h"

#include <algorithm>

namespace rlog::core {

LogId EpochEnd(std::span<const EpochStart> history, uint64_t epoch, LogId master_last_id) {
  auto later = std::find_if(history.begin(), history.end(),
                            [epoch](const EpochStart& step) { return step.epoch > epoch; });
  if (later == history.end()) return master_last_id;
  return later->first_id == 0 ? 0 : later->first_id - 1;
}

bool Diverges(std::span<const EpochStart> history, LogId master_last_id,
              uint64_t sentinel_last_epoch, LogId sentinel_last_id) {
  return sentinel_last_id > EpochEnd(history, sentinel_last_epoch, master_last_id);
}

}  // namespace rlog::core
