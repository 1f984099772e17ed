// SPDX-License-Identifier: Apache-2.0
// Reading proxy settings the way the agent's Go HTTP stack does: the proxy URL and NO_PROXY.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ssm_doctor {

struct proxy_address {
    std::string host;
    unsigned short port = 0;
};

// Splits a proxy URL ("http://user:pw@host:3128", "host:3128", "http://[fd00::1]:3128") into
// host and port (default 80 for http and a bare host, 443 for https). Credentials are dropped
// and kept nowhere. Nullopt for text that names no host or a bad port.
std::optional<proxy_address> parse_proxy_url(std::string_view url);

// The URL with any user:password removed, safe to log and print.
std::string redact_proxy_url(std::string_view url);

// True when `host` bypasses the proxy under `no_proxy`: a comma list of domain suffixes
// ("amazonaws.com" and "*.amazonaws.com" match sub-domains and the name itself), exact
// hosts, IP addresses, CIDR blocks (matched when `host` is an address inside), or "*".
// The rules are Go's (golang.org/x/net/http/httpproxy), which the agent uses:
// - ".amazonaws.com" with a leading dot matches sub-domains only, not "amazonaws.com";
// - "host:port" and "[v6]:port" entries match that port only; `host` may carry a port
//   ("ssm.eu-west-1.amazonaws.com:443", "[fd00::1]:443") and is taken as port 443 without one,
//   because the agent speaks only https and wss;
// - "localhost" and loopback addresses always bypass the proxy, whatever `no_proxy` says;
// - matching ignores case; empty entries are skipped.
bool proxy_excluded(std::string_view host, std::string_view no_proxy);

}  // namespace ssm_doctor
