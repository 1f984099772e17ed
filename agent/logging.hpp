// SPDX-License-Identifier: Apache-2.0
// Log lines on stderr: `key=value` events with stable keys (docs/logging.md), no secrets.
#pragma once

#include <string>
#include <string_view>

#include "agent/log_fields.hpp"
#include "agent/verdict.hpp"

namespace ssm_doctor {

// Levels: debug, info, warn, error, off. Under systemd (JOURNAL_STREAM set) each line starts
// with the syslog priority "<N>" so journald files it at the right level and stamps the time.
void setup_logging(std::string_view level);

// One line per endpoint (debug), per finding (info or warn) and the verdict (info).
void log_report(const report& r);

}  // namespace ssm_doctor
