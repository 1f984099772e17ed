// SPDX-License-Identifier: Apache-2.0
// Tests of the DNS wire format, resolv.conf and hosts parsing, and the resolver against fake
// servers on loopback.
#include <utility>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include "probes/dns_message.hpp"
#include "probes/dns_probe.hpp"

using namespace ssm_doctor;
using namespace std::chrono_literals;
using boost::asio::ip::make_address;
using boost::asio::ip::udp;
using bytes = std::vector<std::uint8_t>;

namespace {

// Writes DNS messages byte by byte, so that tests can state exactly what a server sent.
struct wire {
    bytes data;

    wire& u8(unsigned value) {
        data.push_back(static_cast<std::uint8_t>(value));
        return *this;
    }
    wire& u16(unsigned value) { return u8(value >> 8).u8(value & 0xFF); }
    wire& u32(std::uint32_t value) { return u16(value >> 16).u16(value & 0xFFFF); }
    wire& raw(const bytes& more) {
        data.insert(data.end(), more.begin(), more.end());
        return *this;
    }
    // Labels of a dotted name, ending with the root label unless `then_pointer` follows.
    wire& name(std::string_view dotted, bool terminate = true) {
        while (!dotted.empty()) {
            const auto dot = dotted.find('.');
            const auto label = dotted.substr(0, dot);
            u8(label.size());
            data.insert(data.end(), label.begin(), label.end());
            dotted = dot == std::string_view::npos ? "" : dotted.substr(dot + 1);
        }
        return terminate ? u8(0) : *this;
    }
    wire& pointer(unsigned offset) { return u16(0xC000 | offset); }
    wire& header(unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns = 0,
                 unsigned ar = 0) {
        return u16(id).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
    }
    wire& question(std::string_view dotted, unsigned type) { return name(dotted).u16(type).u16(1); }
    // A record's fixed part after its owner name.
    wire& record(unsigned type, const bytes& rdata) {
        return u16(type).u16(1).u32(300).u16(rdata.size()).raw(rdata);
    }
};

constexpr unsigned type_a = 1;
constexpr unsigned type_cname = 5;
constexpr unsigned type_aaaa = 28;
constexpr unsigned response_flags = 0x8180;  // QR, RD, RA
constexpr std::uint16_t test_id = 0x1234;
constexpr std::size_t question_offset = 12;
const std::string endpoint_name = "ssm.us-east-1.amazonaws.com";

bytes ipv4(std::string_view text) {
    const auto b = make_address(std::string(text)).to_v4().to_bytes();
    return {b.begin(), b.end()};
}

bytes ipv6(std::string_view text) {
    const auto b = make_address(std::string(text)).to_v6().to_bytes();
    return {b.begin(), b.end()};
}

// Two A records for the asked name, both owners compressed to the question's name.
bytes two_a_records() {
    return wire{}
        .header(test_id, response_flags, 1, 2)
        .question(endpoint_name, type_a)
        .pointer(question_offset)
        .record(type_a, ipv4("10.0.1.5"))
        .pointer(question_offset)
        .record(type_a, ipv4("10.0.2.5"))
        .data;
}

dns_parse_result parse(const bytes& message, dns_record_type type = dns_record_type::a,
                       std::string_view name = endpoint_name) {
    return parse_dns_response(message, test_id, name, type);
}

}  // namespace

TEST_CASE("a query carries the id, RD, one question and the asked type", "[dns]") {
    std::string error;
    const auto query = build_dns_query("ssm.example.com.", dns_record_type::aaaa, 0xBEEF, &error);
    REQUIRE(query);
    const bytes expected =
        wire{}.header(0xBEEF, 0x0100, 1, 0).question("ssm.example.com", type_aaaa).data;
    CHECK(*query == expected);
    CHECK(error.empty());
}

TEST_CASE("names that cannot be encoded are refused with a reason", "[dns]") {
    const std::string long_label(64, 'a');
    std::string too_long;
    for (int i = 0; i < 5; ++i) {
        too_long += std::string(60, 'b') + ".";
    }
    for (const std::string& bad : {std::string(""), std::string("."), std::string("a..b"),
                                   std::string(".a"), long_label + ".com", too_long}) {
        INFO(bad);
        std::string error;
        CHECK_FALSE(build_dns_query(bad, dns_record_type::a, 1, &error));
        CHECK_THAT(error, Catch::Contains("cannot ask for"));
    }
    CHECK(build_dns_query(std::string(63, 'c') + ".com", dns_record_type::a, 1, nullptr));
}

TEST_CASE("query ids come from a random source", "[dns]") {
    std::vector<std::uint16_t> ids;
    for (int i = 0; i < 32; ++i) {
        ids.push_back(random_query_id());
    }
    std::sort(ids.begin(), ids.end());
    // 32 draws from 65536 values repeat one value 32 times with probability 2^-496.
    CHECK(std::unique(ids.begin(), ids.end()) - ids.begin() > 1);
}

