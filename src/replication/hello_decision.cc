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

const char* HelloVerdictName(HelloVerdict verdict) {
  switch (verdict) {
    case HelloVerdict::kAccept: return "accept";
    case HelloVerdict::kResetThenAccept: return "reset then accept";
    case HelloVerdict::kRefuseOtherLog: return "refuse: another log";
    case HelloVerdict::kRefuseOlderEpoch: return "refuse: older epoch";
  }
  return "?";
}

}  // namespace rlog::replication
