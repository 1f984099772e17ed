// SPDX-License-Identifier: Apache-2.0
// The live TCP socket table (sock_diag, else /proc/net/tcp, tcp6) and the owner of each connection.
#pragma once

#include <utility>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

namespace ssm_doctor {

using tcp_endpoint = boost::asio::ip::tcp::endpoint;

constexpr int tcp_established = 1;  // the kernel's TCP_ESTABLISHED, as /proc/net/tcp shows it

struct tcp_socket_entry {
    tcp_endpoint local;
    tcp_endpoint remote;
    int state = 0;
    std::uint32_t uid = 0;
    std::uint64_t inode = 0;
};

// Parses the text of /proc/net/tcp (`v6` false) or /proc/net/tcp6. The header line is skipped;
// a malformed line is skipped and described in `problems` ("line 7: bad remote address").
// IPv4-mapped IPv6 addresses are kept as IPv6.
//
// The kernel prints each address as 32-bit words (one for IPv4, four for IPv6), every word being
// the in-memory network-order bytes read as a host integer. The text therefore depends on the
// byte order of the machine that wrote it: on little-endian x86 and arm64, 127.0.0.1 reads
// "0100007F". This overload assumes the text was written by this host (std::endian::native),
// which is what a live /proc gives. Ports are plain big-endian numbers and need no such care.
std::vector<tcp_socket_entry> parse_proc_net_tcp(std::string_view text, bool v6,
                                                 std::vector<std::string>* problems);

// The same for text written by a machine of byte order `word_order` (captured text in tests).
std::vector<tcp_socket_entry> parse_proc_net_tcp(std::string_view text, bool v6,
                                                 std::endian word_order,
                                                 std::vector<std::string>* problems);

// One address field, "0100007F:01BB" (8 hex digits) or 32 hex digits and a port for IPv6;
// nullopt when the field is not exactly that.
std::optional<tcp_endpoint> parse_proc_net_endpoint(std::string_view field, bool v6,
                                                    std::endian word_order);

// The inode of an fd symlink's target "socket:[12345]"; nullopt for anything else.
std::optional<std::uint64_t> parse_socket_link(std::string_view target);

// The program name from the target of /proc/<pid>/exe: its basename, without the " (deleted)"
// the kernel appends once the binary was replaced on disk (as an agent upgrade does).
std::string process_name_from_exe(std::string_view target);

// An established connection to a port of interest, with its owner when it could be found.
struct tcp_session {
    tcp_endpoint local;
    tcp_endpoint remote;
    std::uint64_t inode = 0;
    int pid = 0;          // 0 when unattributed
    std::string process;  // executable basename (comm when exe is unreadable), "" unattributed
};

struct socket_observation {
    bool table_read = false;  // at least one of tcp and tcp6 was read
    // False when some process's /proc/<pid>/fd could not be read (no privilege): sessions may
    // then be missing their owner, which is not the same as having no session.
    bool attribution_complete = false;
    std::vector<tcp_session> sessions;
    std::vector<std::string> notes;
};

// Established connections whose remote port is in `remote_ports` (443, plus a proxy's port).
//
// With proc_root "/proc" the table comes from the kernel's sock_diag netlink dump
// (probes/sock_diag.hpp), which costs a third to a half of reading the text tables (the kernel
// still walks its whole hash; docs/benchmarks.md); when that is unavailable (no AF_NETLINK under a
// sandbox, no inet_diag module, a refused or garbled reply), one note says why and the text tables
// are read instead. Any other proc_root (a captured or fake tree) is read as text, silently.
//
// The text tables are <proc_root>/net/tcp and <proc_root>/net/tcp6. Both sources show the network
// namespace of this process, so an agent running in another network namespace (a container) has
// sessions this does not see. A missing tcp6 (IPv6 disabled) is normal and noted only when tcp is
// unreadable too.
//
// Owners are found by scanning the fd symlinks of every <proc_root>/<pid> for "socket:[inode]",
// stopping once every session has one. A socket shared after fork goes to the first process
// found (the lowest pid, as procfs lists them). Processes in another pid namespace are invisible,
// and a connection with inode 0 (not yet accepted by its listener) has no owner to find.
// attribution_complete is false only when some session is left without an owner while some
// process's fds could not be read; one note then says how many processes and why. It is also
// false when no table could be read. The table is read in chunks, not atomically: a busy host
// may show a connection twice or miss one that moved in the table meanwhile.
socket_observation read_socket_table(const std::filesystem::path& proc_root,
                                     const std::vector<unsigned short>& remote_ports);

struct sock_diag_result;

// The table source tried before the text tables: read_sock_diag_tcp, or a stand-in in tests.
using sock_diag_source =
    std::function<sock_diag_result(const std::vector<unsigned short>& remote_ports)>;

// The same with the first source chosen: `sock_diag` whatever proc_root is (owners are still
// found under proc_root), or the text tables only when it is empty (as for a fake proc_root).
socket_observation read_socket_table(const std::filesystem::path& proc_root,
                                     const std::vector<unsigned short>& remote_ports,
                                     const sock_diag_source& sock_diag);

}  // namespace ssm_doctor
