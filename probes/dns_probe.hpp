// SPDX-License-Identifier: Apache-2.0
// Resolving an endpoint name to its A and AAAA addresses, with a reason for every failure.
//
// Why not getaddrinfo: glibc reports SERVFAIL and a resolver timeout alike as EAI_AGAIN, and a
// blocking call cannot be abandoned at the deadline. This resolver reads the same files
// (/etc/hosts first, then the name servers of /etc/resolv.conf), asks over UDP with Asio, and
// records each query and answer.
// Limits: no TCP retry of truncated answers (an endpoint name's A/AAAA answer fits in UDP), no
// search domains (endpoint names are fully qualified), no DNSSEC.
#pragma once

#include <utility>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>

#include "probes/address.hpp"
#include "probes/deadline.hpp"
#include "probes/failure.hpp"

namespace ssm_doctor {

struct resolver_config {
    std::vector<boost::asio::ip::udp::endpoint> servers;  // in order, port 53 from resolv.conf
    std::chrono::milliseconds attempt_timeout{5000};      // resolv.conf `options timeout:N`
    int attempts = 2;                                     // resolv.conf `options attempts:N`
};

// Parses resolv.conf text: `nameserver` lines (IPv4 or IPv6, with %scope) and `options
// timeout:N attempts:N`; other lines are ignored. Unparsable nameserver lines go to `notes`.
resolver_config parse_resolv_conf(std::string_view text, std::vector<std::string>* notes);

// Addresses listed for `name` in hosts-file text (case-insensitive, aliases included).
std::vector<ip_address> lookup_hosts_file(std::string_view hosts_text, std::string_view name);

struct dns_query_trace {
    std::string server;   // "10.0.0.2:53"
    std::string type;     // "A" or "AAAA"
    std::string outcome;  // "noerror 2 answers", "nxdomain", "servfail", "timeout", ...
    std::chrono::milliseconds elapsed{0};
};

struct dns_observation {
    std::string host;
    std::string source;                    // "hosts" or "dns"
    std::vector<ip_address> addresses;     // A first, then AAAA, without duplicates
    std::optional<probe_failure> failure;  // phase dns; set only when no address was found
    std::vector<dns_query_trace> trace;
    std::chrono::milliseconds elapsed{0};
    // Facts about how the resolution was done, e.g. that resolv.conf named no server and
    // 127.0.0.1:53 was asked instead, as glibc does.
    std::vector<std::string> notes;
};

// The servers resolve_host asks: config.servers, or 127.0.0.1:53 when there are none (glibc's
// fallback when resolv.conf has no `nameserver` line).
std::vector<boost::asio::ip::udp::endpoint> effective_servers(const resolver_config& config);

// Sends the A and AAAA queries at once to each server in turn until one gives a definite
// answer; NXDOMAIN is definite, SERVFAIL moves on to the next server. Never outlives `deadline`.
boost::asio::awaitable<dns_observation> resolve_host(boost::asio::any_io_executor executor,
                                                     std::string host, resolver_config config,
                                                     std::string hosts_text, steady_time deadline);

}  // namespace ssm_doctor
