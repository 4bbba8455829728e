// The master's replication messages, built from the core's decisions (core::Ready::Send).
#pragma once

#include "core/replicator.h"
#include "rlog/replication.pb.h"
#include "storage/memory_log.h"

namespace rlog::replication {

// A Heartbeat for a heartbeat send; otherwise a Batch of `log`'s entries send.first..send.last
// (which it holds), marked pipelined when the core cut it while another batch of the stream was
// unacknowledged. Both carry the commit id and the log's last id.
MasterMessage BuildMasterMessage(const core::Ready::Send& send, const storage::MemoryLog& log);

}  // namespace rlog::replication
