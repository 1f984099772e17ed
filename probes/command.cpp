// SPDX-License-Identifier: Apache-2.0
// posix_spawn with a pipe, a deadline and a guaranteed reap.
#include "probes/command.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probes/unique_fd.hpp"

namespace ssm_doctor {
namespace {

using std::chrono::steady_clock;

std::string errno_text(const char* what, int error) {
    return std::string(what) + ": " + std::strerror(error);
}

class spawn_actions {
public:
    spawn_actions() { ::posix_spawn_file_actions_init(&actions_); }
    spawn_actions(const spawn_actions&) = delete;
    spawn_actions& operator=(const spawn_actions&) = delete;
    ~spawn_actions() { ::posix_spawn_file_actions_destroy(&actions_); }
    posix_spawn_file_actions_t* get() { return &actions_; }

private:
    posix_spawn_file_actions_t actions_;
};

class spawn_attributes {
public:
    spawn_attributes() { ::posix_spawnattr_init(&attributes_); }
    spawn_attributes(const spawn_attributes&) = delete;
    spawn_attributes& operator=(const spawn_attributes&) = delete;
    ~spawn_attributes() { ::posix_spawnattr_destroy(&attributes_); }
    posix_spawnattr_t* get() { return &attributes_; }

private:
    posix_spawnattr_t attributes_;
};

// Owns the started child until it is reaped. If anything leaves run_command early (an
// exception from a string append, say), the destructor still kills the group and waits, so
// no zombie and no orphan outlive the call.
class child_process {
public:
    explicit child_process(pid_t pid) : pid_(pid) {}
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() {
        if (!reaped_) {
            kill_group();
            wait_blocking();
        }
    }

    // The child is its own group leader; until it is reaped its pid, and so the group id,
    // cannot be reused, which makes the group kill safe.
    void kill_group() const {
        if (::kill(-pid_, SIGKILL) != 0) {
            ::kill(pid_, SIGKILL);
        }
    }

    // Nullopt while the child runs.
    std::optional<int> try_wait() {
        int status = 0;
        pid_t got;
        do {
            got = ::waitpid(pid_, &status, WNOHANG);
        } while (got < 0 && errno == EINTR);
        if (got == pid_ || got < 0) {
            reaped_ = true;
            return got < 0 ? -1 : status;
        }
        return std::nullopt;
    }

    int wait_blocking() {
        int status = 0;
        pid_t got;
        do {
            got = ::waitpid(pid_, &status, 0);
        } while (got < 0 && errno == EINTR);
        reaped_ = true;
        return got < 0 ? -1 : status;
    }

private:
    pid_t pid_;
    bool reaped_ = false;
};

void record_status(command_result& result, int status) {
    if (status < 0) {
        result.outcome = command_outcome::exited;
        result.error = "the child's status was lost";
    } else if (WIFEXITED(status)) {
        result.outcome = command_outcome::exited;
        result.exit_status = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.outcome = command_outcome::signaled;
        result.exit_status = WTERMSIG(status);
    }
}

int poll_timeout_ms(steady_clock::time_point until) {
    const auto left = until - steady_clock::now();
    if (left <= steady_clock::duration::zero()) {
        return 0;
    }
    // Rounded up, so that poll never wakes just before the limit and spins.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return static_cast<int>(std::min<long long>(ms, 60'000));
}

}  // namespace

command_result run_command(const std::vector<std::string>& argv, steady_clock::time_point until,
                           std::size_t max_output) {
    const auto started = steady_clock::now();
    command_result result;
    const auto finish = [&]() -> command_result {
        result.elapsed =
            std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - started);
        return std::move(result);
    };
    if (argv.empty() || argv.front().empty()) {
        result.error = "no command given";
        return finish();
    }
    if (started >= until) {
        result.error = "no time left to run it";
        return finish();
    }

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        result.error = errno_text("pipe2", errno);
        return finish();
    }
    unique_fd read_end(pipe_fds[0]);
    unique_fd write_end(pipe_fds[1]);

    spawn_actions actions;
    spawn_attributes attributes;
    ::posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_adddup2(actions.get(), write_end.get(), STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(actions.get(), write_end.get(), STDERR_FILENO);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
    // Sockets other probes opened without O_CLOEXEC must not live on in the child.
    ::posix_spawn_file_actions_addclosefrom_np(actions.get(), STDERR_FILENO + 1);
#endif

    // Its own process group, so a timeout kills whatever it started too; default signal
    // handling and an empty mask, whatever this process has set for itself.
    sigset_t defaults;
    sigset_t empty;
    ::sigemptyset(&defaults);
    ::sigaddset(&defaults, SIGPIPE);
    ::sigaddset(&defaults, SIGINT);
    ::sigaddset(&defaults, SIGTERM);
    ::sigaddset(&defaults, SIGHUP);
    ::sigaddset(&defaults, SIGCHLD);
    ::sigemptyset(&empty);
    ::posix_spawnattr_setsigdefault(attributes.get(), &defaults);
    ::posix_spawnattr_setsigmask(attributes.get(), &empty);
    ::posix_spawnattr_setpgroup(attributes.get(), 0);
    ::posix_spawnattr_setflags(
        attributes.get(), POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& arg : argv) {
        args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);
    char path_entry[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    char locale_entry[] = "LC_ALL=C";
    char* environment[] = {path_entry, locale_entry, nullptr};

    pid_t pid = 0;
    const int spawn_error = ::posix_spawn(&pid, argv.front().c_str(), actions.get(),
                                          attributes.get(), args.data(), environment);
    if (spawn_error != 0) {
        result.error = errno_text("cannot run it", spawn_error);
        return finish();
    }
    child_process child(pid);
    write_end.reset();  // only the child writes; EOF comes when it and its children are done

    bool timed_out = false;
    char buffer[4096];
    for (;;) {
        pollfd wait_for{read_end.get(), POLLIN, 0};
        const int ready = ::poll(&wait_for, 1, poll_timeout_ms(until));
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            result.error = errno_text("poll", errno);
            timed_out = true;  // cannot watch it any more: treat like the limit
            break;
        }
        if (ready == 0) {
            if (steady_clock::now() >= until) {
                timed_out = true;
                break;
            }
            continue;
        }
        const ssize_t got = ::read(read_end.get(), buffer, sizeof buffer);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            result.error = errno_text("read", errno);
            break;
        }
        if (got == 0) {
            break;
        }
        const std::size_t room = max_output - std::min(max_output, result.output.size());
        const auto take = std::min(room, static_cast<std::size_t>(got));
        result.output.append(buffer, take);
        if (take < static_cast<std::size_t>(got)) {
            result.output_truncated = true;
        }
    }

    // The output is closed; the child may still be finishing. Waiting in short naps keeps
    // this portable to kernels without pidfd, and the wait is bounded by `until` anyway.
    while (!timed_out) {
        if (const auto status = child.try_wait()) {
            record_status(result, *status);
            return finish();
        }
        if (steady_clock::now() >= until) {
            timed_out = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }

    child.kill_group();
    child.wait_blocking();
    result.outcome = command_outcome::timed_out;
    return finish();
}

std::filesystem::path find_system_tool(std::string_view name) {
    static constexpr const char* directories[] = {
        "/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/local/sbin", "/snap/bin"};
    for (const char* directory : directories) {
        std::filesystem::path candidate = std::filesystem::path(directory) / name;
        struct stat info {};
        if (::stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
            ::access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
    }
    return {};
}

}  // namespace ssm_doctor
