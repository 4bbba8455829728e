#include "load_worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "http_response_parser.h"

namespace rlog::bench {
namespace {

constexpr auto kFirstBackoff = std::chrono::milliseconds(10);
constexpr auto kMaxBackoff = std::chrono::seconds(1);
constexpr size_t kReadChunk = size_t{64} * 1024;
constexpr int kMaxEvents = 256;

struct Connection {
  enum class Phase { kWaiting, kConnecting, kInFlight, kFinished };
  Phase phase = Phase::kWaiting;
  int fd = -1;
  bool connected_before = false;  // reopening it after a close counts as a reconnect
  bool want_write = false;        // EPOLLOUT is registered: the request did not fit at once
  size_t written = 0;
  int failures_in_row = 0;
  Clock::time_point sent_at;
  Clock::time_point retry_at;
  Clock::duration backoff = kFirstBackoff;
  HttpResponseParser parser;
};

class Worker {
 public:
  Worker(const LoadPlan& plan, int connections, std::string* first_error)
      : plan_(plan),
        first_error_(first_error),
        conns_(connections),
        unfinished_(connections),
        buffer_(kReadChunk) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  }
  ~Worker() {
    for (Connection& c : conns_) close_fd(c);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  LoadStats run();

 private:
  bool in_window(Clock::time_point t) const { return t >= plan_.warmup_end && t < plan_.deadline; }
  void open(Connection& c, Clock::time_point now);
  void on_event(Connection& c, uint32_t events);
  void on_connected(Connection& c, Clock::time_point now);
  void start_request(Connection& c, Clock::time_point now);
  void flush(Connection& c);
  void on_readable(Connection& c);
  void on_response(Connection& c);
  void on_failure(Connection& c, const std::string& what, int err);
  void open_due(Clock::time_point now);
  void watch(Connection& c, int op, uint32_t events);
  void close_fd(Connection& c);
  void note_error(const std::string& message);

  const LoadPlan& plan_;
  std::string* first_error_;
  int epoll_fd_ = -1;
  std::vector<Connection> conns_;  // never resized: epoll keeps pointers into it
  int unfinished_;                 // connections not in kFinished
  Clock::time_point next_retry_ = Clock::time_point::max();
  std::vector<char> buffer_;
  LoadStats stats_;
};

LoadStats Worker::run() {
  if (epoll_fd_ < 0) {
    note_error(std::string("epoll_create1: ") + std::strerror(errno));
    return std::move(stats_);
  }
  const Clock::time_point start = Clock::now();
  for (Connection& c : conns_) open(c, start);
  epoll_event events[kMaxEvents];
  while (unfinished_ > 0) {
    const Clock::time_point now = Clock::now();
    if (now >= plan_.deadline) break;
    if (next_retry_ <= now) open_due(now);
    const auto wait = std::min(plan_.deadline, next_retry_) - now;
    const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents,
                             static_cast<int>(std::clamp<int64_t>(wait_ms, 0, 1000)));
    if (n < 0 && errno != EINTR) {
      note_error(std::string("epoll_wait: ") + std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      on_event(*static_cast<Connection*>(events[i].data.ptr), events[i].events);
    }
  }
  return std::move(stats_);
}

void Worker::open(Connection& c, Clock::time_point now) {
  const sockaddr* addr = reinterpret_cast<const sockaddr*>(&plan_.address);
  c.fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    on_failure(c, "socket", errno);
    return;
  }
  const int one = 1;
  ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(c.fd, addr, plan_.address_len) == 0) {
    watch(c, EPOLL_CTL_ADD, EPOLLIN);
    on_connected(c, now);
  } else if (errno == EINPROGRESS) {
    c.phase = Connection::Phase::kConnecting;
    watch(c, EPOLL_CTL_ADD, EPOLLOUT);
  } else {
    on_failure(c, "connect", errno);
  }
}

void Worker::on_event(Connection& c, uint32_t events) {
  if (c.phase == Connection::Phase::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      on_failure(c, "connect", err);
      return;
    }
    watch(c, EPOLL_CTL_MOD, EPOLLIN);
    on_connected(c, Clock::now());
    return;
  }
  if (c.phase != Connection::Phase::kInFlight) return;
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) on_readable(c);
  if (c.phase == Connection::Phase::kInFlight && c.want_write && (events & EPOLLOUT) != 0) {
    flush(c);
  }
}

void Worker::on_connected(Connection& c, Clock::time_point now) {
  if (c.connected_before && in_window(now)) ++stats_.reconnects;
  c.connected_before = true;
  start_request(c, now);
}

