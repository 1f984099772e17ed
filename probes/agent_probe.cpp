// SPDX-License-Identifier: Apache-2.0
// Looking at the SSM Agent on this host: files, /proc, and short commands, never a shell.
#include "probes/agent_probe.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <future>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probes/command.hpp"
#include "probes/proxy.hpp"
#include "probes/unique_fd.hpp"

namespace ssm_doctor {
namespace {

using std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr std::string_view package_name = "amazon-ssm-agent";
constexpr std::size_t max_proc_file_bytes = 256 * 1024;  // environ is at most a few pages
constexpr std::size_t max_log_tail_bytes = 1024 * 1024;
constexpr std::size_t max_command_output = 64 * 1024;

constexpr std::string_view agent_executables[] = {"amazon-ssm-agent", "ssm-agent-worker",
                                                  "ssm-session-worker", "ssm-document-worker"};

// --- Reading: syscalls only, errors as errno values for the caller to word. ---

struct file_text {
    std::string text;
    int error = 0;  // errno of the failed step, 0 on success
};

// Reads a whole (small) file, or with `tail` only its last `limit` bytes. O_NONBLOCK keeps a
// FIFO planted in a log directory from hanging the probe.
file_text read_file(const fs::path& path, std::size_t limit, bool tail = false) {
    file_text result;
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) {
        result.error = errno;
        return result;
    }
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) {
        result.error = errno;
        return result;
    }
    if (S_ISDIR(info.st_mode)) {
        result.error = EISDIR;
        return result;
    }
    bool skipped_head = false;
    if (tail && S_ISREG(info.st_mode) && static_cast<std::uintmax_t>(info.st_size) > limit) {
        const off_t start = info.st_size - static_cast<off_t>(limit);
        if (::lseek(fd.get(), start, SEEK_SET) < 0) {
            result.error = errno;
            return result;
        }
        skipped_head = true;
    }
    char buffer[16384];
    while (result.text.size() < limit) {
        const std::size_t want = std::min(sizeof buffer, limit - result.text.size());
        const ssize_t got = ::read(fd.get(), buffer, want);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            result.error = errno;
            return result;
        }
        if (got == 0) {
            break;
        }
        result.text.append(buffer, static_cast<std::size_t>(got));
    }
    if (skipped_head) {
        // The first line is cut somewhere in its middle; drop it rather than misread it.
        const std::size_t newline = result.text.find('\n');
        result.text.erase(0, newline == std::string::npos ? result.text.size() : newline + 1);
    }
    return result;
}

struct link_text {
    std::string target;
    int error = 0;
};

link_text read_link(const fs::path& path) {
    link_text result;
    std::string buffer(8192, '\0');
    const ssize_t got = ::readlink(path.c_str(), buffer.data(), buffer.size());
    if (got < 0) {
        result.error = errno;
        return result;
    }
    buffer.resize(static_cast<std::size_t>(got));
    result.target = std::move(buffer);
    return result;
}

class directory_handle {
public:
    explicit directory_handle(const fs::path& path) : dir_(::opendir(path.c_str())) {}
    directory_handle(const directory_handle&) = delete;
    directory_handle& operator=(const directory_handle&) = delete;
    ~directory_handle() {
        if (dir_ != nullptr) {
            ::closedir(dir_);
        }
    }
    DIR* get() const { return dir_; }

private:
    DIR* dir_;
};

std::optional<int> parse_pid(std::string_view name) {
    int pid = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (name.empty() || ec != std::errc{} || end != name.data() + name.size() || pid <= 0) {
        return std::nullopt;
    }
    return pid;
}

std::vector<int> list_pids(const fs::path& proc_root, std::vector<std::string>& notes) {
    std::vector<int> pids;
    directory_handle dir(proc_root);
    if (dir.get() == nullptr) {
        notes.push_back("cannot list processes in " + proc_root.string() + ": " +
                        std::strerror(errno));
        return pids;
    }
    errno = 0;
    while (const dirent* entry = ::readdir(dir.get())) {
        if (const auto pid = parse_pid(entry->d_name)) {
            pids.push_back(*pid);
        }
        errno = 0;
    }
    if (errno != 0) {
        notes.push_back("listing processes in " + proc_root.string() +
                        " stopped early: " + std::strerror(errno));
    }
    std::sort(pids.begin(), pids.end());
    return pids;
}

