// What master and sentinel nodes share: the log they expose and the read endpoints over it
// (GET /get-all, GET /messages with long-poll tailing).
//
// Reads show the log up to its durable id (storage::NodeLog::durable_id: what the node's fsync
// policy covers; all of it in memory), never an entry still waiting for its write or fsync: a
// crash of this node cannot take back what a reader saw. A node may cap that further
// (ReadCap): a sentinel shows only what its master told it is committed, so that a master's
// power loss cannot take back what a sentinel's reader saw either (docs/ARCHITECTURE.md, "The
// commit id").
//
// Long polls park their Responder in `tails_` and are answered by NotifyAppended (from whatever
// thread appended or made entries durable) or by ExpireTails (from the node's ticker): no thread
// waits per request.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>

#include "http/service.h"
#include "storage/node_log.h"

namespace rlog::app {

class NodeBase : public http::Service {
 public:
  http::HttpReply GetAll() override;
  void Messages(core::LogId from, size_t limit, uint64_t wait_ms, http::Responder respond) override;

 protected:
  using Clock = std::chrono::steady_clock;

  // Answers every parked long poll whose first id is now readable (at most `last_id`, and at
  // most VisibleId()). Call it after appends and after the durable id moved.
  void NotifyAppended(core::LogId last_id);
  // Answers (with an empty page) every parked long poll whose wait is over; with `all` (a
  // draining node: nothing more arrives, and no ticker runs to expire anything), every one, and
  // every later long poll is answered at once instead of parked.
  void ExpireTails(Clock::time_point now, bool all = false);
  http::HttpReply Page(core::LogId from, size_t limit) const;

  // Long polls parked now (for /health: tailing consumers waiting for the next entry).
  size_t WaitingReads();
  // The last id reads may show: the durable id, at most ReadCap() (see above).
  core::LogId VisibleId() const;
  // The highest id this node may show, whatever it holds; the master shows all it holds durably.
  virtual core::LogId ReadCap() const { return UINT64_MAX; }

  // The log reads are served from; set by the node before it serves HTTP.
  const storage::NodeLog* served_ = nullptr;
  // The largest GET /get-all body built; a larger log is refused (page it with /messages).
  uint64_t get_all_max_bytes_ = UINT64_MAX;
  // The most long polls parked at once (http.max_waiting_reads); one more is answered 503. A
  // parked poll stays until its entry comes or its wait is over, even when its client has gone.
  size_t max_waiting_reads_ = SIZE_MAX;

 private:
  struct Tail {
    core::LogId from;
    size_t limit;
    Clock::time_point deadline;
    http::Responder respond;
  };

  std::mutex tails_mu_;
  std::multimap<core::LogId, Tail> tails_;  // By first id wanted. Guarded by tails_mu_.
  bool tails_closed_ = false;               // ExpireTails(all) ran. Guarded by tails_mu_.
};

}  // namespace rlog::app
