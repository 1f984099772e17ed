// SPDX-License-Identifier: Apache-2.0
// The verdict: a pure function from one check's observations and the current time to findings.
// No I/O, no clock, no logging here. The finding ids are listed in docs/findings.md.
//
// Limits: a missing connection is evidence only when every socket was attributed and the agent
// reaches the endpoint without its proxy; "resolves only to public addresses" looks at IPv4,
// since IMDS gives the VPC's IPv4 blocks only and a VPC's IPv6 addresses are global; the
// hibernation finding is inferred from ssm being unreachable and no connections, not read
// from the agent.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/observations.hpp"
#include "agent/service.hpp"

namespace ssm_doctor {

enum class severity { info, warning, critical };
enum class verdict { ok, warning, critical, unknown };  // values are the exit codes 0..3
enum class requirement { required, not_required, optional, unsupported };

std::string_view to_string(severity s);
std::string_view to_string(verdict v);
std::string_view to_string(requirement r);

struct finding {
    std::string id;  // stable snake_case name, listed in docs/findings.md
    severity level = severity::info;
    std::optional<service> svc;
    std::string message;
    std::string remedy;  // what to do; may be empty for plain information
};

struct verdict_policy {
    std::vector<std::string> ec2messages_unsupported_regions;
    int certificate_warning_days = 14;
    // After the worker starts, a new agent still polls ec2messages for about a minute and a
    // pooled socket may linger; an ec2messages session this young is normal.
    std::chrono::seconds ec2messages_grace{120};
};

struct report {
    observations seen;
    std::chrono::system_clock::time_point checked_at;
    verdict overall = verdict::unknown;
    std::vector<requirement> requirements;  // parallel to seen.endpoints
    std::vector<finding> findings;          // most severe first
};

// The agent version from which ec2messages is no longer needed once ssmmessages is up.
inline constexpr agent_version ec2messages_optional_from{{3, 3, 40, 0}};

report judge(observations seen, const verdict_policy& policy,
             std::chrono::system_clock::time_point now);

// The pieces judge() is made of, for renderers and tests.

// True when `region` is listed in policy.ec2messages_unsupported_regions (case-insensitive).
bool ec2messages_unsupported_in(const verdict_policy& policy, std::string_view region);

// What this agent needs of `svc`'s endpoint: ssm and ssmmessages are required; ec2messages is
// unsupported in the listed regions, not required from 3.3.40.0, and required below it or when
// the version is unknown; s3, kms, logs and monitoring are optional.
requirement requirement_for(service svc, const std::optional<agent_version>& version,
                            const std::optional<std::string>& region, const verdict_policy& policy);

// The interface VPC endpoint service name: com.amazonaws.<region>.<svc>, or
// cn.com.amazonaws.<region>.<svc> in the China regions.
std::string vpc_endpoint_service(std::string_view region, service svc);

// critical if any finding is critical; else unknown without a region; else warning if any
// finding is a warning; else ok.
verdict overall_verdict(const std::vector<finding>& findings, bool region_known);

}  // namespace ssm_doctor
