// SPDX-License-Identifier: Apache-2.0
// Everything one check saw, assembled from the probes: the input of the verdict.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "agent/targets.hpp"
#include "probes/address.hpp"
#include "probes/agent_config.hpp"
#include "probes/agent_probe.hpp"
#include "probes/dns_probe.hpp"
#include "probes/imds_probe.hpp"
#include "probes/socket_table.hpp"
#include "probes/tls_probe.hpp"

namespace ssm_doctor {

struct address_observation {
    ip_address ip;
    address_kind kind = address_kind::public_address;
    std::optional<bool> in_vpc;  // nullopt when the VPC CIDR blocks are unknown
    tls_probe_result probe;
};

struct endpoint_observation {
    endpoint_target target;
    bool probed = false;  // false when there was no host to probe (no region, no override)
    // When the agent's proxy applies to this host, the probe went through it (CONNECT) and
    // `dns` is the resolution of the proxy's name.
    bool via_proxy = false;
    dns_observation dns;
    std::vector<address_observation> addresses;
    // Established connections of agent processes to one of this endpoint's addresses.
    std::vector<tcp_session> sessions;
    std::optional<std::chrono::milliseconds> dns_ms;

    bool reachable() const {
        for (const auto& a : addresses) {
            if (a.probe.ok) {
                return true;
            }
        }
        return false;
    }
};

struct observations {
    std::optional<std::string> region;
    std::string region_source;  // "option", "config", "imds", "agent_config", "" when unknown
    agent_observation agent;
    agent_config_observation agent_config;
    imds_observation imds;
    socket_observation sockets;
    std::vector<endpoint_observation> endpoints;
    // Agent sessions to the proxy, when the agent uses one (their remote is the proxy).
    std::vector<tcp_session> proxy_sessions;
    // Problems of the check itself that limit what it saw (an unusable resolv.conf line).
    std::vector<std::string> notes;
    std::chrono::milliseconds elapsed{0};
};

}  // namespace ssm_doctor
