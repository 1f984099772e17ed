// SPDX-License-Identifier: Apache-2.0
// ssm-doctor's own configuration (YAML), loaded and validated once at start.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "agent/service.hpp"

namespace ssm_doctor {

inline constexpr const char* default_config_path = "/etc/ssm-doctor/ssm-doctor.yaml";

// Regions launched in 2024 or later, where the agent cannot use ec2messages. Data: operators
// extend it with the `ec2messages_unsupported_regions` key without a rebuild.
std::vector<std::string> default_ec2messages_unsupported_regions();

// `ssm-doctor watch`: a full check every `interval`, a socket-table sample every `sample`, and
// a summary line every `summary` while nothing changes.
struct watch_settings {
    std::chrono::milliseconds interval{300'000};
    std::chrono::milliseconds sample{10'000};
    std::chrono::milliseconds summary{3'600'000};
};

// The JSON event log a CloudWatch agent can collect: size-capped, rotated to file.1 .. file.N.
struct events_settings {
    bool enabled = true;
    std::filesystem::path file = "/var/log/ssm-doctor/events.log";
    std::uint64_t max_bytes = 10u << 20;
    int keep = 3;
};

// Native shipping to CloudWatch Logs, on when `log_group` is set.
struct cloudwatch_settings {
    std::optional<std::string> log_group;
    std::optional<std::string> log_stream;  // default: the instance id
    std::optional<std::string> endpoint;    // https://host[:port]; default logs.<region>.<domain>
    std::string metric_namespace = "SSMDoctor";
    std::filesystem::path spool_dir = "/var/lib/ssm-doctor/spool";
    std::uint64_t spool_max_bytes = 64u << 20;
    std::chrono::milliseconds flush_timeout{5'000};  // how long a one-shot check waits to ship
};

struct doctor_config {
    std::optional<std::string> region;
    std::filesystem::path agent_binary = "/usr/bin/amazon-ssm-agent";
    std::filesystem::path agent_config = "/etc/amazon/ssm/amazon-ssm-agent.json";
    std::filesystem::path agent_log_dir = "/var/log/amazon/ssm";
    std::string imds_endpoint = "http://169.254.169.254";
    std::chrono::milliseconds imds_timeout{1000};
    std::optional<std::filesystem::path> tls_ca_file;
    std::chrono::milliseconds probe_timeout{3000};
    std::vector<service> probe_endpoints{service::ssm, service::ssmmessages, service::ec2messages};
    std::vector<std::string> ec2messages_unsupported_regions =
        default_ec2messages_unsupported_regions();
    watch_settings watch;
    events_settings events;
    cloudwatch_settings cloudwatch;
};

// Names the file, line and key: "ssm-doctor.yaml:4: probe.timeout: expected a number of
// seconds greater than 0, got \"fast\"".
class config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// `source` names the text in messages (usually the file path). Every key is optional: region,
// agent.{binary,config,log_dir} (absolute paths), imds.endpoint (http://host[:port]),
// imds.timeout (seconds, at most 60), tls.ca_file (absolute path, not opened here),
// probe.timeout (seconds, at most 300), probe.endpoints (service names),
// ec2messages_unsupported_regions (replaces the default list), watch.{interval,sample,summary}
// (seconds), events.{enabled,file,max_bytes,keep} and cloudwatch.{log_group,log_stream,endpoint,
// namespace,spool_dir,spool_max_bytes,flush_timeout}. Durations are numbers of seconds
// such as 2 or 0.5. Unknown keys, wrong types, bad values, keys given twice and YAML syntax
// errors throw config_error. An empty file, or one with only comments, means all defaults.
doctor_config parse_config(std::string_view yaml_text, std::string_view source);

// A missing file is fine when `required` is false (the default path); then defaults apply.
doctor_config load_config(const std::filesystem::path& path, bool required);

// The file's text for parse_config: "" for a missing file when `required` is false (all
// defaults). Throws config_error when it cannot be read.
std::string read_config_file(const std::filesystem::path& path, bool required);

}  // namespace ssm_doctor
