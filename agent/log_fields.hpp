// SPDX-License-Identifier: Apache-2.0
// One `key=value` field of a log line, quoted as docs/logging.md says; shared by every logger.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ssm_doctor {

// `key=value`, the value quoted (with \" and \\ escaped, a newline as \n) when it is empty or
// holds spaces, quotes, '=' or newlines.
std::string kv(std::string_view key, std::string_view value);
std::string kv(std::string_view key, std::uint64_t value);

}  // namespace ssm_doctor
