#include "replication/master_message.h"

#include <cstdint>
#include <utility>

namespace rlog::replication {

MasterMessage BuildMasterMessage(const core::Ready::Send& send, const storage::MemoryLog& log) {
  MasterMessage msg;
  msg.set_seq(send.seq);
  if (send.heartbeat()) {
    msg.mutable_heartbeat()->set_master_last_id(log.last_id());
    msg.mutable_heartbeat()->set_commit_id(send.commit);
    return msg;
  }
  Batch* batch = msg.mutable_batch();
  for (storage::Entry& e : log.Read(send.first, send.last - send.first + 1, UINT64_MAX)) {
    Entry* out = batch->add_entries();
    out->set_id(e.id);
    out->set_timestamp_ms(e.timestamp_ms);
    out->set_message(std::move(e.message));
    out->set_epoch(e.epoch);
    if (!e.idempotency_key.empty()) out->set_idempotency_key(std::move(e.idempotency_key));
  }
  batch->set_master_last_id(log.last_id());
  batch->set_commit_id(send.commit);
  batch->set_pipelined(send.pipelined);
  return msg;
}

}  // namespace rlog::replication
