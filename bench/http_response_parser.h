// HttpResponseParser: an incremental parser for one HTTP/1.1 response at a time, for a client
// that keeps exactly one request outstanding per connection.
//
// It frames the response (Content-Length, chunked, or body-until-close) and keeps the status and
// whether the connection may be reused; body bytes are counted, not stored. Feed it whatever the
// socket returned; it stops at the end of the response. Not thread-safe (one per connection).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rlog::bench {

class HttpResponseParser {
 public:
  enum class State { kInProgress, kDone, kError };

  // Forgets everything: ready for the next response on the same connection.
  void reset();

  // Consumes bytes of the current response and returns how many it used. It uses fewer than
  // data.size() only when it reached kDone or kError: bytes after the end of a response answer
  // no request of this client and are the caller's protocol error.
  size_t feed(std::string_view data);

  // The peer closed the connection: completes a body delimited by close, otherwise kError.
  void on_eof();

  State state() const { return state_; }
  int status() const { return status_; }
  // Whether the connection may carry the next request (false after "Connection: close", an
  // HTTP/1.0 answer without keep-alive, or a body delimited by close).
  bool keep_alive() const { return keep_alive_; }
  const std::string& error() const { return error_; }

 private:
  enum class Phase {
    kStatusLine,
    kHeaders,
    kBody,
    kBodyUntilClose,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kFinished
  };

  void on_line(std::string_view line);
  void on_status_line(std::string_view line);
  void on_header(std::string_view line);
  void on_headers_end();
  void on_chunk_size(std::string_view line);
  void finish();
  void fail(std::string message);

  State state_ = State::kInProgress;
  Phase phase_ = Phase::kStatusLine;
  std::string line_;  // a partial line carried between feed() calls
  int status_ = 0;
  bool keep_alive_ = true;
  bool chunked_ = false;
  bool has_length_ = false;
  uint64_t remaining_ = 0;  // body or chunk bytes still expected
  std::string error_;
};

}  // namespace rlog::bench
