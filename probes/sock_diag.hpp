// SPDX-License-Identifier: Apache-2.0
// Established TCP sockets from the kernel's NETLINK_SOCK_DIAG dump: request, reply parser, reader.
#pragma once

#include <utility>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "probes/socket_table.hpp"

namespace ssm_doctor {

// Why sock_diag costs less than /proc/net/tcp: the dump asks the kernel for ESTABLISHED sockets
// to the ports of interest only (an inet_diag bytecode filter), so nothing else is formatted or
// copied, and a reply of a few sessions is one datagram.
//
// Limits: the dump shows the network namespace of the socket that asks, as /proc/net/tcp shows
// the reader's. It is not atomic either: a socket that moves in the hash table meanwhile may be
// seen twice or not at all. A dump the kernel marks inconsistent (NLM_F_DUMP_INTR) is asked again
// a few times; the last answer is used when every attempt was interrupted, with a note.

// The inet_diag bytecode that accepts a socket whose remote port is one of `ports` (sorted,
// without duplicates, at most max_filter_ports) and rejects every other. Each port is tested as
// "dport >= p and dport <= p", which every kernel with inet_diag understands (the equality
// operator came later), and the tests are joined by jumps the kernel's verifier accepts: every
// instruction lies on the chain of "yes" offsets and every "no" lands on an instruction, the end
// (accept) or four bytes past it (reject). No ports gives a program that rejects everything.
std::vector<unsigned char> sock_diag_port_filter(std::span<const unsigned short> ports);

// More ports than this are filtered in user space (the bytecode's jumps are 16-bit offsets; a
// handful of ports is the real case).
constexpr std::size_t max_filter_ports = 512;

// One SOCK_DIAG_BY_FAMILY dump request for established TCP sockets of `family` (AF_INET or
// AF_INET6), with `filter` (bytecode as above; empty: no filter) as INET_DIAG_REQ_BYTECODE.
std::vector<unsigned char> sock_diag_request(int family, std::uint32_t seq,
                                             std::span<const unsigned char> filter);

// What one received datagram said.
struct sock_diag_part {
    std::vector<tcp_socket_entry> entries;  // in the order of the reply, every state it gave
    bool done = false;                      // NLMSG_DONE: the dump is complete
    bool interrupted = false;               // some message carried NLM_F_DUMP_INTR
    int error = 0;  // errno of an NLMSG_ERROR (or of a negative NLMSG_DONE status), else 0
    // Malformed data: what and where ("message 2 at byte 96: ..."); parsing stops there.
    std::string problem;
    std::size_t foreign = 0;  // messages of another sequence number or port id, skipped
};

// Parses one datagram of a dump reply: a stream of netlink messages, each an inet_diag_msg of
// `family`, NLMSG_DONE, NLMSG_ERROR or NLMSG_NOOP. Messages whose nlmsg_seq is not `seq` or
// whose nlmsg_pid is not `port_id` belong to no request of ours and are skipped. Anything
// truncated, misaligned or of an unexpected type or family stops the parse with `problem` set.
// Never reads outside `bytes`.
sock_diag_part parse_sock_diag_reply(std::span<const unsigned char> bytes, int family,
                                     std::uint32_t seq, std::uint32_t port_id);

// How the dump went: the entries, or the step that failed and why.
struct sock_diag_result {
    bool ok = false;
    std::vector<tcp_socket_entry> entries;  // both families, IPv4 first
    std::string step;    // "socket", "bind", "send", "receive", "dump" (kernel refused), "reply"
    int error = 0;       // errno when the step failed with one, else 0
    std::string detail;  // the system's text, or what was wrong with the reply
    std::vector<std::string> notes;  // degraded but usable answers (interrupted dumps)

    // "socket: Operation not permitted", "reply: message 1 at byte 0: ...".
    std::string describe() const;
};

struct sock_diag_limits {
    std::chrono::milliseconds receive_timeout{1000};  // for each receive (SO_RCVTIMEO)
    std::chrono::milliseconds total{3000};            // for the whole of both dumps
    int attempts = 3;                                 // dumps per family when interrupted
    std::size_t max_datagrams = 100000;  // a runaway reply ends as an error, not a hang
};

// Dumps the established TCP sockets (IPv4, then IPv6) whose remote port is in `remote_ports`,
// through one NETLINK_SOCK_DIAG socket. Entries are filtered again in user space, so a kernel
// that ignored the bytecode would not widen the answer. A host without IPv6 (the AF_INET6
// dump answers ENOENT or EAFNOSUPPORT) gives the IPv4 answer alone.
sock_diag_result read_sock_diag_tcp(const std::vector<unsigned short>& remote_ports,
                                    const sock_diag_limits& limits = {});

}  // namespace ssm_doctor
