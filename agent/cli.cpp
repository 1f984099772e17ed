// SPDX-License-Identifier: Apache-2.0
// Parsing of ssm-doctor's command line.
#include "agent/cli.hpp"

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

check_command parse_check(const std::vector<std::string>& args, std::size_t first) {
    check_command check;
    for (std::size_t i = first; i < args.size(); ++i) {
        std::string name = args[i];
        std::optional<std::string> inline_value;
        if (const auto eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
            inline_value = name.substr(eq + 1);
            name.resize(eq);
        }
        if (name == "--config") {
            const auto value = take_value(args, i, name, inline_value);
            if (value.empty()) {
                throw usage_error("--config needs a file name");
            }
            check.config_file = value;
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
            const auto value = take_value(args, i, name, inline_value);
            if (std::find(log_levels.begin(), log_levels.end(), value) == log_levels.end()) {
                throw usage_error("--log-level takes debug, info, warn, error or off, not \"" +
                                  value + "\"");
            }
            check.log_level = value;
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
    throw usage_error("unknown command \"" + first + "\"; try ssm-doctor --help");
}

std::string usage_text() {
    return R"(Usage:
  ssm-doctor check [--config FILE] [--region R] [--output table|json] [--timeout SECONDS]
                   [--log-level debug|info|warn|error|off]
  ssm-doctor --version
  ssm-doctor --help

check   Diagnose whether AWS Systems Manager can reach this instance: read the SSM Agent's
        version, configuration and live sessions, resolve and TLS-probe the endpoints it uses,
        and print the verdict with findings and fixes.

Options:
  --config FILE     configuration file (default /etc/ssm-doctor/ssm-doctor.yaml; a missing
                    default file is fine)
  --region R        region of the endpoints (default: config, then IMDS, then the agent's config)
  --output FORMAT   table (default on a terminal) or json (default otherwise)
  --timeout SECONDS deadline for all network probes together (default probe.timeout, 3)
  --log-level L     log lines on stderr (default: info when stderr is not a terminal, else warn)

Exit codes: 0 ok, 1 warning, 2 critical, 3 unknown or a usage/configuration error.
)";
}

}  // namespace ssm_doctor
