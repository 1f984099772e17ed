// SPDX-License-Identifier: Apache-2.0
// Observations as JSON, losslessly, for the one boundary between processes inside ssm-doctor:
// the watch daemon runs each check in a worker process (`ssm-doctor _observe`, see
// check_worker.hpp) and gets the observations back this way. Not a public format: docs/json.md is
// the report's; this one carries the probes' raw data, and both ends are the same executable.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "agent/observations.hpp"

namespace ssm_doctor {

class codec_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One line of JSON: {"format":1,"observations":{...}}.
std::string encode_observations(const observations& seen);

// The inverse of encode_observations. Throws codec_error naming what is wrong (not JSON, another
// format, a missing or mistyped key) for anything else.
observations decode_observations(std::string_view text);

}  // namespace ssm_doctor
