// SPDX-License-Identifier: Apache-2.0
// Running a short-lived command without a shell, with a hard time limit and bounded output.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ssm_doctor {

enum class command_outcome {
    exited,       // ran to its end; exit_status holds the status
    signaled,     // ended by a signal it did not get from us
    timed_out,    // still running at the limit: its process group was killed and reaped
    not_started,  // could not be started (no such file, not executable, no resources)
};

struct command_result {
    command_outcome outcome = command_outcome::not_started;
    int exit_status = -1;  // exit code for `exited`, signal number for `signaled`
    std::string output;    // stdout and stderr interleaved, cut at the output limit
    bool output_truncated = false;
    std::string error;  // why it could not start, or the failure of a system call
    std::chrono::milliseconds elapsed{0};
};

// Runs argv[0] (an absolute path; no PATH search) with argv[1..] as its arguments, stdin from
// /dev/null, stdout and stderr into one pipe, in its own process group, with a minimal
// environment (PATH and LC_ALL=C). When `until` passes first, the whole group gets SIGKILL and
// the child is reaped before returning: no zombie and no stray process is left behind. Output
// past `max_output` bytes is read and dropped so that the child never blocks on a full pipe.
command_result run_command(const std::vector<std::string>& argv,
                           std::chrono::steady_clock::time_point until,
                           std::size_t max_output = 64 * 1024);

// The first executable regular file called `name` in the usual system directories, or an
// empty path. ssm-doctor looks there rather than in its own PATH, so a service environment
// and an interactive shell find the same tools.
std::filesystem::path find_system_tool(std::string_view name);

}  // namespace ssm_doctor
