// rlog-fsync-overlap: do fdatasync calls on one file overlap on this disk? T threads each write
// `size` bytes at their own offsets of one preallocated file and fdatasync it, in a loop, for a
// fixed time; prints the fsyncs per second and the mean time of one write + fdatasync. If two
// threads make about twice the fsyncs of one at about the same latency, the disk overlaps
// flushes, and a write-ahead log could keep two in flight (docs/PERFORMANCE.md, "Durability").
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string path = "/tmp/rlog-fsync-overlap";
  int threads = 1;
  double seconds = 3;
  size_t size = 3000;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"rlog-fsync-overlap: fsyncs per second of T threads on one file"};
  app.add_option("--path", o.path, "scratch file (created, preallocated, removed)")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "threads, each write + fdatasync in a loop")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--seconds", o.seconds, "measured time")->capture_default_str();
  app.add_option("--size", o.size, "bytes per write")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  CLI11_PARSE(app, argc, argv);

  const int fd = open(o.path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    std::perror(o.path.c_str());
    return 1;
  }
  // Each thread gets a region of zeros written and synced ahead, as the WAL preallocates, so that
  // fdatasync has data to flush and no block allocation or size change to log.
  const off_t region = 64 << 20;
  const std::vector<char> zeros(1 << 20, 0);
  for (off_t off = 0; off < region * o.threads; off += static_cast<off_t>(zeros.size())) {
    if (pwrite(fd, zeros.data(), zeros.size(), off) != static_cast<ssize_t>(zeros.size())) {
      std::perror("preallocate");
      return 1;
    }
  }
  if (fsync(fd) != 0) {
    std::perror("fsync");
    return 1;
  }

  std::atomic<long> syncs{0};
  std::atomic<long> nanos{0};
  std::atomic<bool> failed{false};
  const Clock::time_point end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(o.seconds));
  std::vector<std::thread> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.emplace_back([&, t] {
      const std::vector<char> record(o.size, 'r');
      off_t off = region * t;
      while (Clock::now() < end && !failed) {
        const Clock::time_point start = Clock::now();
        if (off + static_cast<off_t>(o.size) > region * (t + 1)) off = region * t;
        if (pwrite(fd, record.data(), o.size, off) != static_cast<ssize_t>(o.size) ||
            fdatasync(fd) != 0) {
          failed = true;
          return;
        }
        off += static_cast<off_t>(o.size);
        nanos += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
        ++syncs;
      }
    });
  }
  for (std::thread& w : workers) w.join();
  close(fd);
  unlink(o.path.c_str());
  if (failed) {
    std::perror("write or fdatasync");
    return 1;
  }
  std::printf("threads %d: %.0f fsyncs/s, mean write + fdatasync %.0f us\n", o.threads,
              static_cast<double>(syncs) / o.seconds,
              syncs > 0 ? static_cast<double>(nanos) / static_cast<double>(syncs) / 1000 : 0.0);
  return 0;
}
