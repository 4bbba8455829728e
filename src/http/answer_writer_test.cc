#include "http/answer_writer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace rlog::http {
namespace {

using namespace std::chrono_literals;

// A connected pair of stream sockets with small buffers: [0] for the writer, [1] the client.
struct Pair {
  Pair() {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    const int small = 4096;
    ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  ~Pair() {
    if (fds[1] >= 0) ::close(fds[1]);
  }
  // Reads until EOF or `timeout`; what came.
  std::string ReadAll(std::chrono::milliseconds timeout) const {
    std::string got;
    char buf[65536];
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fds[1], POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::read(fds[1], buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  int fds[2] = {-1, -1};
};

std::string Answer(size_t n) {
  std::string s;
  s.reserve(n);
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>('a' + i % 26));
  return s;
}

TEST(AnswerWriterTest, ASmallAnswerIsWrittenAtOnceAndTheSocketClosed) {
  AnswerWriter writer(10s);
  Pair pair;
  writer.Write(pair.fds[0], "HTTP/1.1 200 OK\r\n\r\n", "hi");
  EXPECT_EQ(writer.pending(), 0u);
  EXPECT_EQ(pair.ReadAll(5s), "HTTP/1.1 200 OK\r\n\r\nhi");  // EOF: the writer closed its end.
}

// Write returns while the client reads nothing; the rest follows, whole and in order, as it
// reads.
TEST(AnswerWriterTest, ALargeAnswerToAClientThatReadsLateArrivesWhole) {
  AnswerWriter writer(10s);
  Pair pair;
  const std::string answer = Answer(4 << 20);
  const auto start = std::chrono::steady_clock::now();
  writer.Write(pair.fds[0], answer.substr(0, 100), answer.substr(100));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "Write waited for the client";
  EXPECT_EQ(writer.pending(), 1u);
  EXPECT_GT(writer.pending_bytes(), 0u);
  std::this_thread::sleep_for(200ms);  // The client is slow.
  EXPECT_EQ(pair.ReadAll(20s), answer);
  EXPECT_EQ(writer.pending(), 0u);
  EXPECT_EQ(writer.pending_bytes(), 0u);
}

// A client that takes nothing for the stall timeout loses its connection: the answer would
// never arrive whole, and nothing else waits on it.
TEST(AnswerWriterTest, AClientThatStopsReadingIsCutOffAfterTheStallTimeout) {
  AnswerWriter writer(300ms);
  Pair pair;
  writer.Write(pair.fds[0], "", Answer(4 << 20));
  EXPECT_EQ(writer.pending(), 1u);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (writer.pending() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);  // Bounded.
  }
  EXPECT_EQ(writer.pending(), 0u);
  const std::string got = pair.ReadAll(5s);  // What the buffers held, then EOF...
  EXPECT_LT(got.size(), size_t{4} << 20);
  char byte;
  EXPECT_EQ(::recv(pair.fds[1], &byte, 1, MSG_DONTWAIT), 0) << "...not a socket left open";
}

// A client that goes away mid-answer: the writer drops it and goes on with the others.
TEST(AnswerWriterTest, AClientThatDisconnectsIsDroppedAndOthersAreServed) {
  AnswerWriter writer(10s);
  Pair gone, reader;
  writer.Write(gone.fds[0], "", Answer(2 << 20));
  writer.Write(reader.fds[0], "", Answer(2 << 20));
  EXPECT_EQ(writer.pending(), 2u);
  ::close(gone.fds[1]);
  gone.fds[1] = -1;
  EXPECT_EQ(reader.ReadAll(20s), Answer(2 << 20));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (writer.pending() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(writer.pending(), 0u);
}

// TCP on loopback, a client that reads slowly but steadily: the kernel says the socket is
// writable only once a third of its send buffer is free, which takes this client longer than the
// stall timeout; its queue shrinking shows it reads, and it gets the whole answer.
TEST(AnswerWriterTest, AClientThatReadsSlowlyButSteadilyIsNotCutOff) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int small = 8192;
  ::setsockopt(client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);  // Before connect: the window.
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const int server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  ASSERT_GE(server, 0);
  ::close(listener);
  const int send_buffer = 64 * 1024;
  ::setsockopt(server, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);

  AnswerWriter writer(100ms);
  const std::string answer = Answer(300 * 1024);
  writer.Write(server, "", answer);
  std::string got;
  char buf[2048];
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (got.size() < answer.size() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);  // About 200 KB/s: far slower than the socket could go.
    const ssize_t n = ::recv(client, buf, sizeof buf, 0);
    if (n <= 0) break;  // EOF: cut off.
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(client);
  EXPECT_EQ(got.size(), answer.size());
  EXPECT_TRUE(got == answer);
}

}  // namespace
}  // namespace rlog::http
