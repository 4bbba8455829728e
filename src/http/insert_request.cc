#include "http/insert_request.h"

#include <iterator>
#include <nlohmann/json.hpp>

namespace rlog::http {

using nlohmann::json;

uint64_t WriteConcern::Resolve(uint32_t cluster_size) const {
  switch (kind) {
    case Kind::kMajority:
      return cluster_size / 2 + 1;
    case Kind::kAll:
      return cluster_size;
    case Kind::kCount:
      break;
  }
  return count;
}

std::string WriteConcern::Label() const {
  switch (kind) {
    case Kind::kMajority:
      return "majority";
    case Kind::kAll:
      return "all";
    case Kind::kCount:
      break;
  }
  return std::to_string(count);
}

namespace {

// Events of nlohmann's SAX parser turned straight into an InsertRequest: no DOM, one pass, the
// message string moved out of the lexer. Values are checked as they arrive; the first problem
// is kept and reported once the whole body has proven to be valid JSON (a syntax error anywhere
// wins, as with a DOM parse).
class InsertSax final : public nlohmann::json_sax<json> {
 public:
  explicit InsertSax(InsertRequest* req) : req_(req) {}

  bool null() override { return Scalar(Kind::kOther); }
  bool boolean(bool) override { return Scalar(Kind::kOther); }
  bool number_integer(number_integer_t) override { return Scalar(Kind::kOther); }
  bool number_unsigned(number_unsigned_t n) override {
    if (depth_ != 1) return Scalar(Kind::kOther);
    unsigned_ = n;
    return Scalar(Kind::kUnsigned);
  }
  bool number_float(number_float_t, const string_t&) override { return Scalar(Kind::kOther); }
  bool binary(binary_t&) override { return Scalar(Kind::kOther); }
  bool string(string_t& s) override {
    if (depth_ != 1) return Scalar(Kind::kOther);
    string_ = &s;
    return Scalar(Kind::kString);
  }
  bool start_object(std::size_t) override {
    if (depth_ == 0) {
      seen_object_ = true;
    } else if (depth_ == 1) {
      Value(Kind::kOther);
    }
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0) {
      Fail("body must be a JSON object");
    } else if (depth_ == 1) {
      Value(Kind::kOther);
    }
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    syntax_error_ = true;
    return false;
  }

  // The outcome once sax_parse has returned.
  Status Finish() const {
    if (syntax_error_) return Status::InvalidArgument("body is not valid JSON (or not UTF-8)");
    if (!error_.empty()) return Status::InvalidArgument(error_);
    if (!seen_object_) return Status::InvalidArgument("body must be a JSON object");
    if (!have_message_) return Status::InvalidArgument("missing \"message\"");
    return Status::Ok();
  }

 private:
  enum class Kind { kString, kUnsigned, kOther };

  bool Scalar(Kind kind) {
    if (depth_ == 0) {
      Fail("body must be a JSON object");
    } else if (depth_ == 1) {
      Value(kind);
    }
    return true;
  }
  void Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  // The value of the top-level field key_ (a string in *string_, a number in unsigned_).
  void Value(Kind kind) {
    static constexpr const char* kFields[] = {"message", "writeConcern", "w", "timeoutMs",
                                              "idempotencyKey"};
    for (unsigned i = 0; i < std::size(kFields); ++i) {
      if (key_ != kFields[i]) continue;
      if (seen_ & (1u << i)) return Fail("field \"" + key_ + "\" is given twice");
      seen_ |= 1u << i;
    }
    if (key_ == "message") {
      if (kind != Kind::kString) return Fail("\"message\" must be a string");
      req_->message = std::move(*string_);
      have_message_ = true;
    } else if (key_ == "writeConcern" || key_ == "w") {
      if ((seen_ & 0b110) == 0b110) return Fail("give \"writeConcern\" or \"w\", not both");
      if (kind == Kind::kString && *string_ == "majority") {
        req_->concern.kind = WriteConcern::Kind::kMajority;
      } else if (kind == Kind::kString && *string_ == "all") {
        req_->concern.kind = WriteConcern::Kind::kAll;
      } else if (kind == Kind::kUnsigned && unsigned_ >= 1) {
        req_->concern.kind = WriteConcern::Kind::kCount;
        req_->concern.count = unsigned_;
      } else {
        Fail("\"" + key_ + "\" must be a positive integer, \"majority\" or \"all\"");
      }
    } else if (key_ == "timeoutMs") {
      if (kind != Kind::kUnsigned || unsigned_ == 0) {
        return Fail("\"timeoutMs\" must be a positive integer");
      }
      req_->timeout_ms = unsigned_;
    } else if (key_ == "idempotencyKey") {
      if (kind != Kind::kString || string_->empty() || string_->size() > kMaxIdempotencyKeyBytes) {
        return Fail("\"idempotencyKey\" must be a non-empty string of at most " +
                    std::to_string(kMaxIdempotencyKeyBytes) + " bytes");
      }
      req_->idempotency_key = std::move(*string_);
    } else {
      Fail("unknown field \"" + key_ +
           "\" (expected message, writeConcern or w, timeoutMs, idempotencyKey)");
    }
  }

  InsertRequest* req_;
  int depth_ = 0;
  bool seen_object_ = false;
  bool syntax_error_ = false;
  bool have_message_ = false;
  std::string key_;    // The current top-level field.
  unsigned seen_ = 0;  // Bit i: kFields[i] was given.
  string_t* string_ = nullptr;
  number_unsigned_t unsigned_ = 0;
  std::string error_;  // The first problem found; empty while there is none.
};

}  // namespace

Result<InsertRequest> ParseInsertRequest(std::string_view body) {
  if (body.empty()) return Status::InvalidArgument("empty body: expected a JSON object");
  InsertRequest req;
  InsertSax sax(&req);
  json::sax_parse(body.begin(), body.end(), &sax, nlohmann::detail::input_format_t::json,
                  /*strict=*/true);
  if (Status s = sax.Finish(); !s.ok()) return s;
  return req;
}

}  // namespace rlog::http
