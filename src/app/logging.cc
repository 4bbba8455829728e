#include "app/logging.h"

#include <grpc/support/log.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <memory>
#include <string>

namespace rlog::app {

namespace {

// Appends `in` to `out` as the inside of a JSON string.
void AppendJsonEscaped(std::string_view in, spdlog::memory_buf_t& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : in) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20) {
          const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          out.append(esc, esc + sizeof esc);
        } else {
          out.push_back(ch);
        }
    }
  }
}

// %j: the log message, JSON-escaped.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    AppendJsonEscaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

// gRPC's own log lines (a refused TLS handshake, say) in rlog's format and at its level, instead
// of gRPC's format on stderr, which a JSON log collector could not parse.
void GrpcLog(gpr_log_func_args* args) {
  const spdlog::level::level_enum level =
      args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::err
      : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                : spdlog::level::debug;
  const char* slash = args->file != nullptr ? std::strrchr(args->file, '/') : nullptr;
  spdlog::log(level, "grpc: {} ({}:{})", args->message != nullptr ? args->message : "",
              slash != nullptr ? slash + 1 : (args->file != nullptr ? args->file : "?"),
              args->line);
}

}  // namespace

void SetUpLogging(const Config& config) {
  auto logger = spdlog::stderr_logger_mt("rlog");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  spdlog::memory_buf_t node;
  AppendJsonEscaped(config.node_id, node);
  if (config.log_format == LogFormat::kJson) {
    formatter->add_flag<JsonMessageFlag>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","node":")" + fmt::to_string(node) +
        R"(","msg":"%j"})");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [" + config.node_id + "] %v");
  }
  spdlog::set_formatter(std::move(formatter));
  gpr_set_log_function(GrpcLog);
}

}  // namespace rlog::app
