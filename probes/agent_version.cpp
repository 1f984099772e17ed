// SPDX-License-Identifier: Apache-2.0
// Parsing the agent's version number out of its own output and its log.
#include "probes/agent_version.hpp"

#include <charconv>

namespace ssm_doctor {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_space(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_space(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

// The run of characters up to the next blank: the version token after a marker.
std::string_view first_word(std::string_view text) {
    std::size_t end = 0;
    while (end < text.size() && !is_space(text[end])) {
        ++end;
    }
    return text.substr(0, end);
}

}  // namespace

std::string agent_version::to_string() const {
    return std::to_string(parts[0]) + '.' + std::to_string(parts[1]) + '.' +
           std::to_string(parts[2]) + '.' + std::to_string(parts[3]);
}

std::optional<agent_version> parse_agent_version(std::string_view text) {
    agent_version version;
    const char* cursor = text.data();
    const char* const end = text.data() + text.size();
    for (std::size_t i = 0; i < version.parts.size(); ++i) {
        if (i > 0) {
            if (cursor == end || *cursor != '.') {
                return std::nullopt;
            }
            ++cursor;
        }
        // from_chars takes digits only (no sign, no blanks) and reports overflow.
        const auto [next, ec] = std::from_chars(cursor, end, version.parts[i]);
        if (ec != std::errc{} || next == cursor) {
            return std::nullopt;
        }
        cursor = next;
    }
    if (cursor != end) {
        return std::nullopt;
    }
    return version;
}

std::optional<agent_version> version_from_version_output(std::string_view output) {
    static constexpr std::string_view marker = "SSM Agent version:";
    // Other lines (warnings of the Go runtime, for instance) may surround the one we want.
    std::size_t at = 0;
    while ((at = output.find(marker, at)) != std::string_view::npos) {
        at += marker.size();
        std::string_view rest = output.substr(at);
        while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) {
            rest.remove_prefix(1);
        }
        if (auto version = parse_agent_version(first_word(rest))) {
            return version;
        }
    }
    return std::nullopt;
}

std::optional<agent_version> version_from_log(std::string_view log_text) {
    static constexpr std::string_view marker = "amazon-ssm-agent - v";
    // The agent writes this line at each start; scanning backwards finds the running version
    // without reading the whole log. Lines where the token does not parse are skipped.
    std::size_t at = log_text.size();
    while (at > 0) {
        const std::size_t found = log_text.rfind(marker, at - 1);
        if (found == std::string_view::npos) {
            break;
        }
        const std::string_view token = first_word(log_text.substr(found + marker.size()));
        if (auto version = parse_agent_version(trim(token))) {
            return version;
        }
        at = found;
    }
    return std::nullopt;
}

}  // namespace ssm_doctor