std::string trim(std::string_view text) {
    constexpr std::string_view blanks = " \t\r\n";
    const std::size_t first = text.find_first_not_of(blanks);
    if (first == std::string_view::npos) {
        return {};
    }
    return std::string(text.substr(first, text.find_last_not_of(blanks) - first + 1));
}

// Command output quoted in a note: one line, printable, short.
std::string quote_output(std::string_view output) {
    std::string out;
    for (const char c : output.substr(0, 120)) {
        const auto byte = static_cast<unsigned char>(c);
        out.push_back(byte >= 0x20 && byte < 0x7f ? c : ' ');
    }
    if (output.size() > 120) {
        out += "...";
    }
    return "\"" + trim(out) + "\"";
}

std::string command_line(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& arg : argv) {
        if (!out.empty()) {
            out += ' ';
        }
        out += arg.find_first_of(" $%{}") == std::string::npos ? arg : "'" + arg + "'";
    }
    return out;
}

// The kernel marks a replaced executable with " (deleted)" at the end of the link.
std::string_view without_deleted_mark(std::string_view link_target) {
    constexpr std::string_view deleted = " (deleted)";
    if (link_target.ends_with(deleted)) {
        link_target.remove_suffix(deleted.size());
    }
    return link_target;
}

std::chrono::system_clock::time_point file_time(const struct stat& info) {
    const auto since_epoch =
        std::chrono::seconds(info.st_mtim.tv_sec) + std::chrono::nanoseconds(info.st_mtim.tv_nsec);
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(since_epoch));
}

// --- The probe's steps. ---

class agent_prober {
public:
    agent_prober(const agent_probe_options& options, steady_clock::time_point deadline)
        : options_(options), deadline_(deadline) {}

    agent_process_scan scan() {
        scan_processes();
        read_proxy();
        return {std::move(observation_.processes), std::move(observation_.proxy),
                std::move(observation_.notes)};
    }

    agent_observation run(agent_process_scan scan) {
        observation_.processes = std::move(scan.processes);
        observation_.proxy = std::move(scan.proxy);
        observation_.notes = std::move(scan.notes);
        read_hibernate_log();
        const fs::path binary = binary_to_run();
        version_from_binary(binary);
        if (!observation_.version) {
            version_from_agent_log();
        }
        ask_package_managers();
        decide_install_method(binary);
        if (observation_.installed && !observation_.version) {
            observation_.notes.push_back(
                "the agent's version could not be determined from its binary, its log or a "
                "package manager");
        }
        return std::move(observation_);
    }

private:
    // Processes: /proc/<pid>/exe names the executable; comm only when exe cannot be read.
    void scan_processes() {
        const auto pids = list_pids(options_.proc_root, observation_.notes);
        int exe_unreadable = 0;
        int named_by_comm = 0;
        int exe_errno = 0;
        int comm_unreadable = 0;
        int comm_errno = 0;
        for (const int pid : pids) {
            const fs::path dir = options_.proc_root / std::to_string(pid);
            agent_process process;
            process.pid = pid;
            const link_text exe = read_link(dir / "exe");
            if (exe.error == 0) {
                process.name = exe_basename(exe.target);
                if (!is_agent_executable(process.name)) {
                    continue;
                }
                process.exe = without_deleted_mark(exe.target);
            } else if (exe.error == ENOENT || exe.error == ESRCH) {
                continue;  // gone since the listing, a kernel thread, or a zombie
            } else {
                ++exe_unreadable;
                exe_errno = exe_errno == 0 ? exe.error : exe_errno;
                const file_text comm = read_file(dir / "comm", 64);
                if (comm.error != 0) {
                    if (comm.error != ENOENT && comm.error != ESRCH) {
                        ++comm_unreadable;
                        comm_errno = comm_errno == 0 ? comm.error : comm_errno;
                    }
                    continue;
                }
                process.name = agent_name_from_comm(trim(comm.text));
                if (process.name.empty()) {
                    continue;
                }
                ++named_by_comm;
            }
            if (!read_start_time(dir, process)) {
                continue;
            }
            observation_.processes.push_back(std::move(process));
        }
        if (named_by_comm > 0) {
            observation_.notes.push_back(
                "the names of " + std::to_string(named_by_comm) + " agent process(es) came from " +
                (options_.proc_root / "<pid>/comm").string() + " (cut to 15 characters) because " +
                (options_.proc_root / "<pid>/exe").string() + " could not be read for " +
                std::to_string(exe_unreadable) + " process(es): " + std::strerror(exe_errno));
        }
        if (comm_unreadable > 0) {
            observation_.notes.push_back(
                "neither exe nor comm could be read under " + options_.proc_root.string() +
                " for " + std::to_string(comm_unreadable) + " process(es) (" +
                std::strerror(comm_errno) + "); agent processes among them are not listed");
        }
    }

