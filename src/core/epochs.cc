#include "core/epochs.h"

#include <algorithm>
#include <tuple>

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

RecoveryPlan PlanRecovery(std::span<const EpochStart> history, LogId own_last,
                          uint64_t own_last_epoch, std::span<const RecoveryPosition> positions) {
  std::optional<size_t> best;
  LogId best_usable = 0;
  for (size_t i = 0; i < positions.size(); ++i) {
    const RecoveryPosition& p = positions[i];
    const LogId usable = std::min(p.last_id, EpochEnd(history, p.last_epoch, p.last_id));
    if (usable == 0) continue;  // Holds nothing of the log.
    if (!best ||
        std::tie(p.last_epoch, usable) > std::tie(positions[*best].last_epoch, best_usable)) {
      best = i;
      best_usable = usable;
    }
  }
  RecoveryPlan plan{std::nullopt, own_last, own_last};
  if (!best) return plan;
  if (positions[*best].last_epoch > own_last_epoch) {
    plan.keep = std::min(own_last, positions[*best].own_epoch_end);
  }
  if (best_usable > plan.keep) {
    plan.source = best;
    plan.copy_to = best_usable;
  } else {
    plan.copy_to = plan.keep;
  }
  return plan;
}

}  // namespace rlog::core
