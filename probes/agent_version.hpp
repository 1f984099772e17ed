// SPDX-License-Identifier: Apache-2.0
// The SSM Agent's four-part version number, and where it is read from in text the agent writes.
#pragma once

#include <array>
#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace ssm_doctor {

struct agent_version {
    std::array<unsigned, 4> parts{};  // major, minor, build, revision: 3.3.1142.0

    auto operator<=>(const agent_version&) const = default;
    std::string to_string() const;
};

// "3.3.1142.0" exactly: four decimal numbers, nothing around them. Garbage gives nullopt.
std::optional<agent_version> parse_agent_version(std::string_view text);

// The output of `amazon-ssm-agent -version`: "SSM Agent version: 3.3.1142.0".
std::optional<agent_version> version_from_version_output(std::string_view output);

// The last "amazon-ssm-agent - v<version>" line of amazon-ssm-agent.log (the agent writes one
// at each start, so the last one is the running version).
std::optional<agent_version> version_from_log(std::string_view log_text);

}  // namespace ssm_doctor
