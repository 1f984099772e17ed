// SPDX-License-Identifier: Apache-2.0
// The AWS services whose endpoints ssm-doctor probes.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace ssm_doctor {

enum class service { ssm, ssmmessages, ec2messages, s3, kms, logs, monitoring };

inline constexpr std::array all_services{
    service::ssm, service::ssmmessages, service::ec2messages, service::s3,
    service::kms, service::logs,        service::monitoring};

std::string_view to_string(service s);
std::optional<service> parse_service(std::string_view name);

}  // namespace ssm_doctor
