#include "http_response_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace rlog::bench {
namespace {

using State = HttpResponseParser::State;

// Feeds the whole text in pieces of `step` bytes; returns the bytes consumed.
size_t feed_in_steps(HttpResponseParser& p, std::string_view text, size_t step) {
  size_t used = 0;
  while (used < text.size() && p.state() == State::kInProgress) {
    used += p.feed(text.substr(used, step));
  }
  return used;
}

TEST(HttpResponseParserTest, ContentLengthFramesTheBodyWhateverTheSplit) {
  const std::string text =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\": "
      "123}";
  for (size_t step = 1; step <= text.size(); ++step) {
    HttpResponseParser p;
    EXPECT_EQ(feed_in_steps(p, text, step), text.size()) << step;
    EXPECT_EQ(p.state(), State::kDone) << step;
    EXPECT_EQ(p.status(), 200);
    EXPECT_TRUE(p.keep_alive());
  }
}

TEST(HttpResponseParserTest, StopsAtTheEndOfTheResponse) {
  HttpResponseParser p;
  const std::string text = "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n";
  EXPECT_EQ(p.feed(text), text.find("HTTP/1.1 200"));
  EXPECT_EQ(p.state(), State::kDone);
  EXPECT_EQ(p.status(), 204);
}

TEST(HttpResponseParserTest, ChunkedBodyWithExtensionsAndTrailers) {
  const std::string text =
      "HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: Chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n";
  for (size_t step = 1; step <= text.size(); ++step) {
    HttpResponseParser p;
    EXPECT_EQ(feed_in_steps(p, text, step), text.size()) << step;
    EXPECT_EQ(p.state(), State::kDone) << step;
    EXPECT_EQ(p.status(), 503);
  }
}

TEST(HttpResponseParserTest, ConnectionCloseAndHttp10AreNotReused) {
  HttpResponseParser p;
  p.feed("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(p.state(), State::kDone);
  EXPECT_FALSE(p.keep_alive());

  p.reset();
  p.feed("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(p.state(), State::kDone);
  EXPECT_FALSE(p.keep_alive());

  p.reset();
  p.feed("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_TRUE(p.keep_alive());
}

TEST(HttpResponseParserTest, BodyWithoutLengthEndsAtClose) {
  HttpResponseParser p;
  p.feed("HTTP/1.0 200 OK\r\nServer: SimpleHTTP\r\n\r\n<html>");
  EXPECT_EQ(p.state(), State::kInProgress);
  p.on_eof();
  EXPECT_EQ(p.state(), State::kDone);
  EXPECT_FALSE(p.keep_alive());
}

TEST(HttpResponseParserTest, CloseInTheMiddleIsAnError) {
  HttpResponseParser p;
  p.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  p.on_eof();
  EXPECT_EQ(p.state(), State::kError);
}

TEST(HttpResponseParserTest, InterimContinueIsSkipped) {
  HttpResponseParser p;
  const std::string text =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(p.feed(text), text.size());
  EXPECT_EQ(p.state(), State::kDone);
  EXPECT_EQ(p.status(), 201);
}

TEST(HttpResponseParserTest, GarbageIsAnError) {
  for (std::string text : {"SSH-2.0-OpenSSH\r\n", "HTTP/1.1 2x0 OK\r\n",
                           "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
    HttpResponseParser p;
    p.feed(text);
    EXPECT_EQ(p.state(), State::kError) << text;
    EXPECT_FALSE(p.error().empty());
  }
}

}  // namespace
}  // namespace rlog::bench
