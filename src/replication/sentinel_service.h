// Sentinel side of replication: the gRPC service that accepts the master's stream.
//
// Each stream is one small reactor: it reads the master's messages in order, applies batches to
// the sentinel's log (ids it holds are ignored, gaps are held back), and answers each message
// with an Ack of the contiguous high-water mark. Writes are gated to one in flight; acks that
// pile up meanwhile are coalesced into the latest one. A master of another log is refused with
// FAILED_PRECONDITION. Nothing in a reaction blocks, except the test-only injected delays.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "rlog/replication.grpc.pb.h"
#include "storage/memory_log.h"

namespace rlog::replication {

// Test-only faults, enabled by --enable-test-faults. Probabilities in [0, 1].
struct SentinelFaults {
  double fail_after_append = 0;  // Apply a batch, then drop the stream without acking.
  double drop_stream = 0;        // Drop the stream before applying a message.
  uint32_t max_delay_ms = 0;     // Sleep up to this long before applying a message.
  uint64_t seed = 1;
};

// Parses "fail_after_append=P,drop_stream=P,delay_ms=N,seed=N".
Result<SentinelFaults> ParseFaults(const std::string& spec);

// What the sentinel knows about its master; read by /health. Thread-safe.
class SentinelState {
 public:
  // Adopts `log_id` if the sentinel has no log yet (or holds nothing), else checks it.
  Status AcceptMaster(const std::string& log_id, const std::string& master_http, bool log_empty);
  void Heard();
  void StreamOpened() { streams_.fetch_add(1); }
  void StreamClosed() { streams_.fetch_sub(1); }

  std::string log_id() const;
  std::string master_http() const;
  bool connected() const { return streams_.load() > 0; }
  // Milliseconds since the master was last heard, or nullopt if never.
  std::optional<int64_t> last_heard_ms_ago() const;

 private:
  mutable std::mutex mu_;
  std::string log_id_;       // Guarded by mu_.
  std::string master_http_;  // Guarded by mu_.
  std::atomic<int64_t> last_heard_ns_{0};  // steady_clock; 0 = never.
  std::atomic<int> streams_{0};
};

class SentinelService final : public Replication::CallbackService {
 public:
  SentinelService(storage::MemoryLog* log, SentinelState* state, std::string node_id,
                  SentinelFaults faults)
      : log_(log), state_(state), node_id_(std::move(node_id)), faults_(faults) {}

  grpc::ServerBidiReactor<MasterMessage, SentinelMessage>* Replicate(
      grpc::CallbackServerContext* context) override;

  // Called after entries are applied (wakes long-polling readers).
  void set_on_applied(std::function<void(core::LogId)> fn) { on_applied_ = std::move(fn); }

 private:
  friend class ReplicateReactor;
  storage::MemoryLog* const log_;
  SentinelState* const state_;
  const std::string node_id_;
  const SentinelFaults faults_;
  std::atomic<uint64_t> fault_counter_{0};
  std::function<void(core::LogId)> on_applied_;
};

}  // namespace rlog::replication
