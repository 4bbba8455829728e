// Which Ack a sentinel with a write-ahead log may send on one stream, given its durable id.
//
// The master reads an Ack {last_id, seq} as "by message seq the sentinel holds everything sent
// up to it; if last_id is below that, resend" (core::Replicator::Acked), and counts last_id
// toward write concern. So an Ack must never name an id that is not durable, nor the seq of a
// message whose entries are not durable yet (the master would take them as lost and resend).
//
// The stream records, for every message it processed, the contiguous last id the sentinel held
// right after it; when the durable id D moves, the Ack is {D, the newest such seq whose recorded
// id is <= D}. Pure; one per stream, guarded by the stream's lock.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "core/types.h"

namespace rlog::replication {

struct AckPoint {
  core::LogId last_id = 0;
  uint64_t seq = 0;

  bool operator==(const AckPoint&) const = default;
};

class DurableAckQueue {
 public:
  // `welcomed`: the last id the Welcome reported (the master knows it already).
  explicit DurableAckQueue(core::LogId welcomed = 0) : sent_{welcomed, 0} {}

  // Message `seq` (ascending) was processed; the sentinel then held 1..last contiguously.
  void Processed(uint64_t seq, core::LogId last);

  // Ids 1..durable are durable. The Ack to send, or nullopt when it would tell the master nothing
  // new (no further message covered and no higher id).
  std::optional<AckPoint> Durable(core::LogId durable);

  size_t waiting() const { return waiting_.size(); }

 private:
  struct Waiting {
    uint64_t seq;
    core::LogId last;
  };
  std::deque<Waiting> waiting_;  // Ascending seq; `last` ascends too unless the log was reset.
  AckPoint sent_;                // The newest Ack handed out.
};

}  // namespace rlog::replication
