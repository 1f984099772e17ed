// SPDX-License-Identifier: Apache-2.0
// Classification of addresses and CIDR arithmetic for IPv4 and IPv6.
#include "probes/address.hpp"

#include <array>
#include <charconv>
#include <cstdint>

namespace ssm_doctor {
namespace {

using v6_bytes = boost::asio::ip::address_v6::bytes_type;

// Both families compared as 16 bytes; IPv4 as an IPv4-mapped IPv6 address, so one routine serves.
v6_bytes as_v6_bytes(const ip_address& address) {
    if (address.is_v4()) {
        return boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, address.to_v4())
            .to_bytes();
    }
    return address.to_v6().to_bytes();
}

bool prefix_matches(const v6_bytes& a, const v6_bytes& b, unsigned bits) {
    for (unsigned i = 0; i < 16 && bits > 0; ++i) {
        const unsigned take = bits >= 8 ? 8 : bits;
        const auto mask = static_cast<std::uint8_t>(0xFF00u >> take);
        if ((a[i] & mask) != (b[i] & mask)) {
            return false;
        }
        bits -= take;
    }
    return true;
}

bool in_v4(const boost::asio::ip::address_v4& a, std::uint32_t net, unsigned bits) {
    const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
    return (a.to_uint() & mask) == (net & mask);
}

}  // namespace

std::string_view to_string(address_kind kind) {
    switch (kind) {
        case address_kind::private_v4:
            return "private";
        case address_kind::ula:
            return "ula";
        case address_kind::public_address:
            return "public";
        case address_kind::link_local:
            return "link_local";
        case address_kind::loopback:
            return "loopback";
        case address_kind::unspecified:
            return "unspecified";
    }
    return "unspecified";
}

address_kind classify(const ip_address& address) {
    if (address.is_unspecified()) {
        return address_kind::unspecified;
    }
    if (address.is_loopback()) {
        return address_kind::loopback;
    }
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        return classify(
            boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6()));
    }
    if (address.is_v4()) {
        const auto v4 = address.to_v4();
        if (in_v4(v4, 0xA9FE0000u, 16)) {  // 169.254.0.0/16
            return address_kind::link_local;
        }
        if (in_v4(v4, 0x0A000000u, 8) || in_v4(v4, 0xAC100000u, 12) || in_v4(v4, 0xC0A80000u, 16) ||
            in_v4(v4, 0x64400000u, 10)) {
            return address_kind::private_v4;
        }
        return address_kind::public_address;
    }
    const auto v6 = address.to_v6();
    if (v6.is_link_local()) {
        return address_kind::link_local;
    }
    if ((v6.to_bytes()[0] & 0xFE) == 0xFC) {  // fc00::/7
        return address_kind::ula;
    }
    return address_kind::public_address;
}

bool cidr_block::contains(const ip_address& address) const {
    if (network.is_v4() != address.is_v4()) {
        return false;
    }
    const unsigned bits = network.is_v4() ? prefix_length + 96 : prefix_length;
    return prefix_matches(as_v6_bytes(network), as_v6_bytes(address), bits);
}

std::string cidr_block::to_string() const {
    return network.to_string() + "/" + std::to_string(prefix_length);
}

std::optional<cidr_block> parse_cidr(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    boost::system::error_code ec;
    const auto network = boost::asio::ip::make_address(std::string(text.substr(0, slash)), ec);
    if (ec) {
        return std::nullopt;
    }
    const auto digits = text.substr(slash + 1);
    unsigned length = 0;
    const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (err != std::errc{} || end != digits.data() + digits.size() || digits.empty() ||
        length > (network.is_v4() ? 32u : 128u)) {
        return std::nullopt;
    }
    return cidr_block{network, length};
}

bool in_any(const std::vector<cidr_block>& blocks, const ip_address& address) {
    for (const auto& block : blocks) {
        if (block.contains(address)) {
            return true;
        }
    }
    return false;
}

}  // namespace ssm_doctor
