// Process-wide logging set-up: plain text lines by default, or one JSON object per line
// (`log.format: json`) with the message escaped, for log shippers. gRPC's own log lines (errors
// only, unless GRPC_VERBOSITY says more) go through it too, prefixed "grpc: ".
#pragma once

#include "config/config.h"

namespace rlog::app {

void SetUpLogging(const Config& config);

}  // namespace rlog::app
