// SPDX-License-Identifier: Apache-2.0
// Parsing of ssm-doctor's command line.
#include "agent/cli.hpp"

#include <utility>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace ssm_doctor {
namespace {

const std::vector<std::string> log_levels{"debug", "info", "warn", "error", "off"};

// Takes the value of an option given as "--name value" or "--name=value".
std::string take_value(const std::vector<std::string>& args, std::size_t& i,
                       const std::string& name, const std::optional<std::string>& inline_value) {
    if (inline_value) {
        return *inline_value;
    }
    if (i + 1 >= args.size()) {
        throw usage_error(name + " needs a value");
    }
    return args[++i];
}

std::filesystem::path config_value(const std::string& value) {
    if (value.empty()) {
        throw usage_error("--config needs a file name");
    }
    return value;
}

std::string log_level_value(const std::string& value) {
    if (std::find(log_levels.begin(), log_levels.end(), value) == log_levels.end()) {
        throw usage_error("--log-level takes debug, info, warn, error or off, not \"" + value +
                          "\"");
    }
    return value;
}

// Splits "--name=value" into the name and its inline value.
std::pair<std::string, std::optional<std::string>> split_option(const std::string& arg) {
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (const auto eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name.resize(eq);
    }
    return {name, inline_value};
}

watch_command parse_watch(const std::vector<std::string>& args, std::size_t first) {
    watch_command watch;
    for (std::size_t i = first; i < args.size(); ++i) {
        const auto [name, inline_value] = split_option(args[i]);
        if (name == "--config") {
            watch.config_file = config_value(take_value(args, i, name, inline_value));
        } else if (name == "--log-level") {
            watch.log_level = log_level_value(take_value(args, i, name, inline_value));
        } else {
            throw usage_error("unknown option for watch: " + args[i]);
        }
    }
    return watch;
}

check_command parse_check(const std::vector<std::string>& args, std::size_t first) {
    check_command check;
    for (std::size_t i = first; i < args.size(); ++i) {
        const auto [name, inline_value] = split_option(args[i]);
        if (name == "--config") {
            check.config_file = config_value(take_value(args, i, name, inline_value));
        } else if (name == "--region") {
            check.region = take_value(args, i, name, inline_value);
        } else if (name == "--output") {
            const auto value = take_value(args, i, name, inline_value);
            if (value == "table") {
                check.output = output_format::table;
            } else if (value == "json") {
                check.output = output_format::json;
            } else {
                throw usage_error("--output takes table or json, not \"" + value + "\"");
            }
        } else if (name == "--timeout") {
            const auto value = take_value(args, i, name, inline_value);
            check.timeout = parse_seconds(value);
            if (!check.timeout) {
                throw usage_error("--timeout takes seconds greater than 0 and at most 300, not \"" +
                                  value + "\"");
            }
        } else if (name == "--log-level") {
            check.log_level = log_level_value(take_value(args, i, name, inline_value));
        } else {
            throw usage_error("unknown option for check: " + args[i]);
        }
    }
    return check;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_seconds(std::string_view text) {
    double seconds = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (text.empty() || err != std::errc{} || end != text.data() + text.size() ||
        !std::isfinite(seconds) || seconds <= 0 || seconds > 300) {
        return std::nullopt;
    }
    const auto ms = std::llround(seconds * 1000);
    if (ms < 1) {
        return std::nullopt;
    }
    return std::chrono::milliseconds(ms);
}

command parse_command_line(const std::vector<std::string>& args) {
    if (args.empty()) {
        throw usage_error("no command given; try ssm-doctor --help");
    }
    const auto& first = args.front();
    if (first == "--help" || first == "-h" || first == "help") {
        return help_command{};
    }
    if (first == "--version" || first == "version") {
        return version_command{};
    }
    if (first == "check") {
        return parse_check(args, 1);
    }
    if (first == "watch") {
        return parse_watch(args, 1);
    }
    if (first == "_observe" && args.size() == 1) {
        return observe_command{};
    }
    throw usage_error("unknown command \"" + first + "\"; try ssm-doctor --help");
}

std::string usage_text() {
    return R"(Usage:
  ssm-doctor check [--config FILE] [--region R] [--output table|json] [--timeout SECONDS]
                   [--log-level debug|info|warn|error|off]
  ssm-doctor watch [--config FILE] [--log-level debug|info|warn|error|off]
  ssm-doctor --version
  ssm-doctor --help

check   Diagnose whether AWS Systems Manager can reach this instance: read the SSM Agent's
        version, configuration and live sessions, resolve and TLS-probe the endpoints it uses,
        and print the verdict with findings and fixes.

watch   Run as a service (systemd Type=notify): a check every watch.interval, the agent's
        sessions sampled every watch.sample, a log line on stderr for each change and a summary
        every watch.summary otherwise. SIGHUP reloads the configuration; SIGTERM stops.

Options:
  --config FILE     configuration file (default /etc/ssm-doctor/ssm-doctor.yaml; a missing
                    default file is fine)
  --region R        region of the endpoints (default: config, then IMDS, then the agent's config)
  --output FORMAT   table (default on a terminal) or json (default otherwise)
  --timeout SECONDS deadline for all network probes together (default probe.timeout, 3)
  --log-level L     log lines on stderr (check: info when stderr is not a terminal, else warn;
                    watch: info)

Exit codes: 0 ok, 1 warning, 2 critical, 3 unknown or a usage/configuration error.
watch exits 0 when stopped, 3 when its configuration cannot be loaded at start.
)";
}

}  // namespace ssm_doctor
