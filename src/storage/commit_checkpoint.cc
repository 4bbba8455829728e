#include "storage/commit_checkpoint.h"

#include <charconv>
#include <string_view>

#include "storage/crc32c.h"

namespace rlog::storage {

namespace {

constexpr std::string_view kFileName = "commit";
constexpr std::string_view kTempName = "commit.tmp";
constexpr std::string_view kMagic = "rlog-commit 1 ";

std::string Hex(uint32_t v) {
  char buf[8];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, 16);
  return std::string(buf, end);
}

}  // namespace

Result<std::optional<CommitCheckpoint>> LoadCommitCheckpoint(FileSystem& fs,
                                                             const std::string& data_dir) {
  const std::string path = JoinPath(data_dir, kFileName);
  Result<std::string> read = ReadFileToString(fs, path);
  if (!read.ok()) {
    if (read.status().code() == Status::Code::kNotFound) return std::optional<CommitCheckpoint>();
    return read.status();
  }
  const std::string& text = read.value();
  auto damaged = [&](std::string_view what) {
    return Status::Corruption(path + ": " + std::string(what));
  };
  // "<magic><log id> <commit id> <crc>\n", read from the end: the log id is the master's string.
  if (text.size() < kMagic.size() || text.compare(0, kMagic.size(), kMagic) != 0 ||
      text.back() != '\n') {
    return damaged("not a commit checkpoint, or torn");
  }
  const size_t crc_at = text.rfind(' ', text.size() - 2);
  const size_t id_at = crc_at == std::string::npos ? crc_at : text.rfind(' ', crc_at - 1);
  if (id_at == std::string::npos || id_at < kMagic.size()) return damaged("missing fields");
  const std::string_view covered(text.data(), crc_at);
  uint32_t crc = 0;
  const char* crc_end = text.data() + text.size() - 1;
  auto [p, ec] = std::from_chars(text.data() + crc_at + 1, crc_end, crc, 16);
  if (ec != std::errc() || p != crc_end) return damaged("bad checksum field");
  if (crc32c::Value(covered) != crc) return damaged("checksum mismatch");
  CommitCheckpoint out;
  out.log_id = text.substr(kMagic.size(), id_at - kMagic.size());
  const char* id_end = text.data() + crc_at;
  auto [q, ec2] = std::from_chars(text.data() + id_at + 1, id_end, out.commit_id);
  if (ec2 != std::errc() || q != id_end || out.log_id.empty()) return damaged("bad fields");
  return std::optional<CommitCheckpoint>(std::move(out));
}

Status SaveCommitCheckpoint(FileSystem& fs, const std::string& data_dir,
                            const CommitCheckpoint& checkpoint) {
  if (checkpoint.log_id.empty()) return Status::InvalidArgument("commit checkpoint: no log id");
  std::string line =
      std::string(kMagic) + checkpoint.log_id + " " + std::to_string(checkpoint.commit_id);
  line += " " + Hex(crc32c::Value(line)) + "\n";

  const std::string temp = JoinPath(data_dir, kTempName);
  // A temporary file of an earlier attempt (a crash, a failed write) is never reused: its
  // pages may be in any state after a failed sync.
  if (Status s = fs.Remove(temp); !s.ok() && s.code() != Status::Code::kNotFound) return s;
  auto file = fs.OpenForAppend(temp, FileSystem::OpenMode::kCreateNew);
  if (!file.ok()) return file.status();
  WritableFile& f = *file.value();
  if (Status s = f.Append(line); !s.ok()) return s;
  if (Status s = f.Sync(); !s.ok()) return s;
  if (Status s = f.Close(); !s.ok()) return s;
  if (Status s = fs.Rename(temp, JoinPath(data_dir, kFileName)); !s.ok()) return s;
  return fs.SyncDir(data_dir);
}

}  // namespace rlog::storage
