// A sentinel's health, from how long the master has not heard from it.
//
// Healthy -> Suspected after `suspect_after` silent ticks, -> Unhealthy after `unhealthy_after`.
// A sentinel without a live stream is at best Suspected: it cannot be reached right now, but a
// short reconnect should not count as an outage. Any message from the sentinel makes it Healthy.
#pragma once

#include "core/types.h"

namespace rlog::core {

struct HealthThresholds {
  Tick suspect_after = 100;
  Tick unhealthy_after = 300;
};

Health ClassifyHealth(Tick silent_for, bool connected, const HealthThresholds& thresholds);

}  // namespace rlog::core
