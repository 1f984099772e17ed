// SPDX-License-Identifier: Apache-2.0
// The verdict: a pure function from one check's observations and the current time to findings.
// No I/O, no clock, no logging here.
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

}  // namespace ssm_doctor
