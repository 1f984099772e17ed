// SPDX-License-Identifier: Apache-2.0
// IP address classes and CIDR blocks: what kind of address an endpoint name resolved to.
#pragma once

#include <utility>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace ssm_doctor {

using ip_address = boost::asio::ip::address;

// private: RFC 1918 and the shared range 100.64.0.0/10; ula: fc00::/7.
enum class address_kind { private_v4, ula, public_address, link_local, loopback, unspecified };

std::string_view to_string(address_kind kind);
address_kind classify(const ip_address& address);

struct cidr_block {
    ip_address network;
    unsigned prefix_length = 0;

    bool contains(const ip_address& address) const;
    std::string to_string() const;
};

// Parses "10.0.0.0/16" or "fd00::/8"; nullopt when the text is not a block (host bits may be set
// and are ignored, as AWS reports them cleared anyway).
std::optional<cidr_block> parse_cidr(std::string_view text);

bool in_any(const std::vector<cidr_block>& blocks, const ip_address& address);

}  // namespace ssm_doctor