    // False when the process ended meanwhile: it is no longer there to report.
    bool read_start_time(const fs::path& dir, agent_process& process) {
        const fs::path stat_path = dir / "stat";
        const file_text stat = read_file(stat_path, 4096);
        if (stat.error == ENOENT || stat.error == ESRCH) {
            return false;
        }
        if (stat.error != 0) {
            observation_.notes.push_back("cannot read " + stat_path.string() + ": " +
                                         std::strerror(stat.error) + "; start time unknown");
            return true;
        }
        const auto ticks = parse_proc_stat_start_ticks(stat.text);
        if (!ticks) {
            observation_.notes.push_back(stat_path.string() +
                                         " has no start time where it should; start time unknown");
            return true;
        }
        const auto boot = boot_time();
        const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
        if (boot && ticks_per_second > 0) {
            process.started = process_start_time(*boot, *ticks, ticks_per_second);
        }
        return true;
    }

    // Read once; a failure is noted once for all processes.
    std::optional<std::int64_t> boot_time() {
        if (boot_time_read_) {
            return boot_time_;
        }
        boot_time_read_ = true;
        const fs::path path = options_.proc_root / "stat";
        const file_text stat = read_file(path, max_proc_file_bytes);
        if (stat.error != 0) {
            observation_.notes.push_back("cannot read " + path.string() + ": " +
                                         std::strerror(stat.error) +
                                         "; process start times unknown");
            return std::nullopt;
        }
        boot_time_ = parse_boot_time(stat.text);
        if (!boot_time_) {
            observation_.notes.push_back(path.string() +
                                         " has no btime line; process start times unknown");
        }
        return boot_time_;
    }

    // The supervisor's environment, else a worker's (they inherit it).
    void read_proxy() {
        std::vector<const agent_process*> candidates;
        for (const std::string_view name : {"amazon-ssm-agent", "ssm-agent-worker"}) {
            for (const auto& process : observation_.processes) {
                if (process.name == name) {
                    candidates.push_back(&process);
                }
            }
        }
        std::string failure;
        for (const agent_process* process : candidates) {
            const fs::path path = options_.proc_root / std::to_string(process->pid) / "environ";
            const file_text environ_file = read_file(path, max_proc_file_bytes);
            if (environ_file.error != 0) {
                if (failure.empty() && environ_file.error != ENOENT &&
                    environ_file.error != ESRCH) {
                    failure =
                        "cannot read " + path.string() + ": " + std::strerror(environ_file.error);
                }
                continue;
            }
            observation_.proxy =
                proxy_from_environment(parse_environ(environ_file.text), process->pid);
            if (observation_.proxy && !parse_proxy_url(observation_.proxy->https_proxy)) {
                // Redacted: the value may carry a user name and password.
                observation_.notes.push_back(
                    "the agent's https proxy setting is not a usable proxy URL: " +
                    redact_proxy_url(observation_.proxy->https_proxy));
            }
            return;
        }
        if (!failure.empty()) {
            observation_.notes.push_back(failure + "; the agent's proxy settings are unknown");
        }
    }

