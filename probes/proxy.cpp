// SPDX-License-Identifier: Apache-2.0
// Proxy URL splitting and NO_PROXY matching with the rules of Go's net/http proxy support.
#include "probes/proxy.hpp"

#include <algorithm>
#include <charconv>
#include <vector>

#include "probes/address.hpp"

namespace ssm_doctor {
namespace {

std::string_view trim(std::string_view text) {
    constexpr std::string_view blanks = " \t\r\n";
    const std::size_t first = text.find_first_not_of(blanks);
    if (first == std::string_view::npos) {
        return {};
    }
    return text.substr(first, text.find_last_not_of(blanks) - first + 1);
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    });
    return out;
}

std::optional<ip_address> parse_ip(std::string_view text) {
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(std::string(text), ec);
    if (ec) {
        return std::nullopt;
    }
    // Go compares IPv4-mapped IPv6 addresses as IPv4 ones.
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        address = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
    }
    return address;
}

std::optional<unsigned short> parse_port(std::string_view text) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value > 65535) {
        return std::nullopt;
    }
    return static_cast<unsigned short>(value);
}

// "host", "host:port", "[v6]:port" or a bare IPv6 address. `ok` is false for text such as
// "[fd00::1" or "[fd00::1]x" that Go's SplitHostPort rejects.
struct host_port {
    std::string_view host;
    std::string_view port;  // empty when not given
    bool ok = true;
};

host_port split_host_port(std::string_view text) {
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos) {
            return {text, {}, false};
        }
        const std::string_view after = text.substr(close + 1);
        if (after.empty()) {
            return {text.substr(1, close - 1), {}};
        }
        if (after.front() != ':') {
            return {text, {}, false};
        }
        return {text.substr(1, close - 1), after.substr(1)};
    }
    const std::size_t colon = text.find(':');
    if (colon == std::string_view::npos) {
        return {text, {}};
    }
    if (text.find(':', colon + 1) != std::string_view::npos) {
        return {text, {}};  // several colons and no brackets: an IPv6 address without a port
    }
    return {text.substr(0, colon), text.substr(colon + 1)};
}

// The pieces of a proxy URL. Without "scheme://" the whole text is the authority, as Go
// retries such values with "http://" in front.
struct url_parts {
    std::string_view scheme;     // lower case expected; empty when the text had none
    std::string_view userinfo;   // "user:pw", without the '@'
    std::string_view authority;  // host[:port], after the userinfo
    std::string_view rest;       // path, query, fragment
    bool had_userinfo = false;
};

url_parts split_url(std::string_view url) {
    url_parts parts;
    const std::size_t sep = url.find("://");
    std::string_view after = url;
    if (sep != std::string_view::npos) {
        parts.scheme = url.substr(0, sep);
        after = url.substr(sep + 3);
    }
    const std::size_t end = after.find_first_of("/?#");
    std::string_view authority = after.substr(0, end);
    parts.rest = end == std::string_view::npos ? std::string_view{} : after.substr(end);
    // A password may contain '@'; the host starts after the last one, as in Go's url.Parse.
    const std::size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
        parts.had_userinfo = true;
        parts.userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
    }
    parts.authority = authority;
    return parts;
}

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

std::optional<proxy_address> parse_proxy_url(std::string_view url) {
    const url_parts parts = split_url(trim(url));
    const std::string scheme = lower(parts.scheme);
    unsigned short default_port = 80;
    if (scheme == "https") {
        default_port = 443;
    } else if (scheme == "socks5" || scheme == "socks5h") {
        default_port = 1080;
    } else if (!scheme.empty() && scheme != "http") {
        return std::nullopt;
    }

    const host_port split = split_host_port(parts.authority);
    if (!split.ok || split.host.empty()) {
        return std::nullopt;
    }
    proxy_address address;
    address.host = std::string(split.host);
    address.port = default_port;
    if (!split.port.empty()) {  // "host:" keeps the default port, as in Go
        const auto port = parse_port(split.port);
        if (!port || *port == 0) {
            return std::nullopt;
        }
        address.port = *port;
    }
    if (address.host.find_first_of(" \t@/") != std::string::npos) {
        return std::nullopt;
    }
    return address;
}

std::string redact_proxy_url(std::string_view url) {
    const url_parts parts = split_url(url);
    if (!parts.had_userinfo) {
        return std::string(url);
    }
    std::string out;
    if (!parts.scheme.empty()) {
        out.append(parts.scheme).append("://");
    }
    out.append(parts.authority).append(parts.rest);
    return out;
}

bool proxy_excluded(std::string_view host, std::string_view no_proxy) {
    // The agent only speaks https and wss, so a host without a port is reached on 443.
    host_port target = split_host_port(trim(host));
    if (!target.ok || target.host.empty()) {
        return false;
    }
    if (target.port.empty()) {
        target.port = "443";
    }
    const std::string name = lower(target.host);
    const std::optional<ip_address> ip = parse_ip(name);

    // Go never proxies requests to localhost or a loopback address, whatever NO_PROXY says.
    if (name == "localhost" || (ip && ip->is_loopback())) {
        return true;
    }

    std::string_view list = no_proxy;
    while (!list.empty()) {
        const std::size_t comma = list.find(',');
        const std::string entry = lower(trim(list.substr(0, comma)));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        if (entry.empty()) {
            continue;
        }
        if (entry == "*") {
            return true;
        }
        if (entry.find('/') != std::string::npos) {
            const auto block = parse_cidr(entry);
            if (block && ip && block->contains(*ip)) {
                return true;
            }
            continue;  // a CIDR never matches a name, and text with '/' is no host
        }

        host_port pattern = split_host_port(entry);
        if (!pattern.ok) {
            pattern = {entry, {}};
        }
        if (pattern.host.empty()) {
            continue;
        }
        const bool port_matches = pattern.port.empty() || pattern.port == target.port;
        if (const auto entry_ip = parse_ip(pattern.host)) {
            if (ip && *entry_ip == *ip && port_matches) {
                return true;
            }
            continue;
        }

        // "*.example.com" is ".example.com"; a leading dot matches sub-domains only, a plain
        // name matches itself and its sub-domains.
        std::string_view domain = pattern.host;
        if (domain.size() >= 2 && domain.substr(0, 2) == "*.") {
            domain.remove_prefix(1);
        }
        if (domain.empty() || domain == ".") {
            continue;
        }
        const bool matches_itself = domain.front() != '.';
        const std::string dotted = matches_itself ? "." + std::string(domain) : std::string(domain);
        if ((ends_with(name, dotted) || (matches_itself && name == domain)) && port_matches) {
            return true;
        }
    }
    return false;
}

}  // namespace ssm_doctor
