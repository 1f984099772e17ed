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

// The agent's partition table: cn- amazonaws.com.cn, us-iso- c2s.ic.gov, us-isob- sc2s.sgov.gov,
// us-isof- csp.hci.ic.gov, eu-isoe- cloud.adc-e.uk, eusc-de- amazonaws.eu, else amazonaws.com.
std::string domain_for_region(std::string_view region);

struct endpoint_target {
    service svc = service::ssm;
    std::string host;          // empty when neither an override nor a region gives one
    unsigned short port = 443;
    std::string default_host;  // <service>.<region>.<domain> without overrides ("" w/o region)
    bool overridden = false;   // host comes from the agent's config (an Endpoint or ServiceDomain)
    std::string override_key;  // "Mgs.Endpoint", "Agent.ServiceDomain", "Mgs.Region", ...
};

// Parses an Endpoint override: "https://host[:port][/path]" or a bare "host[:port]". Nullopt
// when no host can be taken from it.
struct host_port {
    std::string host;
    unsigned short port = 443;
};
std::optional<host_port> parse_endpoint_override(std::string_view value);

// One target per service, in the order given. `region` is the region ssm-doctor settled on.
std::vector<endpoint_target> endpoint_targets(const std::vector<service>& services,
                                              const std::optional<std::string>& region,
                                              const agent_config& config);

}  // namespace ssm_doctor
