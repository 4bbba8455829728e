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
// leaves the rest to this object's thread, which waits for the socket with poll(). It gives up on
// a client whose socket has taken nothing and whose send queue has not shrunk (SIOCOUTQ: the
// client read nothing) for `stall_timeout`: its connection is shut down, as the answer would
// never arrive whole anyway. (The queue matters: the kernel says a TCP socket is writable only
// once about a third of its send buffer, up to 4 MiB, is free, which a client that reads slowly
// but steadily may take longer than the timeout to free.)
//
// Threads: Write and the getters from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
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

  // Writes a whole answer, `head` (status line and headers) then `body`, to the stream socket
  // `fd`, which this object owns from now on and closes when done. Never waits for the client.
  void Write(int fd, std::string head, std::string body);

  // Answers whose rest waits for their client, and the bytes they hold.
  size_t pending() const;
  size_t pending_bytes() const;

 private:
  struct Answer {
    int fd;
    std::string head;
    std::string body;
    size_t sent;  // Of head, then body.
    std::chrono::steady_clock::time_point stall_deadline;
    int queued;  // The socket's send queue when last looked at (SIOCOUTQ).
    size_t size() const { return head.size() + body.size(); }
  };
  // Sends what the socket takes. False once the answer is done with: all sent, or a failed send
  // (the client went away); its socket is then closed.
  static bool SendSome(Answer& answer);
  // Bytes in the socket's send queue (not yet acknowledged by the client); -1 if unknown.
  static int Queued(int fd);
  void Run();
  // `answers` of `bytes` in all are done with (written, or given up).
  void Done(size_t answers, size_t bytes);

  const std::chrono::milliseconds stall_timeout_;
  int wake_fd_ = -1;  // An eventfd: Write and the destructor wake the thread's poll().
  mutable std::mutex mu_;
  std::vector<Answer> incoming_;  // Handed over by Write. Guarded by mu_.
  size_t pending_ = 0;            // Answers not done with. Guarded by mu_.
  size_t pending_bytes_ = 0;      // Their sizes. Guarded by mu_.
  bool stop_ = false;             // Guarded by mu_.
  std::thread thread_;            // Last: starts once everything above is set.
};

}  // namespace rlog::http