void Worker::start_request(Connection& c, Clock::time_point now) {
  if (plan_.budget != nullptr && plan_.budget->fetch_sub(1, std::memory_order_relaxed) <= 0) {
    close_fd(c);
    c.phase = Connection::Phase::kFinished;
    --unfinished_;
    return;
  }
  c.parser.reset();
  c.written = 0;
  c.sent_at = now;
  c.phase = Connection::Phase::kInFlight;
  flush(c);
}

void Worker::flush(Connection& c) {
  const std::string& request = plan_.request;
  while (c.written < request.size()) {
    const ssize_t n =
        ::send(c.fd, request.data() + c.written, request.size() - c.written, MSG_NOSIGNAL);
    if (n > 0) {
      c.written += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.want_write) watch(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
      c.want_write = true;
      return;
    } else {
      on_failure(c, "send", n < 0 ? errno : 0);
      return;
    }
  }
  if (c.want_write) watch(c, EPOLL_CTL_MOD, EPOLLIN);
  c.want_write = false;
}

void Worker::on_readable(Connection& c) {
  const ssize_t n = ::recv(c.fd, buffer_.data(), buffer_.size(), 0);
  if (n > 0) {
    const size_t used = c.parser.feed(std::string_view(buffer_.data(), static_cast<size_t>(n)));
    if (c.parser.state() == HttpResponseParser::State::kError) {
      on_failure(c, "bad response: " + c.parser.error(), 0);
    } else if (c.parser.state() == HttpResponseParser::State::kDone) {
      if (used < static_cast<size_t>(n)) {
        on_failure(c, "bytes after the end of a response", 0);
      } else {
        on_response(c);
      }
    }
  } else if (n == 0) {
    c.parser.on_eof();
    if (c.parser.state() == HttpResponseParser::State::kDone) {
      on_response(c);
    } else {
      on_failure(c, "server closed the connection before the end of a response", 0);
    }
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    on_failure(c, "recv", errno);
  }
}

void Worker::on_response(Connection& c) {
  const Clock::time_point now = Clock::now();
  const int status = c.parser.status();
  if (in_window(now)) {
    const bool ok =
        plan_.ok_status != 0 ? status == plan_.ok_status : status >= 200 && status < 300;
    if (ok) {
      ++stats_.ok;
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.sent_at);
      stats_.latency_ns.record(static_cast<uint64_t>(ns.count()));
    } else if (status >= 400 && status < 500) {
      ++stats_.errors_4xx;
    } else if (status >= 500 && status < 600) {
      ++stats_.errors_5xx;
    } else {
      ++stats_.errors_other;
    }
  }
  c.failures_in_row = 0;
  c.backoff = kFirstBackoff;
  // An answer that came before the whole request was sent leaves the stream in an unknown state.
  if (!c.parser.keep_alive() || c.written < plan_.request.size()) {
    close_fd(c);
    open(c, now);
  } else {
    start_request(c, now);
  }
}

void Worker::on_failure(Connection& c, const std::string& what, int err) {
  const Clock::time_point now = Clock::now();
  if (in_window(now)) ++stats_.errors_io;
  note_error(err != 0 ? what + ": " + std::strerror(err) : what);
  close_fd(c);
  // A first failure on a working connection reopens at once; repeated ones back off.
  if (++c.failures_in_row == 1 && c.connected_before) {
    open(c, now);
    return;
  }
  c.phase = Connection::Phase::kWaiting;
  c.retry_at = now + c.backoff;
  c.backoff = std::min<Clock::duration>(c.backoff * 2, kMaxBackoff);
  next_retry_ = std::min(next_retry_, c.retry_at);
}

void Worker::open_due(Clock::time_point now) {
  next_retry_ = Clock::time_point::max();
  for (Connection& c : conns_) {
    if (c.phase != Connection::Phase::kWaiting) continue;
    if (c.retry_at <= now) {
      open(c, now);
    } else {
      next_retry_ = std::min(next_retry_, c.retry_at);
    }
  }
}

void Worker::watch(Connection& c, int op, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = &c;
  if (::epoll_ctl(epoll_fd_, op, c.fd, &ev) != 0) {
    note_error(std::string("epoll_ctl: ") + std::strerror(errno));
  }
}

void Worker::close_fd(Connection& c) {
  if (c.fd >= 0) ::close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
  c.want_write = false;
}

void Worker::note_error(const std::string& message) {
  if (first_error_ != nullptr && first_error_->empty()) *first_error_ = message;
}

}  // namespace

void LoadStats::merge(const LoadStats& other) {
  ok += other.ok;
  errors_4xx += other.errors_4xx;
  errors_5xx += other.errors_5xx;
  errors_other += other.errors_other;
  errors_io += other.errors_io;
  reconnects += other.reconnects;
  latency_ns.merge(other.latency_ns);
}

LoadStats run_load(const LoadPlan& plan, int connections, std::string* first_error) {
  Worker worker(plan, connections, first_error);
  return worker.run();
}

}  // namespace rlog::bench
