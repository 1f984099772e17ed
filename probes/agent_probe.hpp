// SPDX-License-Identifier: Apache-2.0
// What is true of the SSM Agent on this host: installed or not, version, processes, proxy.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "probes/agent_version.hpp"

namespace ssm_doctor {

enum class install_method { unknown, rpm, deb, snap, other };
std::string_view to_string(install_method method);

// A running process whose /proc/<pid>/exe basename is one of the agent's executables
// (amazon-ssm-agent, ssm-agent-worker, ssm-session-worker, ssm-document-worker).
struct agent_process {
    int pid = 0;
    std::string name;  // executable basename, never the 15-character comm
    std::optional<std::chrono::system_clock::time_point> started;  // from /proc/<pid>/stat
};

// The proxy the agent's own environment sets (/proc/<pid>/environ). HTTPS_PROXY wins over
// https_proxy, NO_PROXY over no_proxy, as in the agent's HTTP stack; HTTP_PROXY is ignored
// because the agent never uses it for https or wss.
struct proxy_settings {
    std::string https_proxy;  // as written, e.g. "http://proxy.internal:3128"
    std::string no_proxy;     // comma list, may be empty
    int from_pid = 0;
};

struct agent_observation {
    bool installed = false;  // the binary exists, or a package manager knows the package
    std::optional<agent_version> version;
    std::string version_source;  // "binary", "log", "rpm", "dpkg", "snap" or "" when unknown
    install_method method = install_method::unknown;
    std::vector<agent_process> processes;
    std::optional<proxy_settings> proxy;
    // Modification time of hibernate.log in the agent's log directory, when present.
    std::optional<std::chrono::system_clock::time_point> hibernate_log_written;
    // What could not be seen and why ("cannot read /proc/412/exe: Permission denied").
    std::vector<std::string> notes;
};

struct agent_probe_options {
    std::filesystem::path binary = "/usr/bin/amazon-ssm-agent";
    std::filesystem::path log_dir = "/var/log/amazon/ssm";
    std::filesystem::path proc_root = "/proc";
    std::chrono::milliseconds version_timeout{2000};  // for `<binary> -version`
    bool ask_package_managers = true;                 // rpm -q, dpkg-query -W, snap list
};

// Blocking: reads files and runs short-lived commands without a shell. Never runs past
// `deadline`: a command still running then is killed and its answer counted as missing.
agent_observation probe_agent(const agent_probe_options& options,
                              std::chrono::steady_clock::time_point deadline);

}  // namespace ssm_doctor
