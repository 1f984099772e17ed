// SPDX-License-Identifier: Apache-2.0
// Builds the host names the SSM Agent would connect to from the region and the agent's config.
#include "agent/targets.hpp"

#include <utility>

#include <algorithm>
#include <array>
#include <charconv>

#include <arpa/inet.h>

namespace ssm_doctor {

namespace {

bool is_ascii_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

// "1".."65535" and nothing else: no sign, no spaces, no empty port.
std::optional<unsigned short> parse_port(std::string_view text) {
    if (text.empty() || text.size() > 5) {
        return std::nullopt;
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535) {
        return std::nullopt;
    }
    return static_cast<unsigned short>(value);
}

bool valid_ipv6_literal(std::string_view text) {
    // inet_pton wants a terminated string; an IPv6 literal fits in INET6_ADDRSTRLEN.
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
        return false;
    }
    std::string copy(text);
    in6_addr addr{};
    return inet_pton(AF_INET6, copy.c_str(), &addr) == 1;
}

std::optional<std::string_view> non_empty(const std::optional<std::string>& value) {
    if (!value || value->empty()) {
        return std::nullopt;
    }
    return std::string_view(*value);
}

// The agent's config key that replaces a service's whole endpoint, if it has one.
std::string_view endpoint_key(service s) {
    switch (s) {
        case service::ssm:
            return "Ssm.Endpoint";
        case service::ssmmessages:
            return "Mgs.Endpoint";
        case service::ec2messages:
            return "Mds.Endpoint";
        case service::s3:
            return "S3.Endpoint";
        case service::kms:
            return "Kms.Endpoint";
        case service::logs:
        case service::monitoring:
            break;
    }
    return {};
}

std::optional<std::string_view> endpoint_value(service s, const agent_config& config) {
    switch (s) {
        case service::ssm:
            return non_empty(config.ssm_endpoint);
        case service::ssmmessages:
            return non_empty(config.mgs_endpoint);
        case service::ec2messages:
            return non_empty(config.mds_endpoint);
        case service::s3:
            return non_empty(config.s3_endpoint);
        case service::kms:
            return non_empty(config.kms_endpoint);
        case service::logs:
        case service::monitoring:
            break;
    }
    return std::nullopt;
}

// Every service, s3 included, is named "<service>.<region>.<domain>". For s3 that is a choice:
// the SDK also knows the legacy global "s3.amazonaws.com" for us-east-1 and puts bucket names in
// front of the host, but the regional name is the one an interface endpoint answers for and the
// one the agent's own diagnostics test, and it exists in every region.
std::string service_host(service s, std::string_view region, std::string_view domain) {
    std::string host(to_string(s));
    host += '.';
    host += region;
    host += '.';
    host += domain;
    return host;
}

}  // namespace

bool valid_region(std::string_view region) {
    return !region.empty() && std::all_of(region.begin(), region.end(),
                                          [](char c) { return is_ascii_alnum(c) || c == '-'; });
}

bool valid_host_name(std::string_view name) {
    if (!name.empty() && name.back() == '.') {
        name.remove_suffix(1);
    }
    if (name.empty() || name.size() > 253) {
        return false;
    }
    std::size_t start = 0;
    while (start <= name.size()) {
        std::size_t dot = name.find('.', start);
        if (dot == std::string_view::npos) {
            dot = name.size();
        }
        std::string_view label = name.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        for (char c : label) {
            if (!is_ascii_alnum(c) && c != '-' && c != '_') {
                return false;
            }
        }
        start = dot + 1;
    }
    return true;
}

std::string domain_for_region(std::string_view region) {
    // Longest prefixes first is not needed ("us-isob-" does not start with "us-iso-"), but the
    // order follows the agent's table so the two can be compared line by line.
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> partitions{{
        {"cn-", "amazonaws.com.cn"},
        {"us-iso-", "c2s.ic.gov"},
        {"us-isob-", "sc2s.sgov.gov"},
        {"us-isof-", "csp.hci.ic.gov"},
        {"eu-isoe-", "cloud.adc-e.uk"},
        {"eusc-de-", "amazonaws.eu"},
    }};
    for (const auto& [prefix, domain] : partitions) {
        if (region.starts_with(prefix)) {
            return std::string(domain);
        }
    }
    return "amazonaws.com";
}

