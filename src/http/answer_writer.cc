#include "http/answer_writer.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
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

void AnswerWriter::Write(int fd, std::string bytes) {
  Answer answer{fd, std::move(bytes), 0, Clock::now() + stall_timeout_};
  if (!SendSome(answer)) return;  // All of it at once: the usual case.
  answer.stall_deadline = Clock::now() + stall_timeout_;
  {
    std::lock_guard lock(mu_);
    if (stop_) {
      Abandon(answer.fd);
      return;
    }
    incoming_.push_back(std::move(answer));
    ++pending_;
  }
  Wake(wake_fd_);
}

size_t AnswerWriter::pending() const {
  std::lock_guard lock(mu_);
  return pending_;
}

bool AnswerWriter::SendSome(Answer& answer) {
  while (answer.sent < answer.bytes.size()) {
    const ssize_t n = ::send(answer.fd, answer.bytes.data() + answer.sent,
                             answer.bytes.size() - answer.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
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

void AnswerWriter::Done(size_t answers) {
  if (answers == 0) return;
  std::lock_guard lock(mu_);
  pending_ -= answers;
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
    const auto now = Clock::now();
    // A client that took nothing for stall_timeout: give up on it.
    const size_t stalled = std::erase_if(answers, [&](const Answer& a) {
      if (a.stall_deadline > now) return false;
      Abandon(a.fd);
      return true;
    });
    Done(stalled);
    polled.assign(1, pollfd{wake_fd_, POLLIN, 0});
    auto next_deadline = Clock::time_point::max();
    for (const Answer& a : answers) {
      polled.push_back(pollfd{a.fd, POLLOUT, 0});
      next_deadline = std::min(next_deadline, a.stall_deadline);
    }
    int timeout_ms = -1;
    if (!answers.empty()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(next_deadline - now).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, 60000));
    }
    if (::poll(polled.data(), polled.size(), timeout_ms) > 0) {
      if (polled[0].revents != 0) {
        uint64_t count;
        (void)!::read(wake_fd_, &count, sizeof count);
      }
      // polled[i + 1] is answers[i]: nothing was added or removed since the poll set was built.
      size_t i = 0;
      const size_t finished = std::erase_if(answers, [&](Answer& a) {
        const short revents = polled[++i].revents;
        if (revents == 0) return false;
        const size_t before = a.sent;
        if (!SendSome(a)) return true;
        if (a.sent > before) a.stall_deadline = Clock::now() + stall_timeout_;
        return false;
      });
      Done(finished);
    }
  }
  std::lock_guard lock(mu_);
  for (Answer& a : answers) Abandon(a.fd);
  for (Answer& a : incoming_) Abandon(a.fd);
  incoming_.clear();
  pending_ = 0;
}

}  // namespace rlog::http
