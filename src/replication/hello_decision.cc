#include "replication/hello_decision.h"

namespace rlog::replication {

HelloDecision DecideHello(const SentinelLogView& sentinel, const HelloView& hello) {
  bool same_log = sentinel.log_id.empty() || sentinel.log_id == hello.log_id;
  if (!same_log) {
    if (sentinel.last_id > 0) return {HelloVerdict::kRefuseOtherLog, 0};
    return {HelloVerdict::kAccept, 0};
  }
  if (hello.epoch < sentinel.epoch) return {HelloVerdict::kRefuseOlderEpoch, 0};
  core::LogId keep =
      core::CommonPrefix(hello.history, hello.master_last_id, sentinel.history, sentinel.last_id);
  if (keep < sentinel.last_id) return {HelloVerdict::kTruncateThenAccept, keep};
  return {HelloVerdict::kAccept, keep};
}

}  // namespace rlog::replication