TEST_CASE("answers with address records are decoded", "[dns]") {
    SECTION("two A records behind compression pointers") {
        const auto result = parse(two_a_records());
        REQUIRE(result.status == dns_parse_status::ok);
        CHECK(result.response.rcode == dns_rcode_noerror);
        CHECK(result.response.answer_count == 2);
        CHECK_FALSE(result.response.truncated);
        CHECK(result.response.recursion_available);
        CHECK(result.response.addresses ==
              std::vector<ip_address>{make_address("10.0.1.5"), make_address("10.0.2.5")});
        CHECK(result.response.cname_chain.empty());
    }
    SECTION("an AAAA record with its owner written out, in another letter case") {
        const auto message = wire{}
                                 .header(test_id, response_flags, 1, 1)
                                 .question("SSM.us-East-1.AmazonAWS.com", type_aaaa)
                                 .name("ssm.US-EAST-1.amazonaws.com")
                                 .record(type_aaaa, ipv6("2600:1f18::53"))
                                 .data;
        const auto result = parse(message, dns_record_type::aaaa, "ssm.us-east-1.amazonaws.com.");
        REQUIRE(result.status == dns_parse_status::ok);
        CHECK(result.response.addresses == std::vector<ip_address>{make_address("2600:1f18::53")});
    }
    SECTION("records of another type, class or owner are not taken") {
        const auto message = wire{}
                                 .header(test_id, response_flags, 1, 3)
                                 .question(endpoint_name, type_a)
                                 .pointer(question_offset)
                                 .record(type_aaaa, ipv6("2600:1f18::53"))
                                 .name("other.example.com")
                                 .record(type_a, ipv4("192.0.2.1"))
                                 .pointer(question_offset)
                                 .u16(type_a)
                                 .u16(3)  // class CH
                                 .u32(0)
                                 .u16(4)
                                 .raw(ipv4("192.0.2.2"))
                                 .data;
        const auto result = parse(message);
        REQUIRE(result.status == dns_parse_status::ok);
        CHECK(result.response.answer_count == 3);
        CHECK(result.response.addresses.empty());
    }
}

TEST_CASE("a CNAME chain is followed within the answer section", "[dns]") {
    // www.example.com -> edge.example.net -> node.example.net, the last two names compressed
    // onto the first target's "example.net", then an A record for the end of the chain.
    wire message;
    message.header(test_id, response_flags, 1, 4).question("www.example.com", type_a);
    message.pointer(question_offset);
    const std::size_t first_target = message.data.size() + 10;
    message.record(type_cname, wire{}.name("edge.example.net").data);
    // The second link's owner points at the first target; its target reuses "example.net".
    message.pointer(first_target).u16(type_cname).u16(1).u32(60).u16(7);
    const std::size_t second_target = message.data.size();
    message.u8(4).raw({'n', 'o', 'd', 'e'}).pointer(first_target + 5);
    message.pointer(second_target).record(type_a, ipv4("192.0.2.7"));
    message.name("unrelated.example.com").record(type_a, ipv4("192.0.2.99"));

    const auto result = parse(message.data, dns_record_type::a, "www.example.com");
    REQUIRE(result.status == dns_parse_status::ok);
    CHECK(result.response.cname_chain ==
          std::vector<std::string>{"edge.example.net", "node.example.net"});
    CHECK(result.response.addresses == std::vector<ip_address>{make_address("192.0.2.7")});

    SECTION("a chain that loops is malformed") {
        wire loop;
        loop.header(test_id, response_flags, 1, 2).question("a.example", type_a);
        loop.name("a.example").record(type_cname, wire{}.name("b.example").data);
        loop.name("b.example").record(type_cname, wire{}.name("a.example").data);
        const auto looped = parse(loop.data, dns_record_type::a, "a.example");
        CHECK(looped.status == dns_parse_status::malformed);
        CHECK_THAT(looped.error, Catch::Contains("loops back to a.example"));
    }
    SECTION("a CNAME target that does not fill its data is malformed") {
        wire odd;
        odd.header(test_id, response_flags, 1, 1).question("a.example", type_a);
        odd.pointer(question_offset).record(type_cname, wire{}.name("b.example").u8(0).data);
        const auto bad = parse(odd.data, dns_record_type::a, "a.example");
        CHECK(bad.status == dns_parse_status::malformed);
        CHECK_THAT(bad.error, Catch::Contains("does not fill"));
    }
}

TEST_CASE("compression pointers that loop or go forward are refused", "[dns]") {
    const auto prefix = [] {
        return wire{}.header(test_id, response_flags, 1, 1).question(endpoint_name, type_a);
    };
    SECTION("a pointer to itself") {
        auto message = prefix();
        message.pointer(message.data.size()).record(type_a, ipv4("10.0.0.1"));
        const auto result = parse(message.data);
        CHECK(result.status == dns_parse_status::malformed);
        CHECK_THAT(result.error, Catch::Contains("not backwards"));
    }
    SECTION("two pointers that point at each other") {
        auto message = prefix();
        const auto here = message.data.size();
        message.pointer(here + 2).pointer(here).record(type_a, ipv4("10.0.0.1"));
        CHECK(parse(message.data).status == dns_parse_status::malformed);
    }
    SECTION("a long chain of backward pointers") {
        // The first record, of a type the decoder skips, carries 20 pointers, each pointing at
        // the one before and the first at the question's name; the second record's owner points
        // at the last of them.
        auto message = wire{}.header(test_id, response_flags, 1, 2).question(endpoint_name, type_a);
        message.pointer(question_offset).u16(99).u16(1).u32(60).u16(40);
        std::size_t previous = question_offset;
        for (int i = 0; i < 20; ++i) {
            const auto here = message.data.size();
            message.pointer(previous);
            previous = here;
        }
        message.pointer(previous).record(type_a, ipv4("10.0.0.1"));
        const auto result = parse(message.data);
        CHECK(result.status == dns_parse_status::malformed);
        CHECK_THAT(result.error, Catch::StartsWith("answer 2:") &&
                                     Catch::Contains("more than 16 compression pointers"));
    }
    SECTION("a pointer in the question") {
        const auto message = wire{}.header(test_id, response_flags, 1, 0).pointer(40).data;
        const auto result = parse(message);
        CHECK(result.status == dns_parse_status::malformed);
        CHECK_THAT(result.error, Catch::StartsWith("question:"));
    }
}

