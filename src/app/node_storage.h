// Opening a node's log from its configuration, shared by the master and the sentinel: the
// NodeLog options, the error text naming the data directory, the WAL metrics and the recovery
// log lines.
#pragma once

#include <memory>

#include "common/status.h"
#include "config/config.h"
#include "metrics/metrics.h"
#include "storage/file_system.h"
#include "storage/node_log.h"

namespace rlog::app {

// Where a node's data directory is read and written: the POSIX file system or, with
// --test-sync-journal (testing: power-loss tests), that file system journaling every durable
// change (storage/sync_journal_file_system.h).
class DataDirFileSystem {
 public:
  static Result<DataDirFileSystem> Open(const Config& config);
  storage::FileSystem& get() const { return journaled_ ? *journaled_ : storage::PosixFileSystem(); }

 private:
  std::unique_ptr<storage::FileSystem> journaled_;
};

// Opens (recovers) the node's log from `fs`: in memory without data_dir. With one, registers the
// WAL metrics and logs what recovery found. Errors name the data directory; a Corruption keeps its
// code and names the file and offset.
Result<std::unique_ptr<storage::NodeLog>> OpenNodeLog(const Config& config,
                                                      const DataDirFileSystem& fs,
                                                      metrics::Metrics& metrics,
                                                      storage::NodeLog::DurableCallback on_durable,
                                                      storage::NodeLog::ErrorCallback on_error);

// The master's mark that its log holds everything it ever counted itself for: the file
// <data_dir>/always-synced. It may count its own log as one answer of a take-over only with it
// (MasterNode::RecoverFromSentinels): a log written with fsync: never or interval may have lost,
// in a power loss, writes the master had counted itself for, whatever fsync says now.
// HasAlwaysSyncedMark: whether the file exists. SetAlwaysSyncedMark: creates it durably (file
// and directory synced); call once the log is durable and every later write is synced before
// it counts. ClearAlwaysSyncedMark: removes it durably; call at start, before any write, when the
// fsync policy is not always. Both do nothing when the mark is already as asked.
bool HasAlwaysSyncedMark(const DataDirFileSystem& fs, const std::string& data_dir);
Status SetAlwaysSyncedMark(const DataDirFileSystem& fs, const std::string& data_dir);
Status ClearAlwaysSyncedMark(const DataDirFileSystem& fs, const std::string& data_dir);

}  // namespace rlog::app
