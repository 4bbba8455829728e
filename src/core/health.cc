#include "core/health.h"

namespace rlog::core {

const char* HealthName(Health health) {
  switch (health) {
    case Health::kHealthy:
      return "Healthy";
    case Health::kSuspected:
      return "Suspected";
    case Health::kUnhealthy:
      return "Unhealthy";
  }
  return "Unknown";
}

Health ClassifyHealth(Tick silent_for, bool connected, const HealthThresholds& thresholds) {
  if (silent_for >= thresholds.unhealthy_after) return Health::kUnhealthy;
  if (!connected || silent_for >= thresholds.suspect_after) return Health::kSuspected;
  return Health::kHealthy;
}

}  // namespace rlog::core
