#include "replication/hello_decision.h"

namespace rlog::replication {

HelloVerdict DecideHello(const SentinelLogView& sentinel, const HelloView& hello) {
  bool same_log = sentinel.log_id.empty() || sentinel.log_id == hello.log_id;
  if (!same_log) {
    return sentinel.last_id > 0 ? HelloVerdict::kRefuseOtherLog : HelloVerdict::kAccept;
  }
  if (hello.epoch < sentinel.epoch) return HelloVerdict::kRefuseOlderEpoch;
  if (core::Diverges(hello.history, hello.master_last_id, sentinel.last_epoch, sentinel.last_id)) {
    return HelloVerdict::kResetThenAccept;
  }
  return HelloVerdict::kAccept;
}

}  // namespace rlog::replication
