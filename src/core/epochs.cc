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

namespace {

// The step of `history` whose run holds entry `id` (>= 1): its last step starting at or before
// `id` (null if none). Later steps win, so a step with an empty run (the next one starts at the
// same id) never holds an entry.
const EpochStart* RunOf(std::span<const EpochStart> history, LogId id) {
  const EpochStart* run = nullptr;
  for (const EpochStart& step : history) {
    if (step.first_id > id) break;
    run = &step;
  }
  return run;
}

uint64_t EpochOf(std::span<const EpochStart> history, LogId id) {
  const EpochStart* run = RunOf(history, id);
  return run ? run->epoch : 0;
}

LogId RunStart(std::span<const EpochStart> history, LogId id) {
  const EpochStart* run = RunOf(history, id);
  return run ? run->first_id : 1;
}

}  // namespace

LogId CommonPrefix(std::span<const EpochStart> master_history, LogId master_last,
                   std::span<const EpochStart> own_history, LogId own_last) {
  LogId end = std::min(own_last, master_last);  // Ids past either log are in no common prefix.
  if (master_history.empty() || own_history.empty()) return end;
  while (end > 0) {
    const uint64_t epoch = EpochOf(own_history, end);
    // The master's answer: its last id of an epoch <= `epoch`, and that entry's epoch (e*). Ids
    // past `end` are out of the question already, so it is asked about ids up to `end` only.
    const LogId master_end = std::min(end, EpochEnd(master_history, epoch, master_last));
    if (master_end == 0) return 0;  // Every entry of the master's is of a newer epoch.
    const uint64_t master_epoch = EpochOf(master_history, master_end);
    if (master_epoch == epoch) {
      // One master appends in an epoch, from the id after the log it took over, so the epoch's
      // run starts at the same id in every log that holds part of it. Runs that start at
      // different ids were written by two masters given the same epoch (only a directory rolled
      // back can do that, see RecoveryAnswersNeeded): the logs agree at most below both.
      const LogId own_start = RunStart(own_history, end);
      const LogId master_start = RunStart(master_history, master_end);
      if (own_start == master_start) return master_end;
      end = std::min(own_start, master_start) - 1;
      continue;
    }
    // Up to master_end the master's entries are of epochs <= master_epoch: the node's entries of
    // newer epochs there are not the master's.
    end = std::min(master_end, EpochEnd(own_history, master_epoch, end));
  }
  return 0;
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
  if (const RecoveryPosition& p = positions[*best]; p.last_epoch > own_last_epoch) {
    plan.keep = p.history.empty() ? std::min(own_last, p.own_epoch_end)
                                  : CommonPrefix(p.history, p.last_id, history, own_last);
  }
  if (best_usable > plan.keep) {
    plan.source = best;
    plan.copy_to = best_usable;
  } else {
    plan.copy_to = plan.keep;
  }
  return plan;
}

size_t RecoveryAnswersNeeded(size_t sentinels, bool own_log_counts) {
  const size_t majority = (1 + sentinels) / 2 + 1;
  if (!own_log_counts) return std::min(sentinels, sentinels + 2 - majority);
  return std::min(sentinels, std::max(sentinels + 1 - majority, majority - 1));
}

}  // namespace rlog::core
