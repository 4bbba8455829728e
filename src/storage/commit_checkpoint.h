// A sentinel's commit id on disk (Kafka's replication-offset-checkpoint): the highest id its
// master told it is committed, so that after a restart it can show its readers what it showed
// before, without waiting for a master (docs/ARCHITECTURE.md, "The commit id").
//
// The file <data_dir>/commit is one line, "rlog-commit 1 <log id> <commit id> <crc32c>\n", the
// CRC (hex) over everything before it. Save writes it to commit.tmp, syncs it, renames it over
// the old one and syncs the directory: a crash leaves the old file or the new one, never a mix.
// The value may be older than the log (it is saved now and then); an older commit id only
// shows readers less for a while, which is why losing it, or ignoring a damaged file, is safe.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"
#include "core/types.h"
#include "storage/file_system.h"

namespace rlog::storage {

struct CommitCheckpoint {
  std::string log_id;
  core::LogId commit_id = 0;
  bool operator==(const CommitCheckpoint&) const = default;
};

// The checkpoint in `data_dir`; nullopt when there is none. Corruption (naming the file) when
// the file is damaged: the caller logs it and starts from no checkpoint.
Result<std::optional<CommitCheckpoint>> LoadCommitCheckpoint(FileSystem& fs,
                                                             const std::string& data_dir);

// Replaces the checkpoint in `data_dir`, durably on success. On error the old file is left in
// place (it may be retried later: every attempt writes a new temporary file).
Status SaveCommitCheckpoint(FileSystem& fs, const std::string& data_dir,
                            const CommitCheckpoint& checkpoint);

}  // namespace rlog::storage
