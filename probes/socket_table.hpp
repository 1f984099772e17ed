// SPDX-License-Identifier: Apache-2.0
// The live TCP socket table (/proc/net/tcp, tcp6) and which process owns each connection.
#pragma once

#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
std::vector<tcp_socket_entry> parse_proc_net_tcp(std::string_view text, bool v6,
                                                 std::vector<std::string>* problems);

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
socket_observation read_socket_table(const std::filesystem::path& proc_root,
                                     const std::vector<unsigned short>& remote_ports);

}  // namespace ssm_doctor
