// SPDX-License-Identifier: Apache-2.0
// IMDSv2's token request and headers, shared by the IMDS probe and the role-credentials provider.
#pragma once

#include <string_view>

namespace ssm_doctor::imds {

inline constexpr std::string_view token_path = "/latest/api/token";
inline constexpr std::string_view ttl_header = "X-aws-ec2-metadata-token-ttl-seconds";
inline constexpr std::string_view token_header = "X-aws-ec2-metadata-token";

// IMDS answers with a trailing newline now and then; tokens, MACs and role names never hold
// white space of their own.
inline std::string_view trim(std::string_view text) {
    constexpr std::string_view space = " \t\r\n";
    const auto first = text.find_first_not_of(space);
    if (first == std::string_view::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(space) - first + 1);
}

}  // namespace ssm_doctor::imds