TEST_CASE("a message cut anywhere is refused without reading past its end", "[dns]") {
    const auto full = two_a_records();
    REQUIRE(parse(full).status == dns_parse_status::ok);
    for (std::size_t size = 0; size < full.size(); ++size) {
        INFO("first " << size << " bytes");
        // A copy of exactly `size` bytes, so that a read past the end is caught by ASan.
        const bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
        const auto result = parse(cut);
        CHECK(result.status != dns_parse_status::ok);
        CHECK_FALSE(result.error.empty());
        if (size < 12) {
            CHECK(result.status == dns_parse_status::not_ours);
        } else {
            CHECK(result.status == dns_parse_status::malformed);
        }
    }
}

TEST_CASE("bad record data and header fields are named in the error", "[dns]") {
    SECTION("an A record of 5 bytes") {
        const auto message = wire{}
                                 .header(test_id, response_flags, 1, 1)
                                 .question(endpoint_name, type_a)
                                 .pointer(question_offset)
                                 .record(type_a, {10, 0, 0, 1, 9})
                                 .data;
        const auto result = parse(message);
        CHECK(result.status == dns_parse_status::malformed);
        CHECK(result.error == "answer 1: A record of 5 bytes instead of 4");
    }
    SECTION("record data longer than the message") {
        auto message = wire{}
                           .header(test_id, response_flags, 1, 1)
                           .question(endpoint_name, type_a)
                           .pointer(question_offset)
                           .u16(type_a)
                           .u16(1)
                           .u32(60)
                           .u16(200)
                           .raw(ipv4("10.0.0.1"));
        const auto result = parse(message.data);
        CHECK(result.status == dns_parse_status::malformed);
        CHECK_THAT(result.error, Catch::Contains("200 bytes") && Catch::Contains("runs past"));
    }
    SECTION("an extended label type") {
        const auto message = wire{}.header(test_id, response_flags, 1, 0).u8(0x41).data;
        CHECK_THAT(parse(message).error, Catch::Contains("unsupported type bits"));
    }
    SECTION("a name longer than 255 bytes") {
        wire message;
        message.header(test_id, response_flags, 1, 0);
        for (int i = 0; i < 5; ++i) {
            message.u8(60).raw(bytes(60, 'x'));
        }
        message.u8(0).u16(type_a).u16(1);
        CHECK_THAT(parse(message.data).error, Catch::Contains("longer than 255"));
    }
    SECTION("two questions") {
        const auto message = wire{}
                                 .header(test_id, response_flags, 2, 0)
                                 .question(endpoint_name, type_a)
                                 .question(endpoint_name, type_a)
                                 .data;
        CHECK(parse(message).status == dns_parse_status::malformed);
    }
    SECTION("no question in a NOERROR answer") {
        const auto message = wire{}.header(test_id, response_flags, 0, 0).data;
        CHECK(parse(message).status == dns_parse_status::malformed);
    }
    SECTION("an opcode other than QUERY") {
        const auto message =
            wire{}.header(test_id, response_flags | 0x2000, 1, 0).question(endpoint_name, 1).data;
        CHECK_THAT(parse(message).error, Catch::Contains("opcode 4"));
    }
}

TEST_CASE("packets that answer another query are told apart from broken ones", "[dns]") {
    SECTION("another id") {
        auto message = two_a_records();
        message[1] ^= 0x01;
        const auto result = parse(message);
        CHECK(result.status == dns_parse_status::not_ours);
        CHECK(result.error == "id 4661 instead of 4660");
    }
    SECTION("a query rather than a response") {
        const auto message = wire{}.header(test_id, 0x0100, 1, 0).question(endpoint_name, 1).data;
        CHECK(parse(message).status == dns_parse_status::not_ours);
    }
    SECTION("another name or type in the question") {
        CHECK(parse(two_a_records(), dns_record_type::a, "ssm.eu-west-1.amazonaws.com").status ==
              dns_parse_status::not_ours);
        CHECK(parse(two_a_records(), dns_record_type::aaaa).status == dns_parse_status::not_ours);
    }
    CHECK(dns_message_id(two_a_records()) == test_id);
    CHECK_FALSE(dns_message_id(bytes{0x12}));
}

