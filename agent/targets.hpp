// SPDX-License-Identifier: Apache-2.0
// The host names the SSM Agent would connect to, built as the agent builds them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/service.hpp"
#include "probes/agent_config.hpp"

namespace ssm_doctor {

// `^[A-Za-z0-9-]+$`, the agent's own rule; anything else is refused before it becomes a host.
bool valid_region(std::string_view region);

// A DNS name (labels of letters, digits, '-' and '_', at most 63 bytes each, 253 in all, an
// optional final dot) or an IPv4 literal. Used for Agent.ServiceDomain and override hosts.
bool valid_host_name(std::string_view name);

// The agent's partition table: cn- amazonaws.com.cn, us-iso- c2s.ic.gov, us-isob- sc2s.sgov.gov,
// us-isof- csp.hci.ic.gov, eu-isoe- cloud.adc-e.uk, eusc-de- amazonaws.eu, else amazonaws.com.
std::string domain_for_region(std::string_view region);

struct endpoint_target {
    service svc = service::ssm;
    std::string host;  // empty when neither an override nor a region gives one
    unsigned short port = 443;
    std::string default_host;  // <service>.<region>.<domain> without overrides ("" w/o region)
    // The host comes from the agent's config: an Endpoint, Mgs.Region, or a ServiceDomain other
    // than the partition's own (setting the partition's own domain changes nothing).
    bool overridden = false;
    std::string override_key;  // "Mgs.Endpoint", "Agent.ServiceDomain", "Mgs.Region", ...
    // The key's value as written in the agent's config, for messages. When `overridden` is true
    // and `host` is empty, that value could not be used (an Endpoint with no host in it, an
    // invalid Mgs.Region or ServiceDomain): the agent would fail there too.
    std::string override_value;
    bool plain_http = false;  // the override said "http://": the agent would not use TLS
};

// Parses an Endpoint override: "https://host[:port][/path]" or a bare "host[:port]". Nullopt
// when no host can be taken from it. The scheme only sets the default port: 443 for https and for
// a bare host (the agent always speaks https then), 80 for http. The host is returned as written
// (an IPv6 literal without its brackets); a URL with user information is refused.
struct host_port {
    std::string host;
    unsigned short port = 443;
    bool plain_http = false;  // "http://" was given
};
std::optional<host_port> parse_endpoint_override(std::string_view value);

// One target per service, in the order given. `region` is the region ssm-doctor settled on.
// Precedence, lowest first: the partition's domain, Agent.ServiceDomain, Mgs.Region (ssmmessages
// only), the service's Endpoint key (Ssm, Mgs, Mds, S3, Kms; logs and monitoring have none).
// Empty strings in the agent's config count as unset.
std::vector<endpoint_target> endpoint_targets(const std::vector<service>& services,
                                              const std::optional<std::string>& region,
                                              const agent_config& config);

}  // namespace ssm_doctor
