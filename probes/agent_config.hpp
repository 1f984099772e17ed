// SPDX-License-Identifier: Apache-2.0
// The SSM Agent's own configuration file, amazon-ssm-agent.json: the keys that change where it
// connects.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ssm_doctor {

// Only the connectivity keys; an empty string in the file counts as unset, as in the agent.
struct agent_config {
    std::optional<std::string> region;          // Agent.Region (signing region)
    std::optional<std::string> service_domain;  // Agent.ServiceDomain
    std::optional<std::string> ssm_endpoint;    // Ssm.Endpoint
    std::optional<std::string> mgs_endpoint;    // Mgs.Endpoint (ssmmessages)
    std::optional<std::string> mgs_region;      // Mgs.Region
    std::optional<std::string> mds_endpoint;    // Mds.Endpoint (ec2messages)
    std::optional<std::string> s3_endpoint;     // S3.Endpoint
    std::optional<std::string> kms_endpoint;    // Kms.Endpoint
};

class agent_config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Throws agent_config_error naming the place (line and column for broken JSON, the key path
// such as "Mgs.Endpoint" for a wrong type).
agent_config parse_agent_config(std::string_view json_text);

struct agent_config_observation {
    std::filesystem::path path;
    bool present = false;
    std::optional<std::string> error;  // unreadable or invalid: the message, values stay unset
    agent_config values;
};

agent_config_observation read_agent_config(const std::filesystem::path& path);

}  // namespace ssm_doctor
