// SPDX-License-Identifier: Apache-2.0
// Tests of the sock_diag reader: request and filter bytes, hand-built replies, the live kernel.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <catch2/catch.hpp>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probes/sock_diag.hpp"
#include "probes/socket_table.hpp"

namespace {

using ssm_doctor::parse_sock_diag_reply;
using ssm_doctor::tcp_endpoint;
using ssm_doctor::tcp_socket_entry;
using bytes = std::vector<unsigned char>;

constexpr std::uint32_t our_seq = 7;
constexpr std::uint32_t our_port = 4242;
constexpr std::uint16_t not_sock_diag = 16;  // RTM_NEWLINK: a routing message, not ours

template <typename T>
void append(bytes& out, const T& value) {
    // resize and memcpy rather than insert: GCC 12 at -O3 warns falsely on the latter.
    const std::size_t at = out.size();
    out.resize(at + sizeof value);
    std::memcpy(out.data() + at, &value, sizeof value);
}

// One netlink message: header, payload, padding to four bytes.
bytes message(std::uint16_t type, const bytes& payload, std::uint16_t flags = NLM_F_MULTI,
              std::uint32_t seq = our_seq, std::uint32_t pid = our_port) {
    nlmsghdr header{};
    header.nlmsg_len = static_cast<std::uint32_t>(NLMSG_HDRLEN + payload.size());
    header.nlmsg_type = type;
    header.nlmsg_flags = flags;
    header.nlmsg_seq = seq;
    header.nlmsg_pid = pid;
    bytes out(NLMSG_ALIGN(header.nlmsg_len));
    std::memcpy(out.data(), &header, sizeof header);
    std::copy(payload.begin(), payload.end(), out.begin() + NLMSG_HDRLEN);
    return out;
}

bytes int_payload(int value) {
    bytes out;
    append(out, value);
    return out;
}

// An inet_diag_msg as the kernel sends it, with `extra` bytes of attributes after it.
bytes record(const char* local, unsigned short local_port, const char* remote,
             unsigned short remote_port, std::uint32_t inode, std::uint8_t state = 1,
             std::uint32_t uid = 1000, std::size_t extra = 0) {
    const auto l = boost::asio::ip::make_address(local);
    const auto r = boost::asio::ip::make_address(remote);
    inet_diag_msg msg{};
    msg.idiag_family = l.is_v4() ? AF_INET : AF_INET6;
    msg.idiag_state = state;
    msg.id.idiag_sport = htons(local_port);
    msg.id.idiag_dport = htons(remote_port);
    if (l.is_v4()) {
        const auto lb = l.to_v4().to_bytes();
        const auto rb = r.to_v4().to_bytes();
        std::memcpy(msg.id.idiag_src, lb.data(), lb.size());
        std::memcpy(msg.id.idiag_dst, rb.data(), rb.size());
    } else {
        const auto lb = l.to_v6().to_bytes();
        const auto rb = r.to_v6().to_bytes();
        std::memcpy(msg.id.idiag_src, lb.data(), lb.size());
        std::memcpy(msg.id.idiag_dst, rb.data(), rb.size());
    }
    msg.idiag_uid = uid;
    msg.idiag_inode = inode;
    bytes out(sizeof msg + extra, 0xAB);
    std::memcpy(out.data(), &msg, sizeof msg);
    return out;
}

bytes concat(std::initializer_list<bytes> parts) {
    bytes out;
    for (const auto& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

ssm_doctor::sock_diag_part parse(const bytes& data, int family = AF_INET) {
    return parse_sock_diag_reply(data, family, our_seq, our_port);
}

tcp_endpoint endpoint(const char* address, unsigned short port) {
    return tcp_endpoint(boost::asio::ip::make_address(address), port);
}

// The kernel's checks of a bytecode program (inet_diag_bc_audit and valid_cc), restated for the
// operations the filter uses: true when the kernel would accept `program`.
bool kernel_accepts(const bytes& program) {
    auto op_at = [&program](std::size_t at) {
        inet_diag_bc_op op;
        std::memcpy(&op, program.data() + at, sizeof op);
        return op;
    };
    // A "no" target is valid only when it lies on the chain of "yes" offsets from the start.
    auto on_yes_chain = [&](int target_left) {
        int left = static_cast<int>(program.size());
        std::size_t at = 0;
        while (left >= 0) {
            if (target_left > left) {
                return false;
            }
            if (target_left == left) {
                return true;
            }
            const auto op = op_at(at);
            if (op.yes < 4 || (op.yes & 3) != 0) {
                return false;
            }
            left -= op.yes;
            at += op.yes;
        }
        return false;
    };
    if (program.size() < sizeof(inet_diag_bc_op) || program.size() % 4 != 0) {
        return false;
    }
    int left = static_cast<int>(program.size());
    std::size_t at = 0;
    while (left > 0) {
        const auto op = op_at(at);
        int min_len = 4;
        switch (op.code) {
            case INET_DIAG_BC_D_GE:
            case INET_DIAG_BC_D_LE:
                min_len += 4;  // the port sits in the next operation
                if (left < min_len) {
                    return false;
                }
                break;
            case INET_DIAG_BC_JMP:
            case INET_DIAG_BC_NOP:
                break;
            default:
                return false;
        }
        if (op.code != INET_DIAG_BC_NOP) {
            if (op.no < min_len || op.no > left + 4 || (op.no & 3) != 0) {
                return false;
            }
            if (op.no < left && !on_yes_chain(left - op.no)) {
                return false;
            }
        }
        if (op.yes < min_len || op.yes > left + 4 || (op.yes & 3) != 0) {
            return false;
        }
        at += op.yes;
        left -= op.yes;
    }
    return left == 0;
}

// The kernel's run of a program (inet_diag_bc_run) for a socket of remote port `dport`.
bool kernel_matches(const bytes& program, unsigned short dport) {
    int left = static_cast<int>(program.size());
    std::size_t at = 0;
    while (left > 0) {
        inet_diag_bc_op op;
        std::memcpy(&op, program.data() + at, sizeof op);
        inet_diag_bc_op arg{};
        if (at + 8 <= program.size()) {
            std::memcpy(&arg, program.data() + at + 4, sizeof arg);
        }
        bool yes = true;
        switch (op.code) {
            case INET_DIAG_BC_JMP:
                yes = false;
                break;
            case INET_DIAG_BC_D_GE:
                yes = dport >= arg.no;
                break;
            case INET_DIAG_BC_D_LE:
                yes = dport <= arg.no;
                break;
            default:
                break;
        }
        const int step = yes ? op.yes : op.no;
        left -= step;
        at += static_cast<std::size_t>(step);
    }
    return left == 0;
}

}  // namespace

TEST_CASE("The dump request asks for established TCP sockets of one family with the filter",
          "[sockets]") {
    const std::vector<unsigned short> ports{443, 3128};
    const auto filter = ssm_doctor::sock_diag_port_filter(ports);
    const auto family = GENERATE(AF_INET, AF_INET6);
    const auto request = ssm_doctor::sock_diag_request(family, 99, filter);

    REQUIRE(request.size() == NLMSG_LENGTH(sizeof(inet_diag_req_v2)) + NLA_HDRLEN + filter.size());
    nlmsghdr header;
    std::memcpy(&header, request.data(), sizeof header);
    CHECK(header.nlmsg_len == request.size());
    CHECK(header.nlmsg_type == SOCK_DIAG_BY_FAMILY);
    CHECK(header.nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
    CHECK(header.nlmsg_seq == 99);

    inet_diag_req_v2 req;
    std::memcpy(&req, request.data() + NLMSG_HDRLEN, sizeof req);
    CHECK(req.sdiag_family == family);
    CHECK(req.sdiag_protocol == IPPROTO_TCP);
    CHECK(req.idiag_states == (1U << 1));  // TCP_ESTABLISHED only
    CHECK(req.idiag_ext == 0);

    nlattr attr;
    std::memcpy(&attr, request.data() + NLMSG_LENGTH(sizeof req), sizeof attr);
    CHECK(attr.nla_type == INET_DIAG_REQ_BYTECODE);
    CHECK(attr.nla_len == NLA_HDRLEN + filter.size());
    CHECK(std::equal(filter.begin(), filter.end(),
                     request.begin() + NLMSG_LENGTH(sizeof req) + NLA_HDRLEN));

    SECTION("without a filter there is no attribute") {
        const auto bare = ssm_doctor::sock_diag_request(family, 1, {});
        CHECK(bare.size() == NLMSG_LENGTH(sizeof(inet_diag_req_v2)));
    }
}

TEST_CASE("The port filter passes the kernel's verifier and matches exactly its ports",
          "[sockets]") {
    const std::vector<std::vector<unsigned short>> cases{
        {}, {443}, {443, 3128}, {0, 22, 443, 3128, 8443, 65535}};
    for (const auto& ports : cases) {
        CAPTURE(ports);
        const auto program = ssm_doctor::sock_diag_port_filter(ports);
        CHECK(kernel_accepts(program));
        std::size_t matched = 0;
        bool exact = true;
        for (unsigned p = 0; p <= 65535; ++p) {
            const bool wanted = std::find(ports.begin(), ports.end(), p) != ports.end();
            const bool match = kernel_matches(program, static_cast<unsigned short>(p));
            matched += match ? 1 : 0;
            exact = exact && match == wanted;
        }
        CHECK(exact);
        CHECK(matched == ports.size());
    }
    SECTION("the largest filtered port list still fits the 16-bit jumps") {
        std::vector<unsigned short> many(ssm_doctor::max_filter_ports);
        for (std::size_t i = 0; i < many.size(); ++i) {
            many[i] = static_cast<unsigned short>(1000 + 3 * i);
        }
        const auto program = ssm_doctor::sock_diag_port_filter(many);
        CHECK(program.size() + NLA_HDRLEN <= 65535);
        CHECK(kernel_accepts(program));
        CHECK(kernel_matches(program, many.back()));
        CHECK_FALSE(kernel_matches(program, 1001));
    }
    SECTION("the verifier restated here does reject a broken program") {
        auto program = ssm_doctor::sock_diag_port_filter(std::vector<unsigned short>{443, 3128});
        program[2] = 6;  // the first "no" no longer lands on an instruction
        CHECK_FALSE(kernel_accepts(program));
    }
}

TEST_CASE("A dump reply is parsed into socket entries until NLMSG_DONE", "[sockets]") {
    SECTION("IPv4 records and the end of the dump in one datagram") {
        const auto data = concat(
            {message(SOCK_DIAG_BY_FAMILY, record("10.0.1.25", 49822, "10.0.2.41", 443, 61021)),
             message(SOCK_DIAG_BY_FAMILY, record("10.0.1.25", 38410, "10.0.0.50", 3128, 61022, 1, 0,
                                                 24)),  // attributes follow the record
             message(NLMSG_DONE, int_payload(0))});
        const auto part = parse(data);
        CHECK(part.problem.empty());
        CHECK(part.done);
        CHECK(part.error == 0);
        CHECK_FALSE(part.interrupted);
        REQUIRE(part.entries.size() == 2);
        CHECK(part.entries[0].local == endpoint("10.0.1.25", 49822));
        CHECK(part.entries[0].remote == endpoint("10.0.2.41", 443));
        CHECK(part.entries[0].state == 1);
        CHECK(part.entries[0].uid == 1000);
        CHECK(part.entries[0].inode == 61021);
        CHECK(part.entries[1].remote == endpoint("10.0.0.50", 3128));
        CHECK(part.entries[1].uid == 0);
    }
    SECTION("a datagram without NLMSG_DONE leaves the dump open") {
        const auto part = parse(
            message(SOCK_DIAG_BY_FAMILY, record("10.0.1.25", 49822, "10.0.2.41", 443, 61021)));
        CHECK(part.problem.empty());
        CHECK_FALSE(part.done);
        CHECK(part.entries.size() == 1);
    }
    SECTION("IPv6 records, IPv4-mapped addresses kept as IPv6") {
        const auto data =
            concat({message(SOCK_DIAG_BY_FAMILY,
                            record("2001:db8::25", 50000, "2001:db8:1::41", 443, 73001)),
                    message(SOCK_DIAG_BY_FAMILY,
                            record("::ffff:10.0.1.25", 50001, "::ffff:10.0.2.41", 443, 73002)),
                    message(NLMSG_DONE, int_payload(0))});
        const auto part = parse(data, AF_INET6);
        CHECK(part.problem.empty());
        REQUIRE(part.entries.size() == 2);
        CHECK(part.entries[0].local == endpoint("2001:db8::25", 50000));
        CHECK(part.entries[1].remote == endpoint("::ffff:10.0.2.41", 443));
        CHECK(part.entries[1].remote.address().is_v6());
    }
    SECTION("an empty table is NLMSG_DONE alone, with or without its status word") {
        CHECK(parse(message(NLMSG_DONE, int_payload(0))).done);
        const auto bare = parse(message(NLMSG_DONE, {}));
        CHECK(bare.done);
        CHECK(bare.problem.empty());
        CHECK(bare.entries.empty());
    }
    SECTION("a last message without its padding is still read") {
        // 16 + 72 + 2 bytes: the kernel would pad it to 92, but the datagram ends at 90.
        auto unpadded = message(SOCK_DIAG_BY_FAMILY,
                                record("10.0.1.25", 49822, "10.0.2.41", 443, 61021, 1, 0, 2));
        REQUIRE(unpadded.size() == 92);
        unpadded.resize(90);
        const auto part = parse(unpadded);
        CHECK(part.problem.empty());
        CHECK(part.entries.size() == 1);
    }
    SECTION("NOOP messages are skipped") {
        const auto part =
            parse(concat({message(NLMSG_NOOP, {}),
                          message(SOCK_DIAG_BY_FAMILY, record("10.0.1.25", 1, "10.0.2.41", 443, 5)),
                          message(NLMSG_DONE, int_payload(0))}));
        CHECK(part.entries.size() == 1);
        CHECK(part.done);
    }
}

TEST_CASE("Errors, interruptions and messages of other requests in a dump reply", "[sockets]") {
    const auto one = message(SOCK_DIAG_BY_FAMILY, record("10.0.1.25", 1, "10.0.2.41", 443, 5));
    SECTION("NLMSG_ERROR carries the kernel's errno") {
        bytes error_payload = int_payload(-EPERM);
        nlmsghdr original{};
        append(error_payload, original);
        const auto part = parse(message(NLMSG_ERROR, error_payload, 0));
        CHECK(part.error == EPERM);
        CHECK(part.problem.empty());
        CHECK_FALSE(part.done);
    }
    SECTION("an acknowledgement (error 0) is no error") {
        const auto part = parse(concat(
            {message(NLMSG_ERROR, int_payload(0)), one, message(NLMSG_DONE, int_payload(0))}));
        CHECK(part.error == 0);
        CHECK(part.entries.size() == 1);
        CHECK(part.done);
    }
    SECTION("a negative status in NLMSG_DONE is an error of the dump") {
        const auto part = parse(concat({one, message(NLMSG_DONE, int_payload(-ENOMEM))}));
        CHECK(part.done);
        CHECK(part.error == ENOMEM);
    }
    SECTION("NLM_F_DUMP_INTR on any message marks the dump interrupted") {
        const auto on_record =
            parse(concat({message(SOCK_DIAG_BY_FAMILY, record("10.0.1.25", 1, "10.0.2.41", 443, 5),
                                  NLM_F_MULTI | NLM_F_DUMP_INTR),
                          message(NLMSG_DONE, int_payload(0))}));
        CHECK(on_record.interrupted);
        CHECK(on_record.entries.size() == 1);
        const auto on_done = parse(
            concat({one, message(NLMSG_DONE, int_payload(0), NLM_F_MULTI | NLM_F_DUMP_INTR)}));
        CHECK(on_done.interrupted);
        CHECK(on_done.done);
        CHECK_FALSE(parse(concat({one, message(NLMSG_DONE, int_payload(0))})).interrupted);
    }
    SECTION("messages of another sequence number or port id are skipped and counted") {
        const auto part =
            parse(concat({message(SOCK_DIAG_BY_FAMILY, record("10.9.9.9", 1, "10.0.2.41", 443, 90),
                                  NLM_F_MULTI, our_seq - 1),
                          message(SOCK_DIAG_BY_FAMILY, record("10.9.9.9", 2, "10.0.2.41", 443, 91),
                                  NLM_F_MULTI, our_seq, our_port + 1),
                          message(NLMSG_DONE, int_payload(0), NLM_F_MULTI, our_seq + 1), one,
                          message(NLMSG_DONE, int_payload(0))}));
        CHECK(part.foreign == 3);
        REQUIRE(part.entries.size() == 1);
        CHECK(part.entries[0].inode == 5);
        CHECK(part.done);  // only our own NLMSG_DONE ends the dump
        CHECK(part.problem.empty());
    }
}

TEST_CASE("Malformed dump replies are errors that say what and where, never a crash", "[sockets]") {
    const auto one = message(SOCK_DIAG_BY_FAMILY, record("10.0.1.25", 1, "10.0.2.41", 443, 5));
    SECTION("fewer bytes than a header after a good message") {
        auto data = concat({one, bytes(10, 0)});
        const auto part = parse(data);
        CHECK(part.problem == "message 2 at byte " + std::to_string(one.size()) +
                                  ": 10 bytes left, fewer than a netlink header");
        CHECK(part.entries.size() == 1);  // what came before is kept; the caller discards it
    }
    SECTION("a length shorter than the header") {
        auto data = one;
        const std::uint32_t bad = 8;
        std::memcpy(data.data(), &bad, sizeof bad);
        CHECK(parse(data).problem ==
              "message 1 at byte 0: length 8 is shorter than its own header");
    }
    SECTION("a length past the end of the datagram") {
        auto data = one;
        data.resize(40);
        CHECK(parse(data).problem == "message 1 at byte 0: length " + std::to_string(one.size()) +
                                         " runs past the end of the datagram (40 bytes left)");
    }
    SECTION("a record shorter than inet_diag_msg") {
        const auto part = parse(message(SOCK_DIAG_BY_FAMILY, bytes(20, 0)));
        CHECK(part.problem == "message 1 at byte 0: socket record of 20 bytes, expected at least " +
                                  std::to_string(sizeof(inet_diag_msg)));
        CHECK(part.entries.empty());
    }
    SECTION("a record of the other family") {
        const auto part =
            parse(message(SOCK_DIAG_BY_FAMILY, record("2001:db8::1", 1, "2001:db8::2", 443, 5)));
        CHECK(part.problem == "message 1 at byte 0: address family 10 in a dump of family 2");
    }
    SECTION("an unexpected message type") {
        CHECK(parse(message(not_sock_diag, bytes(4, 0))).problem ==
              "message 1 at byte 0: unexpected type " + std::to_string(not_sock_diag));
    }
    SECTION("an NLMSG_ERROR without its code, or with a positive one") {
        CHECK(parse(message(NLMSG_ERROR, bytes(2, 0))).problem ==
              "message 1 at byte 0: NLMSG_ERROR of 2 bytes has no error code");
        CHECK(parse(message(NLMSG_ERROR, int_payload(5))).problem ==
              "message 1 at byte 0: NLMSG_ERROR with positive code 5");
    }
    SECTION("every truncation of a good reply is either complete or an error") {
        const auto good = concat({one, one, message(NLMSG_DONE, int_payload(0))});
        for (std::size_t size = 0; size < good.size(); ++size) {
            CAPTURE(size);
            const auto part = parse(bytes(good.begin(), good.begin() + size));
            // A cut at a message boundary is a datagram that simply ends early.
            const bool boundary = size == 0 || size == one.size() || size == 2 * one.size();
            CHECK(part.problem.empty() == boundary);
            CHECK_FALSE(part.done);
        }
    }
    SECTION("random bytes never crash the parser") {
        std::mt19937 random(12345);
        std::uniform_int_distribution<int> byte(0, 255);
        std::size_t problems = 0;
        for (int round = 0; round < 2000; ++round) {
            bytes data(static_cast<std::size_t>(round % 300));
            for (auto& b : data) {
                b = static_cast<unsigned char>(byte(random));
            }
            // Half the rounds get a believable header so the parse goes past the first check.
            if (round % 2 == 0 && data.size() >= sizeof(nlmsghdr)) {
                nlmsghdr h{};
                h.nlmsg_len = static_cast<std::uint32_t>(data.size() - (round % 7));
                h.nlmsg_type = static_cast<std::uint16_t>(round % 3 == 0 ? SOCK_DIAG_BY_FAMILY
                                                                         : byte(random) % 5);
                h.nlmsg_seq = our_seq;
                h.nlmsg_pid = our_port;
                std::memcpy(data.data(), &h, sizeof h);
            }
            const auto part = parse(data);
            problems += part.problem.empty() ? 0 : 1;
        }
        CHECK(problems > 1000);
    }
}

namespace {

namespace ip = boost::asio::ip;

// A loopback listener with one connection to it; both ends stay open while it lives.
struct loopback_pair {
    ip::tcp::acceptor acceptor;
    ip::tcp::socket client;
    ip::tcp::socket server;

    loopback_pair(boost::asio::io_context& io, const ip::address& address)
        : acceptor(io, ip::tcp::endpoint(address, 0)), client(io), server(io) {
        client.connect(acceptor.local_endpoint());
        server = acceptor.accept();
    }
    unsigned short port() const { return acceptor.local_endpoint().port(); }
    std::uint64_t client_inode() {
        struct stat st {};
        REQUIRE(::fstat(client.native_handle(), &st) == 0);
        return st.st_ino;
    }
};

bool ipv6_loopback() {
    boost::asio::io_context io;
    ip::tcp::acceptor probe(io);
    boost::system::error_code ec;
    probe.open(ip::tcp::v6(), ec);
    if (!ec) {
        probe.bind(ip::tcp::endpoint(ip::make_address("::1"), 0), ec);
    }
    return !ec;
}

// Skips a live test where sock_diag is refused (a sandbox without AF_NETLINK, say).
bool netlink_usable() {
    const auto result = ssm_doctor::read_sock_diag_tcp({});
    if (!result.ok) {
        WARN("sock_diag unusable here, live check skipped: " << result.describe());
    }
    return result.ok;
}

using session_key = std::tuple<std::string, std::string, std::uint64_t, int>;

std::set<session_key> keys(const ssm_doctor::socket_observation& o) {
    std::set<session_key> out;
    for (const auto& s : o.sessions) {
        std::ostringstream local;
        std::ostringstream remote;
        local << s.local;
        remote << s.remote;
        out.emplace(local.str(), remote.str(), s.inode, s.pid);
    }
    return out;
}

}  // namespace

TEST_CASE("sock_diag finds a live loopback connection with its inode, owner and name",
          "[sockets]") {
    if (!netlink_usable()) {
        return;
    }
    const auto loopback = GENERATE(as<std::string>{}, "127.0.0.1", "::1");
    if (loopback == "::1" && !ipv6_loopback()) {
        WARN("IPv6 loopback unavailable here");
        return;
    }
    boost::asio::io_context io;
    loopback_pair pair(io, ip::make_address(loopback));
    loopback_pair other(io, ip::make_address(loopback));  // a port not asked for

    SECTION("the raw dump has the client end, filtered by remote port") {
        const auto result = ssm_doctor::read_sock_diag_tcp({pair.port()});
        REQUIRE(result.ok);
        CHECK(result.notes.empty());
        REQUIRE(result.entries.size() == 1);  // the accepted end's remote port is the client's
        const auto& e = result.entries[0];
        CHECK(e.local == pair.client.local_endpoint());
        CHECK(e.remote == pair.acceptor.local_endpoint());
        CHECK(e.state == ssm_doctor::tcp_established);
        CHECK(e.uid == ::geteuid());
        CHECK(e.inode == pair.client_inode());
    }
    SECTION("read_socket_table on /proc uses it and attributes the session") {
        const auto o = ssm_doctor::read_socket_table("/proc", {pair.port()});
        CHECK(o.table_read);
        CHECK(o.attribution_complete);
        CHECK(o.notes.empty());  // no fallback note: sock_diag answered
        REQUIRE(o.sessions.size() == 1);
        CHECK(o.sessions[0].inode == pair.client_inode());
        CHECK(o.sessions[0].pid == ::getpid());
        CHECK(o.sessions[0].process == "test_sockets");
    }
    SECTION("more ports than the bytecode takes are filtered in user space") {
        std::vector<unsigned short> ports(ssm_doctor::max_filter_ports + 1);
        for (std::size_t i = 0; i < ports.size(); ++i) {
            ports[i] = static_cast<unsigned short>(1 + i);
        }
        ports.back() = pair.port();
        std::erase(ports, other.port());
        const auto result = ssm_doctor::read_sock_diag_tcp(ports);
        REQUIRE(result.ok);
        const bool found =
            std::any_of(result.entries.begin(), result.entries.end(),
                        [&](const tcp_socket_entry& e) { return e.inode == pair.client_inode(); });
        CHECK(found);
        for (const auto& e : result.entries) {
            CHECK(e.remote.port() != other.port());
        }
    }
    SECTION("no ports: a valid dump with nothing in it") {
        const auto result = ssm_doctor::read_sock_diag_tcp({});
        REQUIRE(result.ok);
        CHECK(result.entries.empty());
    }
}

TEST_CASE("sock_diag and /proc/net/tcp give the same sessions on the live system", "[sockets]") {
    if (!netlink_usable()) {
        return;
    }
    boost::asio::io_context io;
    std::vector<std::unique_ptr<loopback_pair>> pairs;
    std::vector<ip::address> addresses{ip::make_address("127.0.0.1"),
                                       ip::make_address("127.0.0.2")};
    if (ipv6_loopback()) {
        addresses.push_back(ip::make_address("::1"));
    }
    for (const auto& a : addresses) {
        for (int i = 0; i < 3; ++i) {
            pairs.push_back(std::make_unique<loopback_pair>(io, a));
        }
    }
    // An IPv4 client to a dual-stack listener: its accepted end is an IPv4-mapped IPv6 socket.
    std::unique_ptr<ip::tcp::acceptor> dual;
    std::unique_ptr<ip::tcp::socket> dual_client;
    std::unique_ptr<ip::tcp::socket> dual_server;
    if (ipv6_loopback()) {
        dual = std::make_unique<ip::tcp::acceptor>(io);
        dual->open(ip::tcp::v6());
        dual->set_option(ip::v6_only(false));
        dual->bind(ip::tcp::endpoint(ip::address_v6::any(), 0));
        dual->listen();
        dual_client = std::make_unique<ip::tcp::socket>(io);
        dual_client->connect(
            ip::tcp::endpoint(ip::make_address("127.0.0.1"), dual->local_endpoint().port()));
        dual_server = std::make_unique<ip::tcp::socket>(dual->accept());
    }

    std::vector<unsigned short> ports;
    for (const auto& p : pairs) {
        ports.push_back(p->port());
        // Both ends: the accepted end's remote port is the client's ephemeral port.
        ports.push_back(p->client.local_endpoint().port());
    }
    if (dual_client) {
        ports.push_back(dual_client->local_endpoint().port());  // reaches the mapped end
    }

    const auto netlink = ssm_doctor::read_socket_table(
        "/proc", ports,
        [](const std::vector<unsigned short>& p) { return ssm_doctor::read_sock_diag_tcp(p); });
    const auto text = ssm_doctor::read_socket_table("/proc", ports, ssm_doctor::sock_diag_source{});
    CHECK(netlink.notes.empty());
    CHECK(text.notes.empty());
    CHECK(netlink.sessions.size() == 2 * pairs.size() + (dual_client ? 1 : 0));
    CHECK(keys(netlink) == keys(text));
    if (dual_server) {
        const auto mapped = std::find_if(
            netlink.sessions.begin(), netlink.sessions.end(),
            [&](const auto& s) { return s.remote.port() == dual_client->local_endpoint().port(); });
        REQUIRE(mapped != netlink.sessions.end());
        CHECK(mapped->remote == endpoint("::ffff:127.0.0.1", dual_client->local_endpoint().port()));
    }
}

TEST_CASE("A sock_diag dump that cannot finish in time fails instead of hanging", "[sockets]") {
    ssm_doctor::sock_diag_limits limits;
    limits.total = std::chrono::milliseconds(0);
    const auto result = ssm_doctor::read_sock_diag_tcp({443}, limits);
    CHECK_FALSE(result.ok);
    CHECK(result.entries.empty());
    if (result.step == "socket") {
        WARN("sock_diag unusable here: " << result.describe());
        return;
    }
    CHECK(result.step == "receive");
    CHECK(result.error == ETIMEDOUT);
    CHECK(result.describe() == "receive: no end of the dump within 0 ms");
}