TEST_CASE("response codes and flags are reported as read", "[dns]") {
    SECTION("SERVFAIL, NXDOMAIN and REFUSED") {
        for (const int rcode : {dns_rcode_servfail, dns_rcode_nxdomain, dns_rcode_refused}) {
            INFO(rcode);
            const auto message = wire{}
                                     .header(test_id, response_flags | rcode, 1, 0, 1)
                                     .question(endpoint_name, type_a)
                                     .raw({0xC0, 0x0C, 0x00})  // authority: not read
                                     .data;
            const auto result = parse(message);
            REQUIRE(result.status == dns_parse_status::ok);
            CHECK(result.response.rcode == rcode);
            CHECK(result.response.addresses.empty());
        }
        CHECK(dns_rcode_name(dns_rcode_servfail) == "servfail");
        CHECK(dns_rcode_name(dns_rcode_nxdomain) == "nxdomain");
        CHECK(dns_rcode_name(dns_rcode_refused) == "refused");
        CHECK(dns_rcode_name(9) == "rcode 9");
    }
    SECTION("an error answer without its question") {
        const auto result = parse(wire{}.header(test_id, response_flags | 5, 0, 0).data);
        REQUIRE(result.status == dns_parse_status::ok);
        CHECK(result.response.rcode == dns_rcode_refused);
    }
    SECTION("NOERROR without records is NODATA") {
        const auto message =
            wire{}.header(test_id, response_flags, 1, 0).question(endpoint_name, type_aaaa).data;
        const auto result = parse(message, dns_record_type::aaaa);
        REQUIRE(result.status == dns_parse_status::ok);
        CHECK(result.response.rcode == dns_rcode_noerror);
        CHECK(result.response.answer_count == 0);
        CHECK(result.response.addresses.empty());
    }
    SECTION("a truncated answer keeps the records before the cut") {
        auto message = two_a_records();
        message[2] |= 0x02;  // TC
        message[7] = 3;      // ANCOUNT claims a third record that is not there
        message.insert(message.end(), {0xC0, 0x0C, 0x00, 0x01});
        const auto result = parse(message);
        REQUIRE(result.status == dns_parse_status::ok);
        CHECK(result.response.truncated);
        CHECK(result.response.answer_count == 2);
        CHECK(result.response.addresses.size() == 2);
    }
}

TEST_CASE("random damage to an answer never crashes the decoder", "[dns]") {
    const auto original = two_a_records();
    std::mt19937 generator(20240601);  // fixed, so that a failure can be replayed
    std::uniform_int_distribution<std::size_t> position(2, original.size() - 1);
    std::uniform_int_distribution<int> value(0, 255);
    int ok = 0;
    int unexplained = 0;  // refusals without a reason
    for (int round = 0; round < 3000; ++round) {
        auto damaged = original;
        for (int flips = 0; flips < 3; ++flips) {
            damaged[position(generator)] = static_cast<std::uint8_t>(value(generator));
        }
        damaged.resize(position(generator) + 1);
        const auto result = parse(damaged);
        if (result.status == dns_parse_status::ok) {
            ++ok;
        } else if (result.error.empty()) {
            ++unexplained;
        }
    }
    CHECK(unexplained == 0);
    CHECK(ok < 3000);
}