std::optional<host_port> parse_endpoint_override(std::string_view value) {
    host_port out;
    std::string_view rest = value;
    if (const auto scheme_end = rest.find("://"); scheme_end != std::string_view::npos) {
        const std::string_view scheme = rest.substr(0, scheme_end);
        if (iequals(scheme, "https")) {
            out.port = 443;
        } else if (iequals(scheme, "http")) {
            out.port = 80;
            out.plain_http = true;
        } else {
            return std::nullopt;
        }
        rest.remove_prefix(scheme_end + 3);
    }

    // The authority ends where a path, query or fragment begins; those are of no interest here.
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    if (authority.empty() || authority.find('@') != std::string_view::npos) {
        return std::nullopt;
    }

    std::string_view host;
    std::string_view port_text;
    bool has_port = false;
    if (authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            return std::nullopt;
        }
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return std::nullopt;
            }
            has_port = true;
            port_text = after.substr(1);
        }
        if (!valid_ipv6_literal(host)) {
            return std::nullopt;
        }
    } else {
        const auto colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            has_port = true;
            port_text = authority.substr(colon + 1);
        }
        // A second colon means an IPv6 literal without brackets, or worse.
        if (!valid_host_name(host)) {
            return std::nullopt;
        }
    }

    if (has_port) {
        const auto port = parse_port(port_text);
        if (!port) {
            return std::nullopt;
        }
        out.port = *port;
    }
    out.host = std::string(host);
    return out;
}

std::vector<endpoint_target> endpoint_targets(const std::vector<service>& services,
                                              const std::optional<std::string>& region,
                                              const agent_config& config) {
    const bool region_ok = region && valid_region(*region);
    const auto service_domain = non_empty(config.service_domain);
    const auto mgs_region = non_empty(config.mgs_region);

    std::vector<endpoint_target> targets;
    targets.reserve(services.size());
    for (service svc : services) {
        endpoint_target t;
        t.svc = svc;

        // 1. What the host would be with an untouched agent config.
        if (region_ok) {
            t.default_host = service_host(svc, *region, domain_for_region(*region));
        }

        // 2. Agent.ServiceDomain replaces the domain of every service. It counts as an override
        //    only when it differs from the partition's own domain; an unusable value leaves no
        //    host, as the agent would build a name that cannot resolve.
        t.host = t.default_host;
        if (service_domain && region_ok && !iequals(*service_domain, domain_for_region(*region))) {
            t.overridden = true;
            t.override_key = "Agent.ServiceDomain";
            t.override_value = std::string(*service_domain);
            t.host = valid_host_name(*service_domain) ? service_host(svc, *region, *service_domain)
                                                      : std::string();
        }

        // 3. Mgs.Region moves ssmmessages to another region; the domain follows that region
        //    unless the ServiceDomain is set.
        if (svc == service::ssmmessages && mgs_region && !(region && *region == *mgs_region)) {
            t.overridden = true;
            t.override_key = "Mgs.Region";
            t.override_value = std::string(*mgs_region);
            t.host.clear();
            if (valid_region(*mgs_region)) {
                const std::string domain =
                    service_domain ? std::string(*service_domain) : domain_for_region(*mgs_region);
                if (valid_host_name(domain)) {
                    t.host = service_host(svc, *mgs_region, domain);
                }
            }
        }

        // 4. A whole Endpoint wins over everything else.
        if (const auto value = endpoint_value(svc, config)) {
            t.overridden = true;
            t.override_key = std::string(endpoint_key(svc));
            t.override_value = std::string(*value);
            t.host.clear();
            if (const auto parsed = parse_endpoint_override(*value)) {
                t.host = parsed->host;
                t.port = parsed->port;
                t.plain_http = parsed->plain_http;
            }
        }
        targets.push_back(std::move(t));
    }
    return targets;
}

}  // namespace ssm_doctor
