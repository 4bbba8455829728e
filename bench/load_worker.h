// LoadWorker: one thread's share of rlog-bench's connections, driven by one epoll loop.
//
// Every connection is persistent and closed-loop: it sends the request, reads the whole response
// (framed by HttpResponseParser), then sends the next one; it never has two requests in flight,
// because Pistache drops the second of two pipelined requests. A connection the server closes,
// or that fails, is reopened and counted; failed connects back off (10 ms doubling to 1 s).
// Only responses that complete inside [warmup_end, deadline) are counted.
//
// Thread-safety: a LoadWorker is used by one thread; the only shared state is the optional
// request budget, an atomic.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "histogram.h"

namespace rlog::bench {

using Clock = std::chrono::steady_clock;

struct LoadPlan {
  sockaddr_storage address{};
  socklen_t address_len = 0;
  std::string request;  // one complete HTTP/1.1 request, sent as is on every connection
  int ok_status = 0;    // the answer counted as ok (with its latency); 0: any 2xx
  Clock::time_point warmup_end;
  Clock::time_point deadline;
  // Requests that may still be sent, shared by every worker (warm-up included); null: no cap.
  std::atomic<int64_t>* budget = nullptr;
};

struct LoadStats {
  uint64_t ok = 0;  // 2xx, or LoadPlan::ok_status
  uint64_t errors_4xx = 0;
  uint64_t errors_5xx = 0;
  uint64_t errors_other = 0;    // 1xx/3xx final answers: not expected from rlog
  uint64_t errors_io = 0;       // failed connects, resets, closes mid-response, bad HTTP
  uint64_t reconnects = 0;      // established connections reopened after a close or an error
  LatencyHistogram latency_ns;  // send -> full response, ok answers only

  uint64_t requests() const { return ok + errors_4xx + errors_5xx + errors_other + errors_io; }
  void merge(const LoadStats& other);
};

// Runs `connections` connections until the deadline, or until the budget is spent and every
// answer is in. Returns what it counted; the first I/O or protocol error message, if any, goes
// to *first_error.
LoadStats run_load(const LoadPlan& plan, int connections, std::string* first_error);

}  // namespace rlog::bench
