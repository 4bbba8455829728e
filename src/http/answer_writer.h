// Writes large HTTP answers to their sockets without letting a client that stops reading hold a
// Pistache thread.
//
// Pistache 0.0.5's transport retries a write that met a full socket buffer (EAGAIN) in a loop
// instead of waiting for the socket (upstream pistacheio/pistache#949, #1114): a client that
// stops reading an answer larger than its socket's send buffer pins that reactor thread, which
// then serves nobody else, until it reads or disconnects. With two such clients a node with
// `http.threads: 2` stops answering, writes and /healthz included (docs/OPERATIONS.md, "Known
// gaps"). So the handler gives a large answer to this object instead, on a duplicate of the
// connection's descriptor: Write sends what the socket takes at once, on the caller's thread, and
// leaves the rest to this object's thread, which waits for the socket with poll() and gives up
// on a client that takes nothing for `stall_timeout` (its connection is shut down: the answer
// would never arrive whole anyway).
//
// Threads: Write and pending() from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rlog::http {

class AnswerWriter {
 public:
  explicit AnswerWriter(std::chrono::milliseconds stall_timeout);
  // Shuts down and closes the sockets of answers not written yet.
  ~AnswerWriter();
  AnswerWriter(const AnswerWriter&) = delete;
  AnswerWriter& operator=(const AnswerWriter&) = delete;

  // Writes `bytes` (a whole answer: status line, headers and body) to the stream socket `fd`,
  // which this object owns from now on and closes when done. Never waits for the client.
  void Write(int fd, std::string bytes);

  // Answers whose rest waits for their client.
  size_t pending() const;

 private:
  struct Answer {
    int fd;
    std::string bytes;
    size_t sent;
    std::chrono::steady_clock::time_point stall_deadline;
  };
  // Sends what the socket takes. False once the answer is done with: all sent, or a failed send
  // (the client went away); its socket is then closed.
  static bool SendSome(Answer& answer);
  void Run();
  // `answers` are done with (written, or given up).
  void Done(size_t answers);

  const std::chrono::milliseconds stall_timeout_;
  int wake_fd_ = -1;  // An eventfd: Write and the destructor wake the thread's poll().
  mutable std::mutex mu_;
  std::vector<Answer> incoming_;  // Handed over by Write. Guarded by mu_.
  size_t pending_ = 0;            // Answers not done with. Guarded by mu_.
  bool stop_ = false;             // Guarded by mu_.
  std::thread thread_;            // Last: starts once everything above is set.
};

}  // namespace rlog::http
