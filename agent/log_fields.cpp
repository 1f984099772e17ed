// SPDX-License-Identifier: Apache-2.0
// The quoting of log line values.
#include "agent/log_fields.hpp"

namespace ssm_doctor {

std::string kv(std::string_view key, std::string_view value) {
    std::string out(key);
    out += '=';
    if (!value.empty() && value.find_first_of(" \t\"=\\\n") == std::string_view::npos) {
        out += value;
        return out;
    }
    out += '"';
    for (const char c : value) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

std::string kv(std::string_view key, std::uint64_t value) {
    return kv(key, std::to_string(value));
}

}  // namespace ssm_doctor