TEST_CASE("resolv.conf gives servers and options as glibc reads them", "[dns]") {
    std::vector<std::string> notes;
    SECTION("an EC2 instance's file") {
        const auto config = parse_resolv_conf(
            "; generated by /usr/sbin/dhclient-script\n"
            "search ec2.internal\n"
            "options timeout:2 attempts:5\n"
            "nameserver 10.0.0.2\n",
            &notes);
        REQUIRE(config.servers.size() == 1);
        CHECK(config.servers[0] == udp::endpoint(make_address("10.0.0.2"), 53));
        CHECK(config.attempt_timeout == 2000ms);
        CHECK(config.attempts == 5);
        CHECK(notes.empty());
    }
    SECTION("IPv6 servers with a scope, comments and CRLF line ends") {
        const auto config = parse_resolv_conf(
            "# Dynamic resolv.conf(5) file\r\n"
            "nameserver fd00:ec2::253\r\n"
            "nameserver fe80::1%2   # link-local, scope by index\r\n"
            "  nameserver\t169.254.169.253\r\n",
            &notes);
        REQUIRE(config.servers.size() == 3);
        CHECK(config.servers[0].address() == make_address("fd00:ec2::253"));
        CHECK(config.servers[1].address().to_v6().scope_id() == 2);
        CHECK(config.servers[2] == udp::endpoint(make_address("169.254.169.253"), 53));
        CHECK(config.attempt_timeout == 5000ms);
        CHECK(config.attempts == 2);
        CHECK(notes.empty());
    }
    SECTION("an options line with several options, and a later one overriding it") {
        const auto config = parse_resolv_conf(
            "nameserver 127.0.0.53\n"
            "options edns0 trust-ad rotate timeout:3 ndots:2 attempts:3 single-request-reopen\n"
            "options attempts:4\n",
            &notes);
        CHECK(config.attempt_timeout == 3000ms);
        CHECK(config.attempts == 4);
        CHECK(notes.empty());
    }
    SECTION("out-of-range options are capped like glibc caps them") {
        const auto config = parse_resolv_conf("options timeout:99 attempts:9\n", &notes);
        CHECK(config.attempt_timeout == 30000ms);
        CHECK(config.attempts == 5);
        const auto zero = parse_resolv_conf("options timeout:0 attempts:0\n", &notes);
        CHECK(zero.attempt_timeout == 1000ms);
        CHECK(zero.attempts == 1);
        REQUIRE(notes.size() == 1);
        CHECK_THAT(notes[0], Catch::Contains("attempts:0"));
    }
    SECTION("garbage is ignored and bad nameserver lines are noted") {
        const auto config = parse_resolv_conf(
            "nameserver\n"
            "nameserver not-an-address\n"
            "nameserver10.9.9.9\n"
            "\x01\xff garbage \x7f\n"
            "options timeout:soon attempts\n"
            "nameserver 10.0.0.2\n"
            "nameserver 10.0.0.3\n"
            "nameserver 10.0.0.4\n"
            "nameserver 10.0.0.5\n",
            &notes);
        REQUIRE(config.servers.size() == 3);
        CHECK(config.servers[2].address() == make_address("10.0.0.4"));
        REQUIRE(notes.size() == 5);
        CHECK(notes[0] == "resolv.conf line 1: nameserver without an address");
        CHECK(notes[1] == "resolv.conf line 2: nameserver \"not-an-address\" is not an IP address");
        CHECK_THAT(notes[2],
                   Catch::StartsWith("resolv.conf line 5:") && Catch::Contains("timeout:soon"));
        CHECK_THAT(notes[3], Catch::Contains("\"attempts\""));
        CHECK_THAT(notes[4],
                   Catch::StartsWith("resolv.conf line 9:") && Catch::Contains("first 3"));
        CHECK(config.attempt_timeout == 5000ms);
    }
    SECTION("no nameserver line means 127.0.0.1:53") {
        const auto config = parse_resolv_conf("search example.com\n", nullptr);
        CHECK(config.servers.empty());
        CHECK(effective_servers(config) ==
              std::vector<udp::endpoint>{udp::endpoint(make_address("127.0.0.1"), 53)});
        resolver_config given;
        given.servers = {udp::endpoint(make_address("10.0.0.2"), 53)};
        CHECK(effective_servers(given) == given.servers);
    }
}

TEST_CASE("the hosts file is searched by name and alias, ignoring case", "[dns]") {
    const std::string hosts =
        "127.0.0.1   localhost localhost.localdomain\n"
        "::1         localhost6 localhost\n"
        "10.1.2.3    ssm.us-east-1.amazonaws.com ssm  # pinned by an admin\n"
        "10.1.2.4\tSSM.US-EAST-1.AMAZONAWS.COM.\n"
        "fd00::5     ssm.us-east-1.amazonaws.com\n"
        "not-an-ip   ssm.us-east-1.amazonaws.com\n"
        "# 10.9.9.9  ssm.us-east-1.amazonaws.com\n"
        "10.1.2.3    ssm.us-east-1.amazonaws.com\n"
        "10.1.2.8\n";
    CHECK(lookup_hosts_file(hosts, "ssm.us-east-1.amazonaws.com.") ==
          std::vector<ip_address>{make_address("10.1.2.3"), make_address("10.1.2.4"),
                                  make_address("fd00::5")});
    CHECK(lookup_hosts_file(hosts, "SSM") == std::vector<ip_address>{make_address("10.1.2.3")});
    CHECK(lookup_hosts_file(hosts, "localhost") ==
          std::vector<ip_address>{make_address("127.0.0.1"), make_address("::1")});
    CHECK(lookup_hosts_file(hosts, "ec2messages.us-east-1.amazonaws.com").empty());
    CHECK(lookup_hosts_file(hosts, "").empty());
    CHECK(lookup_hosts_file("", "ssm").empty());
}

namespace {

// How a fake server answers each query.
enum class behaviour {
    answer,  // A: two addresses and a duplicate; AAAA: one address
    cname,   // through one CNAME to edge.example.net
    nxdomain,
    servfail,
    refused,
    nodata,
    silent,          // never answers
    garbage,         // a short noise datagram, then a header with our id and broken data
    wrong_id_first,  // the answer under another id, then the real one
    a_only,          // answers A, ignores AAAA
};

// A DNS server on 127.0.0.1 and an ephemeral port, answering by its behaviour.
class fake_dns_server {
public:
    fake_dns_server(boost::asio::io_context& context, behaviour how)
        : socket_(context, udp::endpoint(make_address("127.0.0.1"), 0)), how_(how) {
        boost::asio::co_spawn(context, serve(), boost::asio::detached);
    }

