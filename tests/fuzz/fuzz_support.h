// What the fuzz targets share: the reader of their input (the fuzzer's bytes as a sequence of
// choices) and the check that reports a failure.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// Aborts, which libFuzzer (and the replay driver's test) reports as a failure with the input,
// saying what failed and `what` (the case's details: anything a std::string_view can hold).
#define FUZZ_CHECK(cond, what)                                          \
  do {                                                                  \
    if (!(cond)) ::rlog::fuzz::Fail(#cond, __FILE__, __LINE__, (what)); \
  } while (0)

namespace rlog::fuzz {

[[noreturn]] inline void Fail(const char* cond, const char* file, int line, std::string_view what) {
  std::fprintf(stderr, "%s:%d: check failed: %s\n%.*s\n", file, line, cond,
               static_cast<int>(what.size()), what.data());
  std::abort();
}

// Past the end of the input every choice is 0 and every byte string empty, so any input,
// however short, is a complete run.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  // A number in [0, max], from as few bytes as max needs.
  uint64_t Int(uint64_t max) {
    uint64_t v = 0;
    for (uint64_t range = max; range > 0; range >>= 8) v = (v << 8) | Byte();
    return max == UINT64_MAX ? v : v % (max + 1);
  }
  bool Bool() { return Byte() & 1; }
  // Up to n bytes of the input, as they are.
  std::string Bytes(size_t n) {
    n = std::min(n, size_ - pos_);
    std::string out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }
  bool empty() const { return pos_ >= size_; }

 private:
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace rlog::fuzz
