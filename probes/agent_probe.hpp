// SPDX-License-Identifier: Apache-2.0
// What is true of the SSM Agent on this host: installed or not, version, processes, proxy.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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
    // Target of /proc/<pid>/exe without " (deleted)"; empty when only comm could be read.
    std::filesystem::path exe;
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

// The agent's processes and the proxy their environment sets: /proc only, milliseconds. A
// check needs the proxy before it starts its network probes, long before the version is known.
struct agent_process_scan {
    std::vector<agent_process> processes;
    std::optional<proxy_settings> proxy;
    std::vector<std::string> notes;
};
agent_process_scan scan_agent_processes(const std::filesystem::path& proc_root);

// Blocking: reads files and runs short-lived commands without a shell. Never runs past
// `deadline`: a command still running then is killed and its answer counted as missing.
// The first form scans the processes itself; the second completes a scan made before.
agent_observation probe_agent(const agent_probe_options& options,
                              std::chrono::steady_clock::time_point deadline);
agent_observation probe_agent(const agent_probe_options& options,
                              std::chrono::steady_clock::time_point deadline,
                              agent_process_scan scan);

// --- Parsers behind probe_agent: pure functions on captured text, tested without a system. ---

// Field 22 of /proc/<pid>/stat: the start time in clock ticks after boot. Field 2, the command
// name in parentheses, may itself hold blanks and ')', so fields are counted after the LAST ')'.
// Nullopt for text that is not a stat line.
std::optional<std::uint64_t> parse_proc_stat_start_ticks(std::string_view stat_text);

// The "btime" line of /proc/stat: when the system booted, in seconds since the epoch.
std::optional<std::int64_t> parse_boot_time(std::string_view proc_stat_text);

// Boot time plus `ticks` clock ticks of `ticks_per_second` (sysconf(_SC_CLK_TCK)).
std::chrono::system_clock::time_point process_start_time(std::int64_t boot_time,
                                                         std::uint64_t ticks,
                                                         long ticks_per_second);

// /proc/<pid>/environ: NAME=value entries separated by NUL bytes. Entries without '=' or with
// an empty name are skipped; for a name given twice the first one counts, as in Go's os.Getenv.
using environment_map = std::map<std::string, std::string, std::less<>>;
environment_map parse_environ(std::string_view environ_text);

// The https proxy the agent's Go HTTP stack would use: HTTPS_PROXY, or https_proxy when the
// upper-case one is unset or empty; likewise NO_PROXY and no_proxy. Nullopt when no https
// proxy is set (a NO_PROXY alone changes nothing).
std::optional<proxy_settings> proxy_from_environment(const environment_map& environment, int pid);

// The basename of a /proc/<pid>/exe link target, without the " (deleted)" the kernel appends
// once the file was replaced (an agent upgrade leaves the old process running like that).
std::string exe_basename(std::string_view link_target);

// True for the agent's four executables.
bool is_agent_executable(std::string_view basename);

// The executable name behind a /proc/<pid>/comm value, which the kernel cuts to 15 characters
// ("ssm-session-wor" -> "ssm-session-worker"); empty when it is none of the agent's.
std::string agent_name_from_comm(std::string_view comm);

// What the package tools say, for `rpm -q --qf '%{VERSION}\n'`, `dpkg-query -W -f
// '${db:Status-Status} ${Version}'` ("installed 1:3.3.1142.0-1": epoch and Debian revision are
// dropped, and a package that is removed or only has config files left counts as absent) and
// `snap list amazon-ssm-agent` (the table row of that snap).
struct package_answer {
    bool installed = false;
    std::optional<agent_version> version;
};
package_answer parse_rpm_query(std::string_view output, int exit_status);
package_answer parse_dpkg_query(std::string_view output, int exit_status);
package_answer parse_snap_list(std::string_view output, int exit_status);

}  // namespace ssm_doctor
