// The fuzz targets' reader of their input: the fuzzer's bytes as a sequence of choices.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

namespace rlog::fuzz {

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