    void read_hibernate_log() {
        const fs::path path = options_.log_dir / "hibernate.log";
        struct stat info {};
        if (::stat(path.c_str(), &info) == 0) {
            observation_.hibernate_log_written = file_time(info);
        } else if (errno != ENOENT && errno != ENOTDIR) {
            observation_.notes.push_back("cannot stat " + path.string() + ": " +
                                         std::strerror(errno));
        }
    }

    // options.binary; when it is missing (a snap install), the running supervisor's executable.
    fs::path binary_to_run() {
        struct stat info {};
        if (::stat(options_.binary.c_str(), &info) == 0 && !S_ISDIR(info.st_mode)) {
            binary_present_ = true;
            return options_.binary;
        }
        const int error = errno;
        if (error != ENOENT && error != ENOTDIR) {
            observation_.notes.push_back("cannot stat " + options_.binary.string() + ": " +
                                         std::strerror(error));
        }
        for (const auto& process : observation_.processes) {
            if (process.name == "amazon-ssm-agent" && !process.exe.empty() &&
                ::stat(process.exe.c_str(), &info) == 0 && S_ISREG(info.st_mode)) {
                running_exe_present_ = true;
                return process.exe;
            }
        }
        return {};
    }

    // Each command gets the version timeout, cut short by the probe's deadline.
    std::optional<steady_clock::time_point> command_limit(const std::string& what,
                                                          std::vector<std::string>& notes) const {
        const auto now = steady_clock::now();
        const auto limit = std::min(now + options_.version_timeout, deadline_);
        if (limit <= now) {
            notes.push_back("skipped `" + what + "`: the probe's deadline had passed");
            return std::nullopt;
        }
        return limit;
    }

    // Runs a command; nullopt (with a note) unless it ran to its end.
    // `notes` is a parameter so that package tools can run on threads of their own.
    std::optional<command_result> run(const std::vector<std::string>& argv,
                                      std::vector<std::string>& notes) const {
        const std::string line = command_line(argv);
        const auto limit = command_limit(line, notes);
        if (!limit) {
            return std::nullopt;
        }
        const auto timeout =
            std::chrono::duration_cast<std::chrono::milliseconds>(*limit - steady_clock::now());
        command_result result = run_command(argv, *limit, max_command_output);
        switch (result.outcome) {
            case command_outcome::exited:
                return result;
            case command_outcome::timed_out:
                notes.push_back("`" + line + "` did not finish within " +
                                std::to_string(timeout.count()) + " ms and was killed");
                break;
            case command_outcome::signaled:
                notes.push_back("`" + line + "` was ended by signal " +
                                std::to_string(result.exit_status) + " (" +
                                ::strsignal(result.exit_status) + ")");
                break;
            case command_outcome::not_started:
                notes.push_back("cannot run `" + line + "`: " + result.error);
                break;
        }
        return std::nullopt;
    }

    void version_from_binary(const fs::path& binary) {
        if (binary.empty()) {
            return;
        }
        // -version must be the only argument (agents from 3.0.502.0).
        const std::vector<std::string> argv{binary.string(), "-version"};
        const auto result = run(argv, observation_.notes);
        if (!result) {
            return;
        }
        if (auto version = version_from_version_output(result->output)) {
            observation_.version = version;
            observation_.version_source = "binary";
            return;
        }
        observation_.notes.push_back(
            "`" + command_line(argv) + "` printed no version (exit status " +
            std::to_string(result->exit_status) + "): " + quote_output(result->output));
    }

