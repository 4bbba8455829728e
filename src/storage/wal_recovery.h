// Recovery of a WAL directory: reads every segment in id order in large chunks, verifies every
// record, hands the entries to a sink, and repairs what a crash can legitimately leave behind.
// Wal::Open runs it; it is a separate unit so the rules below sit in one place.
//
// Rules (docs/wal-format.md, "Recovery"):
// - every segment starts with a valid header; all headers name the same log; the first segment
//   starts at id 1 and each next one at the previous last id + 1; entry ids are contiguous;
//   entry epochs never decrease from entry to entry (an entry's epoch may be older than its
//   segment header's: a node copying old entries after it accepted a newer master); the log's
//   epoch is the highest of any header, entry or epoch mark (header epochs may decrease: a
//   truncation raises an earlier header before it removes later segments); an epoch mark
//   carries the next entry's id and an epoch newer than the entry before it, and no later
//   entry is older than it;
// - a record that fails verification in a closed (non-last) segment is Corruption;
// - in the last segment, a bad record followed by no valid record (a torn or zero-filled tail) is
//   cut off and reported; followed by a valid record it is corruption in the middle: Corruption;
// - a last segment whose header never reached the disk is removed; leftover *.tmp files too.
// Every Corruption names the file and the byte offset.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/entry.h"
#include "storage/file_system.h"

namespace rlog::storage {

struct WalOptions {
  // A new segment starts once the current one has reached this size (records never straddle
  // segments, so a segment can exceed it by one Append's worth).
  uint64_t segment_bytes = 64ull << 20;
  // The last segment is grown by writing this many zeros ahead of the appends (0: off), so that
  // most fdatasyncs find the file's size and blocks unchanged and write no inode
  // (docs/wal-format.md, "Preallocation"). A crash leaves the zeros as a tail recovery cuts.
  uint64_t preallocate_bytes = 4ull << 20;
  // Recovery reads segments in chunks of this size (no per-record system calls).
  size_t read_chunk_bytes = 8u << 20;
};

// What recovery found and repaired: log it, count it.
struct WalRecoveryReport {
  uint64_t segments = 0;           // Segment files recovered.
  uint64_t entries = 0;            // Entries handed to the sink.
  uint64_t truncated_bytes = 0;    // Torn or zero-filled tail cut from the last segment.
  uint64_t truncated_records = 0;  // Records that tail began (see CountRecordStarts).
  std::string truncated_file;      // Where the cut was made, and why.
  uint64_t truncated_offset = 0;
  std::string truncated_reason;
  uint64_t removed_files = 0;  // Leftover *.tmp files and a last segment without a header.
};

// An epoch mark (wal_format.h): entries 1..after_id are the log of the master of `epoch`.
struct EpochMark {
  LogId after_id = 0;
  uint64_t epoch = 0;

  bool operator==(const EpochMark&) const = default;
};

// Receives recovered entries in id order, in batches (one call per few thousand entries).
using EntryBatchSink = std::function<void(std::vector<Entry>&& batch)>;

// The state recovery leaves for the writer.
struct RecoveredWal {
  std::string log_id;  // Empty: a new log (no segment).
  uint64_t epoch = 0;  // Highest epoch of any header or record.
  LogId last_id = 0;
  uint64_t last_entry_epoch = 0;  // Epoch of entry last_id (0 without entries).
  std::vector<EpochMark> marks;   // Every epoch mark, in log order.
  std::string last_segment_path;  // Empty when there is no segment.
  LogId last_segment_first_id = 0;
  uint64_t last_segment_size = 0;  // After any truncation.
  uint32_t last_segment_version = 0;  // Format version of its header (0 when none).
  WalRecoveryReport report;
};

// Precondition: `dir` exists. On error (Corruption, IOError) the sink may already have received
// entries; the caller must discard them (and refuse to start).
Result<RecoveredWal> RecoverWal(FileSystem& fs, const std::string& dir, const WalOptions& options,
                                const EntryBatchSink& sink);

}  // namespace rlog::storage
