// SPDX-License-Identifier: Apache-2.0
// Reads the TCP table (sock_diag, else /proc/net/tcp and tcp6) and finds each session's owner.
#include "probes/socket_table.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <map>
#include <memory>
#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include "probes/sock_diag.hpp"
#include "probes/unique_fd.hpp"

namespace ssm_doctor {

namespace {

struct dir_closer {
    void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};
using unique_dir = std::unique_ptr<DIR, dir_closer>;

// Opens `name` relative to `parent` as a directory stream; on failure returns null and leaves
// errno as the failing call set it.
unique_dir open_dir_at(int parent, const char* name) {
    const int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return nullptr;
    }
    unique_dir dir(::fdopendir(fd));  // on success the stream owns fd
    if (!dir) {
        const int error = errno;
        ::close(fd);
        errno = error;
    }
    return dir;
}

std::string error_text(int error) {
    return std::system_category().message(error);
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

// Parses all of `text` as an unsigned number in `base`; nothing else may follow or precede.
template <typename T>
std::optional<T> parse_number(std::string_view text, int base) {
    T value{};
    if (text.empty()) {
        return std::nullopt;
    }
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (ec != std::errc{} || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// Appends the four bytes of one printed word in the memory order of the machine that printed it.
template <std::size_t N>
bool decode_word(std::string_view hex, std::endian word_order, std::array<unsigned char, N>& out,
                 std::size_t at) {
    auto word = parse_number<std::uint32_t>(hex, 16);
    if (!word) {
        return false;
    }
    for (std::size_t i = 0; i < 4; ++i) {
        // Byte i in memory is the i-th least significant byte on a little-endian machine and the
        // i-th most significant on a big-endian one.
        const unsigned shift = word_order == std::endian::little ? 8 * i : 8 * (3 - i);
        out[at + i] = static_cast<unsigned char>((*word >> shift) & 0xffU);
    }
    return true;
}

std::string quoted(std::string_view text) {
    constexpr std::size_t max_shown = 48;  // a garbage line can be long; the start identifies it
    std::string out = "\"";
    out.append(text.substr(0, max_shown));
    if (text.size() > max_shown) {
        out.append("...");
    }
    out.append("\"");
    return out;
}

// The fields of a line that the parser uses; the kernel prints more after the inode.
constexpr std::size_t fields_needed = 10;
enum field { slot, local_address, remote_address, state_field, uid_field = 7, inode_field = 9 };

// Parses one data line; on failure returns the reason for `problems`.
std::optional<tcp_socket_entry> parse_line(std::string_view line, bool v6, std::endian word_order,
                                           std::string& why) {
    std::array<std::string_view, fields_needed> fields;
    std::size_t count = 0;
    std::size_t pos = 0;
    while (pos < line.size()) {
        while (pos < line.size() && is_space(line[pos])) {
            ++pos;
        }
        if (pos == line.size()) {
            break;
        }
        const std::size_t start = pos;
        while (pos < line.size() && !is_space(line[pos])) {
            ++pos;
        }
        if (count < fields.size()) {
            fields[count] = line.substr(start, pos - start);
        }
        ++count;
    }
    if (count < fields_needed) {
        why = std::to_string(count) + " fields, expected at least " + std::to_string(fields_needed);
        return std::nullopt;
    }

    const std::string_view sl = fields[slot];
    if (sl.size() < 2 || sl.back() != ':' ||
        !parse_number<unsigned>(sl.substr(0, sl.size() - 1), 10)) {
        why = "bad slot number " + quoted(sl);
        return std::nullopt;
    }

    tcp_socket_entry entry;
    auto local = parse_proc_net_endpoint(fields[local_address], v6, word_order);
    if (!local) {
        why = "bad local address " + quoted(fields[local_address]);
        return std::nullopt;
    }
    auto remote = parse_proc_net_endpoint(fields[remote_address], v6, word_order);
    if (!remote) {
        why = "bad remote address " + quoted(fields[remote_address]);
        return std::nullopt;
    }
    const std::string_view st = fields[state_field];
    auto state = st.size() <= 2 ? parse_number<unsigned>(st, 16) : std::nullopt;
    if (!state) {
        why = "bad state " + quoted(st);
        return std::nullopt;
    }
    auto uid = parse_number<std::uint32_t>(fields[uid_field], 10);
    if (!uid) {
        why = "bad uid " + quoted(fields[uid_field]);
        return std::nullopt;
    }
    auto inode = parse_number<std::uint64_t>(fields[inode_field], 10);
    if (!inode) {
        why = "bad inode " + quoted(fields[inode_field]);
        return std::nullopt;
    }
    entry.local = *local;
    entry.remote = *remote;
    entry.state = static_cast<int>(*state);
    entry.uid = *uid;
    entry.inode = *inode;
    return entry;
}

struct file_read {
    std::string text;
    int error = 0;  // errno of the failed open or read, 0 when read
};

// Reads a whole procfs file. Its size shows as 0, so read until the end rather than stat it.
file_read read_whole_file(const std::filesystem::path& path) {
    file_read result;
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        result.error = errno;
        return result;
    }
    constexpr std::size_t chunk = 64 * 1024;
    std::size_t used = 0;
    for (;;) {
        result.text.resize(used + chunk);
        const ssize_t n = ::read(fd.get(), result.text.data() + used, chunk);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            result.error = errno;
            result.text.clear();
            return result;
        }
        if (n == 0) {
            break;
        }
        used += static_cast<std::size_t>(n);
    }
    result.text.resize(used);
    return result;
}

bool is_pid(const char* name, int& pid) {
    std::string_view text(name);
    if (text.empty() || text.front() < '0' || text.front() > '9') {
        return false;
    }
    auto value = parse_number<int>(text, 10);
    if (!value || *value <= 0) {
        return false;
    }
    pid = *value;
    return true;
}

// The name of process `pid`: the basename of its executable, else its comm (cut to 15
// characters by the kernel), else "" when it has gone.
std::string process_name(int proc_fd, int pid) {
    char path[32];
    std::snprintf(path, sizeof path, "%d/exe", pid);
    std::array<char, PATH_MAX> target;
    const ssize_t n = ::readlinkat(proc_fd, path, target.data(), target.size());
    if (n > 0 && static_cast<std::size_t>(n) < target.size()) {
        std::string name = process_name_from_exe({target.data(), static_cast<std::size_t>(n)});
        if (!name.empty()) {
            return name;
        }
    }
    // Kernel threads and processes of other users without privilege have no readable exe.
    std::snprintf(path, sizeof path, "%d/comm", pid);
    unique_fd fd(::openat(proc_fd, path, O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return {};
    }
    std::array<char, 64> comm;
    const ssize_t got = ::read(fd.get(), comm.data(), comm.size());
    if (got <= 0) {
        return {};
    }
    std::string_view text(comm.data(), static_cast<std::size_t>(got));
    while (!text.empty() && (text.back() == '\n' || is_space(text.back()))) {
        text.remove_suffix(1);
    }
    return std::string(text);
}

std::string processes(std::size_t n) {
    return std::to_string(n) + (n == 1 ? " process" : " processes");
}

// Finds the owners of `sessions` by their inodes, filling pid and process.
void attribute(const std::filesystem::path& proc_root, socket_observation& observation) {
    auto& sessions = observation.sessions;
    std::vector<std::uint64_t> wanted;
    wanted.reserve(sessions.size());
    for (const auto& s : sessions) {
        // Inode 0 is a connection no process holds yet (still in a listener's accept queue).
        if (s.inode != 0) {
            wanted.push_back(s.inode);
        }
    }
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    std::vector<int> owner(wanted.size(), 0);
    std::size_t remaining = wanted.size();

    unique_fd proc_fd(::open(proc_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    unique_dir proc;
    if (proc_fd) {
        // The stream gets its own descriptor, so proc_fd stays usable while it is read.
        proc = open_dir_at(proc_fd.get(), ".");
    }
    if (!proc) {
        const int error = errno;
        observation.attribution_complete = false;
        observation.notes.push_back("could not list " + proc_root.string() + ": " +
                                    error_text(error) + ": sessions are unattributed");
        return;
    }

    std::size_t denied = 0;
    std::map<int, std::size_t> failed;  // other errors of fd directories, by errno
    char fd_path[32];
    char target[64];  // "socket:[" + 20 digits + "]" fits; anything longer is no socket
    while (remaining > 0) {
        const dirent* entry = ::readdir(proc.get());
        if (entry == nullptr) {
            break;
        }
        int pid = 0;
        if (!is_pid(entry->d_name, pid)) {
            continue;
        }
        std::snprintf(fd_path, sizeof fd_path, "%d/fd", pid);
        unique_dir fds = open_dir_at(proc_fd.get(), fd_path);
        if (!fds) {
            if (errno == ENOENT || errno == ESRCH) {
                continue;  // the process exited since the listing: normal
            }
            if (errno == EACCES || errno == EPERM) {
                ++denied;
            } else {
                ++failed[errno];
            }
            continue;
        }
        bool fd_denied = false;
        while (const dirent* fd_entry = ::readdir(fds.get())) {
            if (fd_entry->d_name[0] == '.') {
                continue;
            }
            const ssize_t n =
                ::readlinkat(::dirfd(fds.get()), fd_entry->d_name, target, sizeof target);
            if (n < 0) {
                // ENOENT: the fd was closed meanwhile, which is normal.
                fd_denied = fd_denied || errno == EACCES || errno == EPERM;
                continue;
            }
            if (static_cast<std::size_t>(n) == sizeof target) {
                continue;
            }
            auto inode = parse_socket_link({target, static_cast<std::size_t>(n)});
            if (!inode) {
                continue;
            }
            auto it = std::lower_bound(wanted.begin(), wanted.end(), *inode);
            if (it != wanted.end() && *it == *inode) {
                int& o = owner[static_cast<std::size_t>(it - wanted.begin())];
                if (o == 0) {
                    o = pid;
                    --remaining;
                }
            }
        }
        if (fd_denied) {
            ++denied;
        }
    }

    std::map<int, std::string> names;
    for (auto& s : sessions) {
        auto it = std::lower_bound(wanted.begin(), wanted.end(), s.inode);
        if (it == wanted.end() || *it != s.inode) {
            continue;
        }
        const int pid = owner[static_cast<std::size_t>(it - wanted.begin())];
        if (pid == 0) {
            continue;
        }
        auto [name, inserted] = names.try_emplace(pid);
        if (inserted) {
            name->second = process_name(proc_fd.get(), pid);
        }
        s.pid = pid;
        s.process = name->second;
    }

    // Unreadable fds matter only when they may hide the owner of a session still unattributed.
    observation.attribution_complete = remaining == 0 || (denied == 0 && failed.empty());
    if (observation.attribution_complete) {
        return;
    }
    if (denied > 0) {
        observation.notes.push_back(
            "could not read the file descriptors of " + processes(denied) +
            " (permission denied): sessions may be unattributed; run as root or with "
            "CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH");
    }
    for (const auto& [error, count] : failed) {
        observation.notes.push_back("could not read the file descriptors of " + processes(count) +
                                    " (" + error_text(error) + "): sessions may be unattributed");
    }
}

}  // namespace

std::optional<tcp_endpoint> parse_proc_net_endpoint(std::string_view field, bool v6,
                                                    std::endian word_order) {
    const std::size_t address_digits = v6 ? 32 : 8;
    if (field.size() != address_digits + 5 || field[address_digits] != ':') {
        return std::nullopt;
    }
    auto port = parse_number<unsigned short>(field.substr(address_digits + 1), 16);
    if (!port) {
        return std::nullopt;
    }
    if (!v6) {
        boost::asio::ip::address_v4::bytes_type bytes;
        if (!decode_word(field.substr(0, 8), word_order, bytes, 0)) {
            return std::nullopt;
        }
        return tcp_endpoint(boost::asio::ip::address_v4(bytes), *port);
    }
    boost::asio::ip::address_v6::bytes_type bytes;
    for (std::size_t word = 0; word < 4; ++word) {
        if (!decode_word(field.substr(8 * word, 8), word_order, bytes, 4 * word)) {
            return std::nullopt;
        }
    }
    return tcp_endpoint(boost::asio::ip::address_v6(bytes), *port);
}

std::optional<std::uint64_t> parse_socket_link(std::string_view target) {
    constexpr std::string_view prefix = "socket:[";
    if (target.size() <= prefix.size() + 1 || !target.starts_with(prefix) || target.back() != ']') {
        return std::nullopt;
    }
    return parse_number<std::uint64_t>(
        target.substr(prefix.size(), target.size() - prefix.size() - 1), 10);
}

std::string process_name_from_exe(std::string_view target) {
    constexpr std::string_view deleted = " (deleted)";
    if (target.ends_with(deleted)) {
        target.remove_suffix(deleted.size());
    }
    const auto slash = target.rfind('/');
    if (slash != std::string_view::npos) {
        target.remove_prefix(slash + 1);
    }
    return std::string(target);
}

std::vector<tcp_socket_entry> parse_proc_net_tcp(std::string_view text, bool v6,
                                                 std::vector<std::string>* problems) {
    return parse_proc_net_tcp(text, v6, std::endian::native, problems);
}

std::vector<tcp_socket_entry> parse_proc_net_tcp(std::string_view text, bool v6,
                                                 std::endian word_order,
                                                 std::vector<std::string>* problems) {
    std::vector<tcp_socket_entry> entries;
    std::size_t line_number = 0;
    std::string why;
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        ++line_number;

        std::size_t first = 0;
        while (first < line.size() && is_space(line[first])) {
            ++first;
        }
        if (first == line.size()) {
            continue;  // the kernel ends the file with a newline; blank lines carry nothing
        }
        // The header starts with "sl"; text cut from the middle of a table may have none.
        if (line_number == 1 && line.substr(first).starts_with("sl ")) {
            continue;
        }
        if (auto entry = parse_line(line, v6, word_order, why)) {
            entries.push_back(*entry);
        } else if (problems != nullptr) {
            problems->push_back("line " + std::to_string(line_number) + ": " + why);
        }
    }
    return entries;
}

namespace {

bool wanted_session(const tcp_socket_entry& entry, const std::vector<unsigned short>& ports) {
    return entry.state == tcp_established &&
           std::find(ports.begin(), ports.end(), entry.remote.port()) != ports.end();
}

void add_session(const tcp_socket_entry& entry, socket_observation& observation) {
    tcp_session session;
    session.local = entry.local;
    session.remote = entry.remote;
    session.inode = entry.inode;
    observation.sessions.push_back(std::move(session));
}

// Reads <proc_root>/net/tcp and tcp6 into `observation`: sessions, table_read and notes.
void read_text_tables(const std::filesystem::path& proc_root,
                      const std::vector<unsigned short>& remote_ports,
                      socket_observation& observation) {
    struct table {
        const char* name;
        bool v6;
    };
    constexpr std::array<table, 2> tables{{{"tcp", false}, {"tcp6", true}}};
    std::vector<std::string> read_errors;
    std::vector<std::string> missing;  // a lone missing table is normal (IPv6 disabled)
    for (const auto& t : tables) {
        const auto path = proc_root / "net" / t.name;
        file_read file = read_whole_file(path);
        if (file.error != 0) {
            (file.error == ENOENT ? missing : read_errors)
                .push_back(path.string() + ": " + error_text(file.error));
            continue;
        }
        observation.table_read = true;

        std::vector<std::string> problems;
        for (const auto& entry : parse_proc_net_tcp(file.text, t.v6, &problems)) {
            if (wanted_session(entry, remote_ports)) {
                add_session(entry, observation);
            }
        }
        // A table gone wrong could fill the notes with one line each; a few show the pattern.
        constexpr std::size_t max_problems = 5;
        for (std::size_t i = 0; i < problems.size() && i < max_problems; ++i) {
            observation.notes.push_back(path.string() + ": " + problems[i]);
        }
        if (problems.size() > max_problems) {
            observation.notes.push_back(path.string() + ": " +
                                        std::to_string(problems.size() - max_problems) +
                                        " more malformed lines skipped");
        }
    }
    if (!observation.table_read) {
        read_errors.insert(read_errors.end(), missing.begin(), missing.end());
    }
    observation.notes.insert(observation.notes.end(), read_errors.begin(), read_errors.end());
}

// True for the live procfs, whose net/tcp shows the same namespace as a sock_diag socket.
bool is_live_proc(const std::filesystem::path& proc_root) {
    const auto normal = proc_root.lexically_normal();
    return normal == "/proc" || normal == "/proc/";
}

}  // namespace

socket_observation read_socket_table(const std::filesystem::path& proc_root,
                                     const std::vector<unsigned short>& remote_ports) {
    if (!is_live_proc(proc_root)) {
        return read_socket_table(proc_root, remote_ports, sock_diag_source{});
    }
    return read_socket_table(proc_root, remote_ports, [](const std::vector<unsigned short>& ports) {
        return read_sock_diag_tcp(ports);
    });
}

socket_observation read_socket_table(const std::filesystem::path& proc_root,
                                     const std::vector<unsigned short>& remote_ports,
                                     const sock_diag_source& sock_diag) {
    socket_observation observation;
    bool from_netlink = false;
    if (sock_diag) {
        const sock_diag_result dump = sock_diag(remote_ports);
        if (dump.ok) {
            from_netlink = true;
            observation.table_read = true;
            for (const auto& entry : dump.entries) {
                if (wanted_session(entry, remote_ports)) {
                    add_session(entry, observation);
                }
            }
            observation.notes = dump.notes;
        } else {
            // The text tables give the same answer at a higher cost; say why they were needed.
            observation.notes.push_back("sock_diag unavailable (" + dump.describe() + "); read " +
                                        (proc_root / "net" / "tcp").string() + " and tcp6 instead");
        }
    }
    if (!from_netlink) {
        read_text_tables(proc_root, remote_ports, observation);
    }

    if (!observation.table_read) {
        return observation;  // attribution_complete stays false: nothing was observed
    }
    if (observation.sessions.empty()) {
        observation.attribution_complete = true;
        return observation;
    }
    attribute(proc_root, observation);
    return observation;
}

}  // namespace ssm_doctor