    void version_from_agent_log() {
        const fs::path path = options_.log_dir / "amazon-ssm-agent.log";
        const file_text log = read_file(path, max_log_tail_bytes, true);
        if (log.error != 0) {
            if (log.error != ENOENT && log.error != ENOTDIR) {
                observation_.notes.push_back("cannot read " + path.string() + ": " +
                                             std::strerror(log.error));
            }
            return;
        }
        if (auto version = version_from_log(log.text)) {
            observation_.version = version;
            observation_.version_source = "log";
        }
    }

    // One package tool: absent tools are simply not asked.
    // One package tool: absent tools, and tools whose database is absent, are not asked.
    std::optional<package_answer> ask(std::string_view tool, std::vector<std::string> args,
                                      package_answer (*parse)(std::string_view, int),
                                      std::vector<std::string>& notes) const {
        const fs::path path = find_system_tool(tool);
        if (path.empty()) {
            return std::nullopt;
        }
        args.insert(args.begin(), path.string());
        const auto result = run(args, notes);
        if (!result) {
            return std::nullopt;
        }
        return parse(result->output, result->exit_status);
    }

    static bool exists(const char* path) {
        struct stat info {};
        return ::stat(path, &info) == 0;
    }

    // rpm and dpkg are asked at once: each takes some 10 ms, and a check waits for them. A
    // host has at most one of the two databases in practice, so usually one runs.
    void ask_package_managers() {
        if (!options_.ask_package_managers) {
            return;
        }
        const std::string package(package_name);
        std::vector<std::string> rpm_notes;
        std::vector<std::string> dpkg_notes;
        auto rpm = std::async(std::launch::async, [&]() -> std::optional<package_answer> {
            if (!exists("/var/lib/rpm") && !exists("/usr/lib/sysimage/rpm")) {
                return std::nullopt;
            }
            return ask("rpm", {"-q", "--qf", "%{VERSION}\n", package}, parse_rpm_query, rpm_notes);
        });
        if (exists("/var/lib/dpkg/status")) {
            dpkg_ = ask("dpkg-query", {"-W", "-f", "${db:Status-Status} ${Version}", package},
                        parse_dpkg_query, dpkg_notes);
        }
        rpm_ = rpm.get();
        for (auto* notes : {&rpm_notes, &dpkg_notes}) {
            observation_.notes.insert(observation_.notes.end(), notes->begin(), notes->end());
        }
        if (!(rpm_ && rpm_->installed) && !(dpkg_ && dpkg_->installed) &&
            exists("/var/lib/snapd")) {
            snap_ = ask("snap", {"list", package}, parse_snap_list, observation_.notes);
        }
        const std::pair<const std::optional<package_answer>*, const char*> answers[] = {
            {&rpm_, "rpm"}, {&dpkg_, "dpkg"}, {&snap_, "snap"}};
        for (const auto& [answer, source] : answers) {
            if (!observation_.version && *answer && (*answer)->version) {
                observation_.version = (*answer)->version;
                observation_.version_source = source;
            }
        }
    }

    void decide_install_method(const fs::path& binary) {
        const auto known = [](const std::optional<package_answer>& answer) {
            return answer && answer->installed;
        };
        bool snap_path = binary.string().starts_with("/snap/");
        for (const auto& process : observation_.processes) {
            snap_path = snap_path || process.exe.string().starts_with("/snap/");
        }
        observation_.installed =
            binary_present_ || running_exe_present_ || known(rpm_) || known(dpkg_) || known(snap_);
        if (snap_path || known(snap_)) {
            observation_.method = install_method::snap;
        } else if (known(rpm_)) {
            observation_.method = install_method::rpm;
        } else if (known(dpkg_)) {
            observation_.method = install_method::deb;
        } else if (binary_present_ || running_exe_present_) {
            observation_.method = install_method::other;
        }
    }

    const agent_probe_options& options_;
    steady_clock::time_point deadline_;
    agent_observation observation_;
    bool boot_time_read_ = false;
    std::optional<std::int64_t> boot_time_;
    bool binary_present_ = false;
    bool running_exe_present_ = false;
    std::optional<package_answer> rpm_;
    std::optional<package_answer> dpkg_;
    std::optional<package_answer> snap_;
};

