// SPDX-License-Identifier: Apache-2.0
// Tests of address classification and CIDR blocks.
#include <utility>

#include <catch2/catch.hpp>

#include "probes/address.hpp"

using namespace ssm_doctor;
using boost::asio::ip::make_address;

TEST_CASE("addresses are classified by range", "[address]") {
    CHECK(classify(make_address("10.0.1.5")) == address_kind::private_v4);
    CHECK(classify(make_address("172.31.255.1")) == address_kind::private_v4);
    CHECK(classify(make_address("172.32.0.1")) == address_kind::public_address);
    CHECK(classify(make_address("192.168.0.1")) == address_kind::private_v4);
    CHECK(classify(make_address("100.64.0.1")) == address_kind::private_v4);
    CHECK(classify(make_address("203.0.113.10")) == address_kind::public_address);
    CHECK(classify(make_address("52.94.1.1")) == address_kind::public_address);
    CHECK(classify(make_address("169.254.169.254")) == address_kind::link_local);
    CHECK(classify(make_address("127.0.0.1")) == address_kind::loopback);
    CHECK(classify(make_address("::1")) == address_kind::loopback);
    CHECK(classify(make_address("fe80::1")) == address_kind::link_local);
    CHECK(classify(make_address("fd12:3456::1")) == address_kind::ula);
    CHECK(classify(make_address("2600:1f18::1")) == address_kind::public_address);
    CHECK(classify(make_address("::ffff:10.1.2.3")) == address_kind::private_v4);
    CHECK(classify(make_address("0.0.0.0")) == address_kind::unspecified);
}

TEST_CASE("CIDR blocks parse and contain addresses of their family only", "[address]") {
    const auto vpc = parse_cidr("10.20.0.0/16");
    REQUIRE(vpc);
    CHECK(vpc->contains(make_address("10.20.3.4")));
    CHECK_FALSE(vpc->contains(make_address("10.21.0.1")));
    CHECK_FALSE(vpc->contains(make_address("::ffff:10.20.3.4")));
    CHECK(vpc->to_string() == "10.20.0.0/16");

    const auto v6 = parse_cidr("2600:1f18:abcd::/56");
    REQUIRE(v6);
    CHECK(v6->contains(make_address("2600:1f18:abcd:ff::1")));
    CHECK_FALSE(v6->contains(make_address("2600:1f18:abce::1")));

    const auto odd = parse_cidr("10.0.0.0/9");
    REQUIRE(odd);
    CHECK(odd->contains(make_address("10.127.255.255")));
    CHECK_FALSE(odd->contains(make_address("10.128.0.0")));

    CHECK(parse_cidr("0.0.0.0/0")->contains(make_address("8.8.8.8")));
    CHECK(in_any({*vpc, *v6}, make_address("10.20.9.9")));
    CHECK_FALSE(in_any({}, make_address("10.20.9.9")));
}

TEST_CASE("text that is not a CIDR block is refused", "[address]") {
    for (const char* bad : {"", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0/8", "x/8",
                            "10.0.0.0/8x", "::/129", "10.0.0.0/-1"}) {
        INFO(bad);
        CHECK_FALSE(parse_cidr(bad));
    }
}
