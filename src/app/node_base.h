// What master and sentinel nodes share: the log they expose and the read endpoints over it
// (GET /get-all, GET /messages with long-poll tailing).
//
// Long polls park their Responder in `tails_` and are answered by NotifyAppended (from whatever
// thread appended) or by ExpireTails (from the node's ticker): no thread waits per request.
#pragma once

#include <chrono>
#include <map>
#include <mutex>

#include "http/service.h"
#include "storage/memory_log.h"

namespace rlog::app {

class NodeBase : public http::Service {
 public:
  http::HttpReply GetAll() override;
  void Messages(core::LogId from, size_t limit, uint64_t wait_ms, http::Responder respond) override;

 protected:
  using Clock = std::chrono::steady_clock;

  // Answers every parked long poll whose first id now exists.
  void NotifyAppended(core::LogId last_id);
  // Answers (with an empty page) every parked long poll whose wait is over; with `all` (a
  // draining node: nothing more arrives, and no ticker runs to expire anything), every one, and
  // every later long poll is answered at once instead of parked.
  void ExpireTails(Clock::time_point now, bool all = false);
  http::HttpReply Page(core::LogId from, size_t limit) const;

  // The log reads are served from; set by the node before it serves HTTP (with a data
  // directory it is the memory side of the node's storage::NodeLog).
  const storage::MemoryLog* log_ = nullptr;

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