std::optional<agent_version> version_prefix(std::string_view text) {
    // Package versions may carry more after the agent's four numbers ("3.3.1142.0-1").
    const std::size_t end = text.find_first_not_of("0123456789.");
    return parse_agent_version(text.substr(0, end));
}

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t at = 0;
    while (at < line.size()) {
        const std::size_t start = line.find_first_not_of(" \t\r", at);
        if (start == std::string_view::npos) {
            break;
        }
        const std::size_t end = line.find_first_of(" \t\r", start);
        out.push_back(line.substr(start, end == std::string_view::npos ? end : end - start));
        at = end == std::string_view::npos ? line.size() : end;
    }
    return out;
}

}  // namespace

std::string_view to_string(install_method method) {
    switch (method) {
        case install_method::unknown:
            return "unknown";
        case install_method::rpm:
            return "rpm";
        case install_method::deb:
            return "deb";
        case install_method::snap:
            return "snap";
        case install_method::other:
            return "other";
    }
    return "unknown";
}

agent_process_scan scan_agent_processes(const std::filesystem::path& proc_root) {
    agent_probe_options options;
    options.proc_root = proc_root;
    return agent_prober(options, steady_clock::now()).scan();
}

agent_observation probe_agent(const agent_probe_options& options,
                              std::chrono::steady_clock::time_point deadline,
                              agent_process_scan scan) {
    return agent_prober(options, deadline).run(std::move(scan));
}

agent_observation probe_agent(const agent_probe_options& options,
                              std::chrono::steady_clock::time_point deadline) {
    return probe_agent(options, deadline, scan_agent_processes(options.proc_root));
}

std::optional<std::uint64_t> parse_proc_stat_start_ticks(std::string_view stat_text) {
    // "412 (amazon-ssm-agen) S 1 412 ...": the name may contain ") " itself.
    const std::size_t close = stat_text.rfind(')');
    if (close == std::string_view::npos || stat_text.find('(') > close) {
        return std::nullopt;
    }
    const auto fields = words(stat_text.substr(close + 1));
    // Field 3 (state) is fields[0], so field 22 is fields[19].
    constexpr std::size_t start_index = 22 - 3;
    if (fields.size() <= start_index || fields[0].size() != 1) {
        return std::nullopt;
    }
    const std::string_view value = fields[start_index];
    std::uint64_t ticks = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ticks);
    if (ec != std::errc{} || end != value.data() + value.size()) {
        return std::nullopt;
    }
    return ticks;
}

std::optional<std::int64_t> parse_boot_time(std::string_view proc_stat_text) {
    std::size_t at = 0;
    while (at < proc_stat_text.size()) {
        const std::size_t newline = proc_stat_text.find('\n', at);
        const std::string_view line = proc_stat_text.substr(
            at, newline == std::string_view::npos ? std::string_view::npos : newline - at);
        at = newline == std::string_view::npos ? proc_stat_text.size() : newline + 1;
        const auto fields = words(line);
        if (fields.size() != 2 || fields[0] != "btime") {
            continue;
        }
        std::int64_t seconds = 0;
        const auto [end, ec] =
            std::from_chars(fields[1].data(), fields[1].data() + fields[1].size(), seconds);
        if (ec != std::errc{} || end != fields[1].data() + fields[1].size() || seconds < 0) {
            return std::nullopt;
        }
        return seconds;
    }
    return std::nullopt;
}

std::chrono::system_clock::time_point process_start_time(std::int64_t boot_time,
                                                         std::uint64_t ticks,
                                                         long ticks_per_second) {
    const auto tps = static_cast<std::uint64_t>(ticks_per_second);
    const auto since_boot = std::chrono::seconds(ticks / tps) +
                            std::chrono::microseconds((ticks % tps) * 1'000'000 / tps);
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(boot_time) + since_boot));
}