    udp::endpoint endpoint() const { return socket_.local_endpoint(); }
    int queries() const { return queries_; }

private:
    boost::asio::awaitable<void> serve() {
        bytes buffer(2048);
        for (;;) {
            udp::endpoint peer;
            boost::system::error_code ec;
            const auto size = co_await socket_.async_receive_from(
                boost::asio::buffer(buffer), peer,
                boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (ec) {
                co_return;
            }
            ++queries_;
            for (const auto& reply : replies(bytes(buffer.begin(), buffer.begin() + size))) {
                co_await socket_.async_send_to(
                    boost::asio::buffer(reply), peer,
                    boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            }
        }
    }

    std::vector<bytes> replies(const bytes& query) const {
        const unsigned id = (query[0] << 8) | query[1];
        const bytes question(query.begin() + 12, query.end());
        const unsigned type = (query[query.size() - 4] << 8) | query[query.size() - 3];
        const auto reply = [&](unsigned rcode, unsigned answers) {
            return wire{}.header(id, response_flags | rcode, 1, answers).raw(question);
        };
        const auto addresses = [&](unsigned owner, const std::vector<bytes>& v4, const bytes& v6) {
            auto message = reply(0, type == type_a ? v4.size() : 1);
            if (type == type_a) {
                for (const auto& address : v4) {
                    message.pointer(owner).record(type_a, address);
                }
            } else {
                message.pointer(owner).record(type_aaaa, v6);
            }
            return message;
        };
        switch (how_) {
            case behaviour::answer:
                return {addresses(12, {ipv4("192.0.2.10"), ipv4("192.0.2.11"), ipv4("192.0.2.10")},
                                  ipv6("2001:db8::10"))
                            .data};
            case behaviour::cname: {
                auto message = wire{}.header(id, response_flags, 1, 2).raw(question);
                message.pointer(12);
                const auto target = message.data.size() + 10;
                message.record(type_cname, wire{}.name("edge.example.net").data);
                message.pointer(target);
                message.record(type, type == type_a ? ipv4("192.0.2.20") : ipv6("2001:db8::20"));
                return {message.data};
            }
            case behaviour::nxdomain:
                return {reply(3, 0).data};
            case behaviour::servfail:
                return {reply(2, 0).data};
            case behaviour::refused:
                return {reply(5, 0).data};
            case behaviour::nodata:
                return {reply(0, 0).data};
            case behaviour::silent:
                return {};
            case behaviour::garbage:
                return {bytes{0xde, 0xad},
                        wire{}.header(id, response_flags, 1, 1).u16(0xFFFF).data};
            case behaviour::wrong_id_first: {
                auto stray = addresses(12, {ipv4("198.51.100.66")}, ipv6("2001:db8::66"));
                stray.data[0] ^= 0x5A;
                return {stray.data, addresses(12, {ipv4("192.0.2.30")}, ipv6("2001:db8::30")).data};
            }
            case behaviour::a_only:
                if (type == type_a) {
                    return {addresses(12, {ipv4("192.0.2.40")}, {}).data};
                }
                return {};
        }
        return {};
    }

    udp::socket socket_;
    behaviour how_;
    int queries_ = 0;
};

resolver_config config_for(std::initializer_list<const fake_dns_server*> servers,
                           std::chrono::milliseconds attempt_timeout = 200ms, int attempts = 1) {
    resolver_config config;
    for (const auto* server : servers) {
        config.servers.push_back(server->endpoint());
    }
    config.attempt_timeout = attempt_timeout;
    config.attempts = attempts;
    return config;
}

struct timed_observation {
    dns_observation observation;
    std::chrono::milliseconds wall{0};  // measured by the test, around the whole probe
};

// Runs resolve_host to completion on `context`, which also runs the fake servers.
timed_observation resolve(boost::asio::io_context& context, const std::string& host,
                          resolver_config config, std::chrono::milliseconds budget,
                          std::string hosts_text = "") {
    std::optional<dns_observation> result;
    std::exception_ptr thrown;
    const auto start = std::chrono::steady_clock::now();
    boost::asio::co_spawn(context,
                          resolve_host(context.get_executor(), host, std::move(config),
                                       std::move(hosts_text), start + budget),
                          [&](std::exception_ptr error, dns_observation observation) {
                              thrown = error;
                              result = std::move(observation);
                              context.stop();
                          });
    // A safety net only: the probe must end by its deadline on its own.
    context.restart();
    context.run_for(budget + 3s);
    const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (thrown) {
        std::rethrow_exception(thrown);
    }
    REQUIRE(result);
    return {std::move(*result), wall};
}

std::vector<std::string> outcomes(const dns_observation& observation) {
    std::vector<std::string> list;
    for (const auto& trace : observation.trace) {
        list.push_back(trace.type + " " + trace.outcome);
    }
    return list;
}

}  // namespace

TEST_CASE("a name with A and AAAA records resolves to both, A first", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server server(context, behaviour::answer);
    const auto [observation, wall] = resolve(context, endpoint_name, config_for({&server}), 500ms);
    CHECK(observation.host == endpoint_name);
    CHECK(observation.source == "dns");
    CHECK_FALSE(observation.failure);
    CHECK(observation.addresses == std::vector<ip_address>{make_address("192.0.2.10"),
                                                           make_address("192.0.2.11"),
                                                           make_address("2001:db8::10")});
    REQUIRE(observation.trace.size() == 2);
    CHECK(observation.trace[0].server ==
          server.endpoint().address().to_string() + ":" + std::to_string(server.endpoint().port()));
    CHECK(outcomes(observation) ==
          std::vector<std::string>{"A noerror 3 addresses", "AAAA noerror 1 address"});
    CHECK(server.queries() == 2);
    CHECK(observation.elapsed < 400ms);
    CHECK(wall < 400ms);
}

TEST_CASE("a name behind a CNAME resolves to its target's addresses", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server server(context, behaviour::cname);
    const auto [observation, wall] = resolve(context, endpoint_name, config_for({&server}), 500ms);
    CHECK_FALSE(observation.failure);
    CHECK(observation.addresses ==
          std::vector<ip_address>{make_address("192.0.2.20"), make_address("2001:db8::20")});
    CHECK(outcomes(observation) ==
          std::vector<std::string>{"A noerror 1 address via CNAME edge.example.net",
                                   "AAAA noerror 1 address via CNAME edge.example.net"});
}

TEST_CASE("NXDOMAIN is definite and stops the asking", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server first(context, behaviour::nxdomain);
    fake_dns_server second(context, behaviour::answer);
    const auto [observation, wall] =
        resolve(context, endpoint_name, config_for({&first, &second}, 200ms, 2), 500ms);
    REQUIRE(observation.failure);
    CHECK(observation.failure->phase == probe_phase::dns);
    CHECK(observation.failure->reason == failure_reason::nxdomain);
    CHECK_THAT(observation.failure->detail, Catch::Contains(endpoint_name));
    CHECK(observation.addresses.empty());
    CHECK(second.queries() == 0);
    REQUIRE(observation.trace.size() == 2);
    CHECK(observation.trace[0].outcome == "nxdomain");
}

TEST_CASE("SERVFAIL and REFUSED move on to the next server", "[dns]") {
    boost::asio::io_context context;
    SECTION("and the next server's answer counts") {
        fake_dns_server first(context, behaviour::servfail);
        fake_dns_server second(context, behaviour::answer);
        const auto [observation, wall] =
            resolve(context, endpoint_name, config_for({&first, &second}), 500ms);
        CHECK_FALSE(observation.failure);
        CHECK(observation.addresses.size() == 3);
        CHECK(outcomes(observation) == std::vector<std::string>{"A servfail", "AAAA servfail",
                                                                "A noerror 3 addresses",
                                                                "AAAA noerror 1 address"});
    }
    SECTION("and when all fail, on every attempt, the name fails with servfail") {
        fake_dns_server first(context, behaviour::servfail);
        fake_dns_server second(context, behaviour::refused);
        const auto [observation, wall] =
            resolve(context, endpoint_name, config_for({&first, &second}, 200ms, 2), 500ms);
        REQUIRE(observation.failure);
        CHECK(observation.failure->reason == failure_reason::servfail);
        CHECK_THAT(observation.failure->detail,
                   Catch::Contains("servfail") && Catch::Contains("refused"));
        CHECK(observation.trace.size() == 8);
        CHECK(first.queries() == 4);
        CHECK(second.queries() == 4);
        CHECK(wall < 400ms);
    }
}

TEST_CASE("NOERROR without records for both types is no_address", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server server(context, behaviour::nodata);
    const auto [observation, wall] = resolve(context, endpoint_name, config_for({&server}), 500ms);
    REQUIRE(observation.failure);
    CHECK(observation.failure->reason == failure_reason::no_address);
    CHECK(outcomes(observation) == std::vector<std::string>{"A noerror no data (0 answers)",
                                                            "AAAA noerror no data (0 answers)"});
}

TEST_CASE("a silent server ends in dns_timeout by the deadline", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server server(context, behaviour::silent);
    SECTION("the overall deadline cuts the attempt short") {
        const auto [observation, wall] =
            resolve(context, endpoint_name, config_for({&server}, 5000ms, 2), 300ms);
        REQUIRE(observation.failure);
        CHECK(observation.failure->reason == failure_reason::dns_timeout);
        CHECK(outcomes(observation) == std::vector<std::string>{"A timeout (overall deadline)",
                                                                "AAAA timeout (overall deadline)"});
        CHECK(server.queries() == 2);
        CHECK(observation.elapsed >= 250ms);
        CHECK(observation.elapsed < 500ms);
        CHECK(wall >= 290ms);
        CHECK(wall < 500ms);
    }
    SECTION("each attempt waits the attempt timeout, then asks again") {
        const auto [observation, wall] =
            resolve(context, endpoint_name, config_for({&server}, 80ms, 2), 1000ms);
        REQUIRE(observation.failure);
        CHECK(observation.failure->reason == failure_reason::dns_timeout);
        CHECK(outcomes(observation) ==
              std::vector<std::string>{"A timeout", "AAAA timeout", "A timeout", "AAAA timeout"});
        CHECK(observation.trace[0].elapsed >= 70ms);
        CHECK(server.queries() == 4);
        CHECK(wall >= 150ms);
        CHECK(wall < 600ms);
    }
    SECTION("a deadline already past sends nothing") {
        const auto [observation, wall] =
            resolve(context, endpoint_name, config_for({&server}), 0ms);
        REQUIRE(observation.failure);
        CHECK(observation.failure->reason == failure_reason::dns_timeout);
        CHECK(observation.trace.empty());
        CHECK(server.queries() == 0);
    }
}

TEST_CASE("the first server silent, the second answers", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server first(context, behaviour::silent);
    fake_dns_server second(context, behaviour::answer);
    const auto [observation, wall] =
        resolve(context, endpoint_name, config_for({&first, &second}, 100ms, 2), 800ms);
    CHECK_FALSE(observation.failure);
    CHECK(observation.addresses.size() == 3);
    CHECK(outcomes(observation) == std::vector<std::string>{"A timeout", "AAAA timeout",
                                                            "A noerror 3 addresses",
                                                            "AAAA noerror 1 address"});
    CHECK(observation.elapsed >= 90ms);
    CHECK(wall < 500ms);
}

TEST_CASE("an unreachable port counts as a failed attempt at that server", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server second(context, behaviour::answer);
    udp::endpoint closed;
    {
        // A port that was just free: nothing listens, so the kernel answers ICMP unreachable.
        udp::socket probe_port(context, udp::endpoint(make_address("127.0.0.1"), 0));
        closed = probe_port.local_endpoint();
    }
    auto config = config_for({&second}, 2000ms, 1);
    config.servers.insert(config.servers.begin(), closed);
    const auto [observation, wall] = resolve(context, endpoint_name, config, 3000ms);
    CHECK_FALSE(observation.failure);
    REQUIRE(observation.trace.size() == 4);
    CHECK(observation.trace[0].outcome == "port unreachable (ICMP)");
    CHECK(observation.trace[1].outcome == "port unreachable (ICMP)");
    // Well under the 2 s attempt timeout: the refusal ended the attempt at once.
    CHECK(wall < 1000ms);

    SECTION("and alone it is a dns_error") {
        resolver_config only;
        only.servers = {closed};
        only.attempt_timeout = 2000ms;
        const auto [alone, alone_wall] = resolve(context, endpoint_name, only, 3000ms);
        REQUIRE(alone.failure);
        CHECK(alone.failure->reason == failure_reason::dns_error);
        CHECK_THAT(alone.failure->detail, Catch::Contains("port unreachable"));
    }
}

TEST_CASE("garbage from a server is a dns_error, noise is ignored", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server server(context, behaviour::garbage);
    const auto [observation, wall] = resolve(context, endpoint_name, config_for({&server}), 500ms);
    REQUIRE(observation.failure);
    CHECK(observation.failure->reason == failure_reason::dns_error);
    CHECK_THAT(observation.failure->detail, Catch::Contains("malformed answer: question:"));
    REQUIRE(observation.trace.size() == 2);
    for (const auto& trace : observation.trace) {
        CHECK_THAT(trace.outcome, Catch::StartsWith("malformed answer") &&
                                      Catch::Contains("2 stray packets ignored"));
    }
    CHECK(wall < 400ms);
}

TEST_CASE("an answer under the wrong id is ignored and the right one taken", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server server(context, behaviour::wrong_id_first);
    const auto [observation, wall] = resolve(context, endpoint_name, config_for({&server}), 500ms);
    CHECK_FALSE(observation.failure);
    CHECK(observation.addresses ==
          std::vector<ip_address>{make_address("192.0.2.30"), make_address("2001:db8::30")});
    REQUIRE(observation.trace.size() == 2);
    CHECK_THAT(observation.trace[0].outcome, Catch::Contains("2 stray packets ignored"));
}

TEST_CASE("A records are enough when AAAA never comes", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server server(context, behaviour::a_only);
    const auto [observation, wall] =
        resolve(context, endpoint_name, config_for({&server}, 100ms, 1), 500ms);
    CHECK_FALSE(observation.failure);
    CHECK(observation.addresses == std::vector<ip_address>{make_address("192.0.2.40")});
    CHECK(outcomes(observation) == std::vector<std::string>{"A noerror 1 address", "AAAA timeout"});
}

TEST_CASE("the hosts file comes before DNS", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server server(context, behaviour::answer);
    const std::string hosts =
        "fd00::7 ssm.us-east-1.amazonaws.com\n10.7.7.7 "
        "ssm.us-east-1.amazonaws.com\n";
    SECTION("a listed name is not asked of any server") {
        const auto [observation, wall] =
            resolve(context, endpoint_name, config_for({&server}), 500ms, hosts);
        CHECK(observation.source == "hosts");
        CHECK_FALSE(observation.failure);
        CHECK(observation.addresses ==
              std::vector<ip_address>{make_address("10.7.7.7"), make_address("fd00::7")});
        CHECK(observation.trace.empty());
        CHECK(server.queries() == 0);
    }
    SECTION("another name still goes to DNS") {
        const auto [observation, wall] = resolve(context, "ssmmessages.us-east-1.amazonaws.com",
                                                 config_for({&server}), 500ms, hosts);
        CHECK(observation.source == "dns");
        CHECK(server.queries() == 2);
    }
}

TEST_CASE("a name that cannot be asked is a dns_error without traffic", "[dns]") {
    boost::asio::io_context context;
    fake_dns_server server(context, behaviour::answer);
    const auto [observation, wall] = resolve(context, "bad..name", config_for({&server}), 500ms);
    REQUIRE(observation.failure);
    CHECK(observation.failure->reason == failure_reason::dns_error);
    CHECK_THAT(observation.failure->detail, Catch::Contains("empty label"));
    CHECK(server.queries() == 0);
}
