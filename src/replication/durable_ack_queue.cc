#include "replication/durable_ack_queue.h"

#include <algorithm>

namespace rlog::replication {

void DurableAckQueue::Processed(uint64_t seq, core::LogId last) {
  // A message that leaves the log where the previous one did supersedes it (heartbeats while the
  // disk is slow): the queue stays as long as the number of distinct positions waiting.
  if (!waiting_.empty() && waiting_.back().last == last) {
    waiting_.back().seq = seq;
    return;
  }
  waiting_.push_back({seq, last});
}

std::optional<AckPoint> DurableAckQueue::Durable(core::LogId durable) {
  // The newest message covered; scan all, so a log reset (positions going down) cannot wedge
  // the queue behind an older, higher position.
  size_t covered = 0;
  for (size_t i = 0; i < waiting_.size(); ++i) {
    if (waiting_[i].last <= durable) covered = i + 1;
  }
  uint64_t seq = sent_.seq;
  if (covered > 0) {
    seq = std::max(seq, waiting_[covered - 1].seq);
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(covered));
  }
  if (seq == sent_.seq && durable <= sent_.last_id) return std::nullopt;
  sent_ = {durable, seq};
  return sent_;
}

}  // namespace rlog::replication