environment_map parse_environ(std::string_view environ_text) {
    environment_map environment;
    std::size_t at = 0;
    while (at < environ_text.size()) {
        const std::size_t nul = environ_text.find('\0', at);
        const std::string_view entry = environ_text.substr(
            at, nul == std::string_view::npos ? std::string_view::npos : nul - at);
        at = nul == std::string_view::npos ? environ_text.size() : nul + 1;
        const std::size_t equals = entry.find('=');
        if (equals == std::string_view::npos || equals == 0) {
            continue;
        }
        // emplace keeps the first value of a repeated name.
        environment.emplace(std::string(entry.substr(0, equals)),
                            std::string(entry.substr(equals + 1)));
    }
    return environment;
}

std::optional<proxy_settings> proxy_from_environment(const environment_map& environment, int pid) {
    const auto first_set = [&](std::string_view upper, std::string_view lower) -> std::string {
        for (const auto name : {upper, lower}) {
            const auto it = environment.find(name);
            if (it != environment.end() && !it->second.empty()) {
                return it->second;
            }
        }
        return {};
    };
    proxy_settings settings;
    settings.https_proxy = first_set("HTTPS_PROXY", "https_proxy");
    if (settings.https_proxy.empty()) {
        return std::nullopt;
    }
    settings.no_proxy = first_set("NO_PROXY", "no_proxy");
    settings.from_pid = pid;
    return settings;
}

std::string exe_basename(std::string_view link_target) {
    link_target = without_deleted_mark(link_target);
    const std::size_t slash = link_target.rfind('/');
    return std::string(slash == std::string_view::npos ? link_target
                                                       : link_target.substr(slash + 1));
}

bool is_agent_executable(std::string_view basename) {
    return std::find(std::begin(agent_executables), std::end(agent_executables), basename) !=
           std::end(agent_executables);
}

std::string agent_name_from_comm(std::string_view comm) {
    constexpr std::size_t comm_length = 15;  // TASK_COMM_LEN - 1
    if (comm.empty()) {
        return {};
    }
    for (const std::string_view name : agent_executables) {
        if (name == comm || (comm.size() == comm_length && name.starts_with(comm))) {
            return std::string(name);
        }
    }
    return {};
}

package_answer parse_rpm_query(std::string_view output, int exit_status) {
    package_answer answer;
    // rpm exits 1 and says "package amazon-ssm-agent is not installed" otherwise.
    if (exit_status != 0) {
        return answer;
    }
    const std::string first_line = trim(output.substr(0, output.find('\n')));
    answer.installed = !first_line.empty();
    answer.version = version_prefix(first_line);
    return answer;
}

package_answer parse_dpkg_query(std::string_view output, int exit_status) {
    package_answer answer;
    if (exit_status != 0) {
        return answer;  // "no packages found matching amazon-ssm-agent"
    }
    const std::string first_line = trim(output.substr(0, output.find('\n')));
    const auto fields = words(first_line);
    if (fields.empty() || fields[0] == "not-installed" || fields[0] == "config-files") {
        return answer;
    }
    answer.installed = true;
    if (fields.size() >= 2) {
        std::string_view version = fields[1];
        if (const std::size_t colon = version.find(':'); colon != std::string_view::npos) {
            version.remove_prefix(colon + 1);  // the epoch
        }
        answer.version = version_prefix(version);
    }
    return answer;
}

package_answer parse_snap_list(std::string_view output, int exit_status) {
    package_answer answer;
    if (exit_status != 0) {
        return answer;  // "error: no matching snaps installed"
    }
    // A header row ("Name Version Rev Tracking Publisher Notes") then one row per snap.
    std::size_t at = 0;
    while (at < output.size()) {
        const std::size_t newline = output.find('\n', at);
        const std::string_view line =
            output.substr(at, newline == std::string_view::npos ? newline : newline - at);
        at = newline == std::string_view::npos ? output.size() : newline + 1;
        const auto fields = words(line);
        if (fields.size() >= 2 && fields[0] == package_name) {
            answer.installed = true;
            answer.version = version_prefix(fields[1]);
            return answer;
        }
    }
    return answer;
}

}  // namespace ssm_doctor
