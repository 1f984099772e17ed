// SPDX-License-Identifier: Apache-2.0
// Asks the kernel for established TCP sockets over NETLINK_SOCK_DIAG and parses its dump.
#include "probes/sock_diag.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "probes/unique_fd.hpp"

namespace ssm_doctor {

namespace {

constexpr int tcp_established_state = 1;  // TCP_ESTABLISHED in the kernel's numbering

std::string error_text(int error) {
    return std::system_category().message(error);
}

// Copies a struct out of received bytes: the buffer promises no alignment.
template <typename T>
T read_struct(std::span<const unsigned char> bytes, std::size_t at) {
    T value;
    std::memcpy(&value, bytes.data() + at, sizeof value);
    return value;
}

void put_op(std::vector<unsigned char>& program, std::size_t at, unsigned char code,
            unsigned char yes, std::size_t no) {
    const inet_diag_bc_op op{code, yes, static_cast<unsigned short>(no)};
    std::memcpy(program.data() + at, &op, sizeof op);
}

std::string where(std::size_t index, std::size_t offset) {
    return "message " + std::to_string(index) + " at byte " + std::to_string(offset) + ": ";
}

tcp_socket_entry to_entry(const inet_diag_msg& msg) {
    tcp_socket_entry entry;
    const std::uint16_t sport = ntohs(msg.id.idiag_sport);
    const std::uint16_t dport = ntohs(msg.id.idiag_dport);
    if (msg.idiag_family == AF_INET) {
        // The address is in network order in the first word, as the kernel stores it.
        boost::asio::ip::address_v4::bytes_type local;
        boost::asio::ip::address_v4::bytes_type remote;
        std::memcpy(local.data(), msg.id.idiag_src, local.size());
        std::memcpy(remote.data(), msg.id.idiag_dst, remote.size());
        entry.local = tcp_endpoint(boost::asio::ip::address_v4(local), sport);
        entry.remote = tcp_endpoint(boost::asio::ip::address_v4(remote), dport);
    } else {
        // IPv4-mapped addresses stay IPv6, as tcp6 prints them.
        boost::asio::ip::address_v6::bytes_type local;
        boost::asio::ip::address_v6::bytes_type remote;
        std::memcpy(local.data(), msg.id.idiag_src, local.size());
        std::memcpy(remote.data(), msg.id.idiag_dst, remote.size());
        entry.local = tcp_endpoint(boost::asio::ip::address_v6(local), sport);
        entry.remote = tcp_endpoint(boost::asio::ip::address_v6(remote), dport);
    }
    entry.state = msg.idiag_state;
    entry.uid = msg.idiag_uid;
    entry.inode = msg.idiag_inode;
    return entry;
}

// The outcome of one dump of one family.
struct dump_outcome {
    bool ok = false;
    bool interrupted = false;
    std::string step;
    int error = 0;
    std::string detail;
};

dump_outcome failed(std::string step, int error, std::string detail = {}) {
    dump_outcome out;
    out.step = std::move(step);
    out.error = error;
    out.detail = detail.empty() ? error_text(error) : std::move(detail);
    return out;
}

// Sends one dump request and reads its reply until NLMSG_DONE, appending the entries.
dump_outcome dump_family(int fd, int family, std::uint32_t seq, std::uint32_t port_id,
                         std::span<const unsigned char> filter, const sock_diag_limits& limits,
                         std::chrono::steady_clock::time_point deadline,
                         std::vector<unsigned char>& buffer, std::vector<tcp_socket_entry>& into) {
    const auto request = sock_diag_request(family, seq, filter);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;  // nl_pid 0: the kernel
    for (;;) {
        const ssize_t sent = ::sendto(fd, request.data(), request.size(), 0,
                                      reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
        if (sent >= 0) {
            break;
        }
        if (errno != EINTR) {
            return failed("send", errno);
        }
    }

    dump_outcome outcome;
    const std::size_t first_size = into.size();
    for (std::size_t datagrams = 0; datagrams < limits.max_datagrams;) {
        if (std::chrono::steady_clock::now() >= deadline) {
            into.resize(first_size);
            return failed(
                "receive", ETIMEDOUT,
                "no end of the dump within " + std::to_string(limits.total.count()) + " ms");
        }
        sockaddr_nl from{};
        socklen_t from_size = sizeof from;
        // Peek first: MSG_TRUNC makes the kernel return the datagram's real length, so a reply
        // larger than the buffer grows it instead of being cut.
        const ssize_t length = ::recvfrom(fd, buffer.data(), buffer.size(), MSG_PEEK | MSG_TRUNC,
                                          reinterpret_cast<sockaddr*>(&from), &from_size);
        if (length < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int error = errno;
            into.resize(first_size);
            if (error == EAGAIN || error == EWOULDBLOCK) {
                return failed(
                    "receive", ETIMEDOUT,
                    "no reply within " + std::to_string(limits.receive_timeout.count()) + " ms");
            }
            return failed("receive", error);
        }
        if (static_cast<std::size_t>(length) > buffer.size()) {
            buffer.resize(static_cast<std::size_t>(length));
        }
        const ssize_t got = ::recvfrom(fd, buffer.data(), buffer.size(), 0,
                                       reinterpret_cast<sockaddr*>(&from), &from_size);
        if (got < 0) {
            if (errno == EINTR) {
                continue;  // the datagram is still queued: peek again
            }
            const int error = errno;
            into.resize(first_size);
            return failed("receive", error);
        }
        ++datagrams;
        if (from.nl_pid != 0) {
            continue;  // not from the kernel: another process cannot speak for it
        }
        auto part = parse_sock_diag_reply(
            std::span<const unsigned char>(buffer.data(), static_cast<std::size_t>(got)), family,
            seq, port_id);
        into.insert(into.end(), part.entries.begin(), part.entries.end());
        outcome.interrupted = outcome.interrupted || part.interrupted;
        if (!part.problem.empty()) {
            into.resize(first_size);
            return failed("reply", 0, std::move(part.problem));
        }
        if (part.error != 0) {
            into.resize(first_size);
            return failed("dump", part.error);
        }
        if (part.done) {
            outcome.ok = true;
            return outcome;
        }
    }
    into.resize(first_size);
    return failed(
        "receive", 0,
        "no end of the dump after " + std::to_string(limits.max_datagrams) + " datagrams");
}

}  // namespace

std::vector<unsigned char> sock_diag_port_filter(std::span<const unsigned short> ports) {
    constexpr std::size_t op = sizeof(inet_diag_bc_op);
    if (ports.empty()) {
        // One jump whose target is four bytes past the end: the kernel's "reject".
        std::vector<unsigned char> program(op);
        put_op(program, 0, INET_DIAG_BC_JMP, op, 2 * op);
        return program;
    }
    // Per port: [D_GE p][p][D_LE p][p] (16 bytes), then a 4-byte jump to the end (accept)
    // between one port's test and the next. A failed comparison jumps to the next port's test,
    // or past the end after the last port. The jump's own "yes" (never taken: JMP always takes
    // "no") points at the next test, which keeps every instruction on the verifier's yes-chain.
    constexpr std::size_t test = 4 * op;
    constexpr std::size_t block = test + op;
    const std::size_t total = ports.size() * block - op;
    std::vector<unsigned char> program(total);
    for (std::size_t i = 0; i < ports.size(); ++i) {
        const std::size_t start = i * block;
        const bool last = i + 1 == ports.size();
        const std::size_t next = last ? total + op : start + block;
        put_op(program, start, INET_DIAG_BC_D_GE, 2 * op, next - start);
        put_op(program, start + op, 0, 0, ports[i]);
        put_op(program, start + 2 * op, INET_DIAG_BC_D_LE, 2 * op, next - (start + 2 * op));
        put_op(program, start + 3 * op, 0, 0, ports[i]);
        if (!last) {
            put_op(program, start + test, INET_DIAG_BC_JMP, op, total - (start + test));
        }
    }
    return program;
}

std::vector<unsigned char> sock_diag_request(int family, std::uint32_t seq,
                                             std::span<const unsigned char> filter) {
    const std::size_t attribute = filter.empty() ? 0 : NLA_HDRLEN + NLA_ALIGN(filter.size());
    nlmsghdr header{};
    header.nlmsg_len =
        static_cast<std::uint32_t>(NLMSG_LENGTH(sizeof(inet_diag_req_v2)) + attribute);
    header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.nlmsg_seq = seq;
    header.nlmsg_pid = 0;

    inet_diag_req_v2 request{};
    request.sdiag_family = static_cast<std::uint8_t>(family);
    request.sdiag_protocol = IPPROTO_TCP;
    request.idiag_states = 1U << tcp_established_state;

    // Laid out at fixed offsets in a zeroed buffer, so the padding is zero too.
    std::vector<unsigned char> out(header.nlmsg_len);
    std::memcpy(out.data(), &header, sizeof header);
    std::memcpy(out.data() + NLMSG_HDRLEN, &request, sizeof request);
    if (!filter.empty()) {
        nlattr attr{};
        attr.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + filter.size());
        attr.nla_type = INET_DIAG_REQ_BYTECODE;
        const std::size_t at = NLMSG_LENGTH(sizeof request);
        std::memcpy(out.data() + at, &attr, sizeof attr);
        std::memcpy(out.data() + at + NLA_HDRLEN, filter.data(), filter.size());
    }
    return out;
}

sock_diag_part parse_sock_diag_reply(std::span<const unsigned char> bytes, int family,
                                     std::uint32_t seq, std::uint32_t port_id) {
    sock_diag_part part;
    std::size_t offset = 0;
    for (std::size_t index = 1; offset < bytes.size(); ++index) {
        const std::size_t left = bytes.size() - offset;
        if (left < sizeof(nlmsghdr)) {
            part.problem = where(index, offset) + std::to_string(left) +
                           " bytes left, fewer than a netlink header";
            return part;
        }
        const auto header = read_struct<nlmsghdr>(bytes, offset);
        if (header.nlmsg_len < sizeof(nlmsghdr)) {
            part.problem = where(index, offset) + "length " + std::to_string(header.nlmsg_len) +
                           " is shorter than its own header";
            return part;
        }
        if (header.nlmsg_len > left) {
            part.problem = where(index, offset) + "length " + std::to_string(header.nlmsg_len) +
                           " runs past the end of the datagram (" + std::to_string(left) +
                           " bytes left)";
            return part;
        }
        const auto payload =
            bytes.subspan(offset + NLMSG_HDRLEN,
                          header.nlmsg_len - std::min<std::size_t>(header.nlmsg_len, NLMSG_HDRLEN));
        const std::size_t here = offset;
        // The last message of a datagram may lack its padding.
        offset = std::min<std::size_t>(bytes.size(), offset + NLMSG_ALIGN(header.nlmsg_len));

        if (header.nlmsg_seq != seq || header.nlmsg_pid != port_id) {
            ++part.foreign;
            continue;
        }
        if ((header.nlmsg_flags & NLM_F_DUMP_INTR) != 0) {
            part.interrupted = true;
        }
        switch (header.nlmsg_type) {
            case NLMSG_NOOP:
                continue;
            case NLMSG_DONE: {
                // The payload, when present, is the dump's status: negative on failure.
                if (payload.size() >= sizeof(int)) {
                    const int status = read_struct<int>(payload, 0);
                    if (status < 0) {
                        part.error = -status;
                    }
                }
                part.done = true;
                return part;
            }
            case NLMSG_ERROR: {
                if (payload.size() < sizeof(int)) {
                    part.problem = where(index, here) + "NLMSG_ERROR of " +
                                   std::to_string(payload.size()) + " bytes has no error code";
                    return part;
                }
                const int error = read_struct<int>(payload, 0);
                if (error > 0) {
                    part.problem = where(index, here) + "NLMSG_ERROR with positive code " +
                                   std::to_string(error);
                    return part;
                }
                if (error < 0) {
                    part.error = -error;
                    return part;
                }
                continue;  // an acknowledgement: nothing to report
            }
            case SOCK_DIAG_BY_FAMILY:
                break;
            default:
                part.problem =
                    where(index, here) + "unexpected type " + std::to_string(header.nlmsg_type);
                return part;
        }
        if (payload.size() < sizeof(inet_diag_msg)) {
            part.problem = where(index, here) + "socket record of " +
                           std::to_string(payload.size()) + " bytes, expected at least " +
                           std::to_string(sizeof(inet_diag_msg));
            return part;
        }
        // Attributes may follow the record; none was asked for and any given are not needed.
        const auto msg = read_struct<inet_diag_msg>(payload, 0);
        if (msg.idiag_family != family || (family != AF_INET && family != AF_INET6)) {
            part.problem = where(index, here) + "address family " +
                           std::to_string(msg.idiag_family) + " in a dump of family " +
                           std::to_string(family);
            return part;
        }
        part.entries.push_back(to_entry(msg));
    }
    return part;
}

std::string sock_diag_result::describe() const {
    return step + ": " + detail;
}

sock_diag_result read_sock_diag_tcp(const std::vector<unsigned short>& remote_ports,
                                    const sock_diag_limits& limits) {
    sock_diag_result result;
    auto fail = [&result](dump_outcome&& outcome) {
        result.ok = false;
        result.entries.clear();
        result.step = std::move(outcome.step);
        result.error = outcome.error;
        result.detail = std::move(outcome.detail);
        return result;
    };

    std::vector<unsigned short> ports = remote_ports;
    std::sort(ports.begin(), ports.end());
    ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
    const auto filter = ports.size() <= max_filter_ports ? sock_diag_port_filter(ports)
                                                         : std::vector<unsigned char>{};

    unique_fd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!fd) {
        return fail(failed("socket", errno));
    }
    // Each receive waits at most this long, so a kernel that never ends the dump costs a
    // bounded time; the overall deadline is checked between receives.
    // A zero timeval would mean "wait forever", hence at least a millisecond.
    const auto wait =
        std::max(std::chrono::milliseconds(1), std::min(limits.receive_timeout, limits.total));
    timeval timeout{};
    timeout.tv_sec = static_cast<time_t>(wait.count() / 1000);
    timeout.tv_usec = static_cast<suseconds_t>((wait.count() % 1000) * 1000);
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0) {
        return fail(failed("socket", errno));
    }
    // Binding to port id 0 lets the kernel choose one; the replies carry it as nlmsg_pid.
    sockaddr_nl self{};
    self.nl_family = AF_NETLINK;
    socklen_t self_size = sizeof self;
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&self), sizeof self) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&self), &self_size) != 0) {
        return fail(failed("bind", errno));
    }

    const auto deadline = std::chrono::steady_clock::now() + limits.total;
    // 32 KiB is the most the kernel puts in one dump datagram; larger ones grow it (peek).
    std::vector<unsigned char> buffer(32 * 1024);
    std::uint32_t seq = 0;
    for (const int family : {AF_INET, AF_INET6}) {
        const int attempts = std::max(1, limits.attempts);
        for (int attempt = 1; attempt <= attempts; ++attempt) {
            const std::size_t before = result.entries.size();
            auto outcome = dump_family(fd.get(), family, ++seq, self.nl_pid, filter, limits,
                                       deadline, buffer, result.entries);
            if (!outcome.ok) {
                // A kernel built without IPv6 has no AF_INET6 table to dump: like a missing tcp6.
                if (family == AF_INET6 && outcome.step == "dump" &&
                    (outcome.error == ENOENT || outcome.error == EAFNOSUPPORT)) {
                    break;
                }
                return fail(std::move(outcome));
            }
            if (!outcome.interrupted) {
                break;
            }
            if (attempt == attempts) {
                result.notes.push_back(
                    std::string("sock_diag: the ") + (family == AF_INET ? "IPv4" : "IPv6") +
                    " socket table changed during each of " + std::to_string(attempts) +
                    " dumps; the last is used and may miss or repeat a connection");
                break;
            }
            result.entries.resize(before);  // ask again for a consistent answer
        }
    }

    // The kernel applied the filter already; this keeps the answer right if it had not.
    std::erase_if(result.entries, [&ports](const tcp_socket_entry& e) {
        return e.state != tcp_established_state ||
               !std::binary_search(ports.begin(), ports.end(), e.remote.port());
    });
    result.ok = true;
    return result;
}

}  // namespace ssm_doctor
