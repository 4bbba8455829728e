// rlog-wal-fill: writes a write-ahead log of N entries straight through storage::Wal, so the
// recovery benchmark (bench/recovery.sh) can start a master on a large log without sending
// millions of inserts first. The directory it writes is exactly what a master with
// `data_dir: DIR` would have written (DIR/wal, one log id, epoch 1).
//
// Usage: rlog-wal-fill --dir DIR --entries N [--size BYTES] [--batch N]
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "storage/file_system.h"
#include "storage/wal.h"

int main(int argc, char** argv) {
  CLI::App app{"Writes a WAL of N entries for the recovery benchmark"};
  std::string dir;
  uint64_t entries = 0;
  size_t size = 100;
  size_t batch = 4096;
  app.add_option("--dir", dir, "data directory (the WAL goes to DIR/wal)")->required();
  app.add_option("--entries", entries, "number of entries")->required();
  app.add_option("--size", size, "message bytes");
  app.add_option("--batch", batch, "entries per Append");
  CLI11_PARSE(app, argc, argv);

  using namespace rlog::storage;
  FileSystem& fs = PosixFileSystem();
  if (rlog::Status s = fs.CreateDir(dir); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  auto opened = Wal::Open(fs, dir + "/wal", WalOptions{}, [](std::vector<Entry>&&) {});
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().message().c_str());
    return 1;
  }
  Wal& wal = *opened.value();
  if (wal.last_id() != 0) {
    std::fprintf(stderr, "%s/wal is not empty\n", dir.c_str());
    return 1;
  }
  if (rlog::Status s = wal.SetLogIdentity("0123456789abcdef0123456789abcdef", 1); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  std::string message(size, 'x');
  std::vector<Entry> chunk;
  for (uint64_t id = 1; id <= entries;) {
    chunk.clear();
    for (size_t i = 0; i < batch && id <= entries; ++i, ++id) {
      chunk.push_back(Entry{id, 1700000000000 + static_cast<int64_t>(id), message, 1});
    }
    if (rlog::Status s = wal.Append(chunk); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      return 1;
    }
  }
  if (rlog::Status s = wal.Sync(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %llu entries of %zu bytes in %.2f s\n",
              static_cast<unsigned long long>(entries), size, secs);
  return 0;
}
