// SPDX-License-Identifier: Apache-2.0
// Reading amazon-ssm-agent.json: the connectivity keys, with errors that name line, column or key.
#include "probes/agent_config.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "probes/unique_fd.hpp"

namespace ssm_doctor {
namespace {

using json = nlohmann::json;

// The real file is a few kilobytes; anything far larger is not the agent's configuration.
constexpr std::size_t max_config_bytes = 1024 * 1024;

struct line_column {
    std::size_t line = 1;
    std::size_t column = 1;
};

// nlohmann reports a byte offset one past the offending character; people want line and column.
line_column locate(std::string_view text, std::size_t byte) {
    line_column where;
    const std::size_t stop = byte > 0 ? std::min(byte - 1, text.size()) : 0;
    for (std::size_t i = 0; i < stop; ++i) {
        if (text[i] == '\n') {
            ++where.line;
            where.column = 1;
        } else {
            ++where.column;
        }
    }
    return where;
}

// The library's message after its "[json.exception.parse_error.101] parse error at ...: " head.
std::string_view parse_error_reason(std::string_view what) {
    const std::size_t colon = what.find(": ");
    return colon == std::string_view::npos ? what : what.substr(colon + 2);
}

// The section object ("Agent", "Ssm", ...) or null when the file does not have it.
const json* section(const json& root, const char* name) {
    const auto it = root.find(name);
    if (it == root.end() || it->is_null()) {
        return nullptr;
    }
    if (!it->is_object()) {
        throw agent_config_error(std::string(name) + " must be an object, found " +
                                 it->type_name());
    }
    return &*it;
}

// A string key of a section; null, missing and "" all mean unset, as for the agent's Go structs.
std::optional<std::string> string_key(const json* object, const char* section_name,
                                      const char* key) {
    if (object == nullptr) {
        return std::nullopt;
    }
    const auto it = object->find(key);
    if (it == object->end() || it->is_null()) {
        return std::nullopt;
    }
    if (!it->is_string()) {
        throw agent_config_error(std::string(section_name) + '.' + key +
                                 " must be a string, found " + it->type_name());
    }
    auto value = it->get<std::string>();
    if (value.empty()) {
        return std::nullopt;
    }
    return value;
}

}  // namespace

agent_config parse_agent_config(std::string_view json_text) {
    json root;
    try {
        root = json::parse(json_text.begin(), json_text.end());
    } catch (const json::parse_error& e) {
        const line_column where = locate(json_text, e.byte);
        throw agent_config_error("invalid JSON at line " + std::to_string(where.line) +
                                 ", column " + std::to_string(where.column) + ": " +
                                 std::string(parse_error_reason(e.what())));
    }
    if (!root.is_object()) {
        throw agent_config_error(std::string("the top level must be an object, found ") +
                                 root.type_name());
    }

    agent_config config;
    const json* agent = section(root, "Agent");
    config.region = string_key(agent, "Agent", "Region");
    config.service_domain = string_key(agent, "Agent", "ServiceDomain");
    const json* ssm = section(root, "Ssm");
    config.ssm_endpoint = string_key(ssm, "Ssm", "Endpoint");
    const json* mgs = section(root, "Mgs");
    config.mgs_endpoint = string_key(mgs, "Mgs", "Endpoint");
    config.mgs_region = string_key(mgs, "Mgs", "Region");
    const json* mds = section(root, "Mds");
    config.mds_endpoint = string_key(mds, "Mds", "Endpoint");
    const json* s3 = section(root, "S3");
    config.s3_endpoint = string_key(s3, "S3", "Endpoint");
    const json* kms = section(root, "Kms");
    config.kms_endpoint = string_key(kms, "Kms", "Endpoint");
    return config;
}

agent_config_observation read_agent_config(const std::filesystem::path& path) {
    agent_config_observation observation;
    observation.path = path;
    const auto fail = [&](const std::string& what) {
        observation.error = path.string() + ": " + what;
        return observation;
    };

    // O_NONBLOCK so that a FIFO put in the file's place cannot hang the probe.
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (fd.get() < 0) {
        const int error = errno;
        if (error == ENOENT || error == ENOTDIR) {
            return observation;  // the usual case: packages ship only the .template
        }
        observation.present = error == EACCES || error == EPERM;
        return fail(std::string("cannot open: ") + std::strerror(error));
    }
    observation.present = true;

    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) {
        return fail(std::string("cannot stat: ") + std::strerror(errno));
    }
    if (!S_ISREG(info.st_mode)) {
        return fail("not a regular file");
    }
    if (static_cast<std::uintmax_t>(info.st_size) > max_config_bytes) {
        return fail("too large (" + std::to_string(info.st_size) +
                    " bytes) to be the agent's "
                    "configuration");
    }

    std::string text;
    char buffer[8192];
    for (;;) {
        const ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(std::string("cannot read: ") + std::strerror(errno));
        }
        if (got == 0) {
            break;
        }
        text.append(buffer, static_cast<std::size_t>(got));
        if (text.size() > max_config_bytes) {
            return fail("grew past " + std::to_string(max_config_bytes) + " bytes while read");
        }
    }

    try {
        observation.values = parse_agent_config(text);
    } catch (const agent_config_error& e) {
        return fail(e.what());
    }
    return observation;
}

}  // namespace ssm_doctor
