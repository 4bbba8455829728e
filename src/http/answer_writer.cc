#include "http/answer_writer.h"

#include <linux/sockios.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

namespace rlog::http {

namespace {
using Clock = std::chrono::steady_clock;

void Wake(int wake_fd) {
  const uint64_t one = 1;
  (void)!::write(wake_fd, &one, sizeof one);  // Only fails when the counter is saturated: awake.
}

// The client will not get the rest: end the connection (Pistache's descriptor sees it too).
void Abandon(int fd) {
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}
}  // namespace

AnswerWriter::AnswerWriter(std::chrono::milliseconds stall_timeout)
    : stall_timeout_(stall_timeout), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  thread_ = std::thread([this] { Run(); });
}

AnswerWriter::~AnswerWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  Wake(wake_fd_);
  thread_.join();
  ::close(wake_fd_);
}

void AnswerWriter::Write(int fd, std::string head, std::string body) {
  Answer answer{fd, std::move(head), std::move(body), 0, {}, 0};
  if (!SendSome(answer)) return;  // All of it at once: the usual case.
  answer.stall_deadline = Clock::now() + stall_timeout_;
  answer.queued = Queued(fd);
  {
    std::lock_guard lock(mu_);
    if (stop_) {
      Abandon(answer.fd);
      return;
    }
    ++pending_;
    pending_bytes_ += answer.size();
    incoming_.push_back(std::move(answer));
  }
  Wake(wake_fd_);
}

size_t AnswerWriter::pending() const {
  std::lock_guard lock(mu_);
  return pending_;
}

size_t AnswerWriter::pending_bytes() const {
  std::lock_guard lock(mu_);
  return pending_bytes_;
}

bool AnswerWriter::SendSome(Answer& answer) {
  while (answer.sent < answer.size()) {
    iovec parts[2];
    int count = 0;
    if (answer.sent < answer.head.size()) {
      parts[count++] = {answer.head.data() + answer.sent, answer.head.size() - answer.sent};
    }
    const size_t body_sent =
        answer.sent > answer.head.size() ? answer.sent - answer.head.size() : 0;
    if (body_sent < answer.body.size()) {
      parts[count++] = {answer.body.data() + body_sent, answer.body.size() - body_sent};
    }
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = static_cast<size_t>(count);
    const ssize_t n = ::sendmsg(answer.fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      answer.sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return true;
    } else {
      ::close(answer.fd);  // The client went away (EPIPE, ECONNRESET): nobody to answer.
      return false;
    }
  }
  ::close(answer.fd);
  return false;
}

int AnswerWriter::Queued(int fd) {
  int queued = 0;
  return ::ioctl(fd, SIOCOUTQ, &queued) == 0 ? queued : -1;
}

void AnswerWriter::Done(size_t answers, size_t bytes) {
  if (answers == 0) return;
  std::lock_guard lock(mu_);
  pending_ -= answers;
  pending_bytes_ -= bytes;
}

void AnswerWriter::Run() {
  std::vector<Answer> answers;
  std::vector<pollfd> polled;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
      for (Answer& a : incoming_) answers.push_back(std::move(a));
      incoming_.clear();
    }
    // Each answer is kept, or done with (written, the client gone, or cut); the kept ones are
    // moved to the front, in order.
    size_t kept = 0, done = 0, done_bytes = 0;
    auto keep_or_drop = [&](size_t i, bool keep) {
      if (keep) {
        if (kept != i) answers[kept] = std::move(answers[i]);
        ++kept;
      } else {
        ++done;
        done_bytes += answers[i].size();
      }
    };
    // A client that took nothing for stall_timeout: give up on it, unless its socket's queue
    // shrank meanwhile (it reads, slowly).
    const auto now = Clock::now();
    for (size_t i = 0; i < answers.size(); ++i) {
      Answer& a = answers[i];
      if (a.stall_deadline <= now) {
        const int queued = Queued(a.fd);
        if (queued >= 0 && queued < a.queued) {
          a.queued = queued;
          a.stall_deadline = now + stall_timeout_;
        } else {
          Abandon(a.fd);
          keep_or_drop(i, false);
          continue;
        }
      }
      keep_or_drop(i, true);
    }
    answers.resize(kept);
    Done(done, done_bytes);

    polled.assign(1, pollfd{wake_fd_, POLLIN, 0});
    auto next_deadline = Clock::time_point::max();
    for (const Answer& a : answers) {
      polled.push_back(pollfd{a.fd, POLLOUT, 0});
      next_deadline = std::min(next_deadline, a.stall_deadline);
    }
    int timeout_ms = -1;
    if (!answers.empty()) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(next_deadline - Clock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, 60000));
    }
    if (::poll(polled.data(), polled.size(), timeout_ms) <= 0) continue;
    if (polled[0].revents != 0) {
      uint64_t count;
      (void)!::read(wake_fd_, &count, sizeof count);
    }
    // polled[i + 1] is answers[i]: nothing was added or removed since the poll set was built.
    kept = done = done_bytes = 0;
    for (size_t i = 0; i < answers.size(); ++i) {
      Answer& a = answers[i];
      if (polled[i + 1].revents != 0) {
        const size_t before = a.sent;
        const size_t size = a.size();
        if (!SendSome(a)) {
          ++done;
          done_bytes += size;
          continue;
        }
        if (a.sent > before) {
          a.stall_deadline = Clock::now() + stall_timeout_;
          a.queued = Queued(a.fd);
        }
      }
      keep_or_drop(i, true);
    }
    answers.resize(kept);
    Done(done, done_bytes);
  }
  std::lock_guard lock(mu_);
  for (Answer& a : answers) Abandon(a.fd);
  for (Answer& a : incoming_) Abandon(a.fd);
  incoming_.clear();
  pending_ = 0;
  pending_bytes_ = 0;
}

}  // namespace rlog::http
