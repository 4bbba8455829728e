#include "storage/file_system.h"

#include <cerrno>
#include <cstring>

namespace rlog::storage {

Result<std::string> ReadFileToString(FileSystem& fs, const std::string& path) {
  auto file = fs.OpenForRead(path);
  if (!file.ok()) return file.status();
  auto size = file.value()->Size();
  if (!size.ok()) return size.status();
  std::string data(size.value(), '\0');
  auto got = file.value()->ReadAt(0, data.data(), data.size());
  if (!got.ok()) return got.status();
  data.resize(got.value());
  return data;
}

Status CreateDirDurably(FileSystem& fs, const std::string& dir) {
  auto listed = fs.ListDir(dir);
  // An existing directory may be one that a process made and died before syncing its parent:
  // sync the parent again (once per start), or a power loss could still take the directory.
  // Best effort: the parent may be a read-only root or not ours to open, and an existing
  // directory must not stop the start.
  if (listed.ok()) {
    static_cast<void>(fs.SyncDir(ParentDir(dir)));
    return Status::Ok();
  }
  if (listed.status().code() != Status::Code::kNotFound) return listed.status();
  // Missing parents first, like mkdir -p (a data_dir under a directory nobody created yet).
  const std::string parent = ParentDir(dir);
  if (parent != dir && parent != "." && parent != "/") {
    if (Status s = CreateDirDurably(fs, parent); !s.ok()) return s;
  }
  if (Status s = fs.CreateDir(dir); !s.ok()) return s;
  return fs.SyncDir(ParentDir(dir));
}

Status WriteNewFileDurably(FileSystem& fs, const std::string& path, std::string_view content) {
  auto file = fs.OpenForAppend(path, FileSystem::OpenMode::kCreateNew);
  if (!file.ok()) return file.status();
  Status s = content.empty() ? Status::Ok() : file.value()->Append(content);
  if (s.ok()) s = file.value()->Sync();
  if (Status closed = file.value()->Close(); s.ok()) s = closed;
  if (s.ok()) s = fs.SyncDir(ParentDir(path));
  return s;
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string path = dir;
  if (path.back() != '/') path += '/';
  path += name;
  return path;
}

std::string ParentDir(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

Status ErrnoStatus(std::string_view op, const std::string& path, int err) {
  std::string message(op);
  message += ' ';
  message += path;
  message += ": ";
  message += std::strerror(err);
  if (err == ENOENT) return Status::NotFound(std::move(message));
  return Status::IOError(std::move(message));
}

}  // namespace rlog::storage
