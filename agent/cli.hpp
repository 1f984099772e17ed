// SPDX-License-Identifier: Apache-2.0
// The command line: what the user asked for, parsed without touching anything else.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace ssm_doctor {

enum class output_format { table, json };

struct check_command {
    std::optional<std::filesystem::path> config_file;  // nullopt: the default, may be missing
    std::optional<std::string> region;
    std::optional<output_format> output;  // nullopt: table on a terminal, else json
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<std::string> log_level;
};

// `ssm-doctor watch`: the long-running mode for systemd (agent/watch.hpp).
struct watch_command {
    std::optional<std::filesystem::path> config_file;  // nullopt: the default, may be missing
    std::optional<std::string> log_level;              // nullopt: info
};

// `ssm-doctor _observe`: the watch daemon's check worker (check_worker.hpp). Internal: not in
// the usage text, no options; it talks JSON on stdin and stdout.
struct observe_command {};
struct help_command {};
struct version_command {};

using command =
    std::variant<check_command, watch_command, observe_command, help_command, version_command>;

// Thrown for a command line that cannot be understood; the message is for stderr.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

command parse_command_line(const std::vector<std::string>& args);

// Seconds as typed by a person ("3", "0.5") to milliseconds; nullopt unless 0 < value <= 300.
std::optional<std::chrono::milliseconds> parse_seconds(std::string_view text);

std::string usage_text();

}  // namespace ssm_doctor
