#include "http_response_parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace rlog::bench {
namespace {

constexpr size_t kMaxLine = size_t{16} * 1024;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool icontains(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (iequals(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

void HttpResponseParser::reset() { *this = HttpResponseParser(); }

size_t HttpResponseParser::feed(std::string_view data) {
  size_t used = 0;
  while (used < data.size() && state_ == State::kInProgress) {
    std::string_view rest = data.substr(used);
    switch (phase_) {
      case Phase::kBody:
      case Phase::kChunkData: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        remaining_ -= n;
        used += n;
        if (remaining_ == 0) {
          if (phase_ == Phase::kBody) {
            finish();
          } else {
            phase_ = Phase::kChunkDataEnd;
          }
        }
        break;
      }
      case Phase::kBodyUntilClose:
        used = data.size();
        break;
      default: {  // line-oriented phases
        const size_t eol = rest.find('\n');
        const size_t take = eol == std::string_view::npos ? rest.size() : eol + 1;
        if (line_.size() + take > kMaxLine) {
          fail("header or chunk line longer than 16 KiB");
          break;
        }
        line_.append(rest.substr(0, take));
        used += take;
        if (eol != std::string_view::npos) {
          std::string line = std::move(line_);
          line_.clear();
          line.pop_back();  // '\n'
          if (!line.empty() && line.back() == '\r') line.pop_back();
          on_line(line);
        }
        break;
      }
    }
  }
  return used;
}

void HttpResponseParser::on_eof() {
  if (state_ != State::kInProgress) return;
  if (phase_ == Phase::kBodyUntilClose) {
    finish();
  } else {
    fail("connection closed before the end of the response");
  }
}

void HttpResponseParser::on_line(std::string_view line) {
  switch (phase_) {
    case Phase::kStatusLine:
      on_status_line(line);
      break;
    case Phase::kHeaders:
      if (line.empty()) {
        on_headers_end();
      } else {
        on_header(line);
      }
      break;
    case Phase::kChunkSize:
      on_chunk_size(line);
      break;
    case Phase::kChunkDataEnd:
      if (!line.empty()) {
        fail("chunk data not followed by CRLF");
      } else {
        phase_ = Phase::kChunkSize;
      }
      break;
    case Phase::kTrailers:
      if (line.empty()) finish();
      break;
    default:
      fail("internal parser state");
      break;
  }
}

void HttpResponseParser::on_status_line(std::string_view line) {
  // "HTTP/1.1 200 OK"
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') {
    fail("bad status line: " + std::string(line.substr(0, 80)));
    return;
  }
  const char* digits = line.data() + 9;
  auto [end, ec] = std::from_chars(digits, digits + 3, status_);
  if (ec != std::errc() || end != digits + 3 || status_ < 100) {
    fail("bad status code: " + std::string(line.substr(0, 80)));
    return;
  }
  keep_alive_ = line[7] != '0';  // HTTP/1.0 closes unless it says keep-alive
  phase_ = Phase::kHeaders;
}

void HttpResponseParser::on_header(std::string_view line) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    fail("header without ':'");
    return;
  }
  const std::string_view name = trim(line.substr(0, colon));
  const std::string_view value = trim(line.substr(colon + 1));
  if (iequals(name, "content-length")) {
    uint64_t length = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (ec != std::errc() || end != value.data() + value.size()) {
      fail("bad Content-Length");
      return;
    }
    has_length_ = true;
    remaining_ = length;
  } else if (iequals(name, "transfer-encoding")) {
    if (!iequals(value, "chunked")) {
      fail("unsupported Transfer-Encoding: " + std::string(value));
      return;
    }
    chunked_ = true;
  } else if (iequals(name, "connection")) {
    if (icontains(value, "close")) keep_alive_ = false;
    if (icontains(value, "keep-alive")) keep_alive_ = true;
  }
}

void HttpResponseParser::on_headers_end() {
  if (status_ < 200) {  // 1xx: an interim answer; the real one follows
    if (status_ == 101) {
      fail("unexpected 101 Switching Protocols");
      return;
    }
    const bool keep = keep_alive_;
    reset();
    keep_alive_ = keep;
    return;
  }
  if (status_ == 204 || status_ == 304) {
    finish();
  } else if (chunked_) {
    phase_ = Phase::kChunkSize;
  } else if (has_length_) {
    if (remaining_ == 0) {
      finish();
    } else {
      phase_ = Phase::kBody;
    }
  } else {
    keep_alive_ = false;
    phase_ = Phase::kBodyUntilClose;
  }
}

void HttpResponseParser::on_chunk_size(std::string_view line) {
  const std::string_view size = trim(line.substr(0, line.find(';')));
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(size.data(), size.data() + size.size(), n, 16);
  if (size.empty() || ec != std::errc() || end != size.data() + size.size()) {
    fail("bad chunk size");
    return;
  }
  remaining_ = n;
  phase_ = n == 0 ? Phase::kTrailers : Phase::kChunkData;
}

void HttpResponseParser::finish() {
  phase_ = Phase::kFinished;
  state_ = State::kDone;
}

void HttpResponseParser::fail(std::string message) {
  phase_ = Phase::kFinished;
  state_ = State::kError;
  error_ = std::move(message);
}

}  // namespace rlog::bench
