// SPDX-License-Identifier: Apache-2.0
// Renderings of a report: JSON for scripts (schema_version 1) and a table for people.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/verdict.hpp"

namespace ssm_doctor {

inline constexpr int json_schema_version = 1;

// Keys keep their documented order (docs/json.md); the same names appear in log events.
nlohmann::ordered_json report_to_json(const report& r);

// `color`: ANSI colours for the verdict and severities (only on a terminal).
std::string render_table(const report& r, bool color);

// "2026-12-03T16:44:14Z"
std::string format_utc(std::chrono::system_clock::time_point t);

}  // namespace ssm_doctor
