// SPDX-License-Identifier: Apache-2.0
// The agent's sessions between two socket-table samples: which appeared and which ended. Pure:
// samples and the last check's endpoint addresses in, session_change records out.
//
// Limits: a sample is a snapshot, so a session that opens and closes between two samples is
// never seen; a session is identified by (pid, local, remote), so a socket handed to another
// process reads as one session closed and another opened. Sessions through the agent's proxy
// are attributed to no endpoint (service ""): their remote is the proxy, shared by all.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "agent/events.hpp"
#include "agent/observations.hpp"
#include "probes/address.hpp"
#include "probes/socket_table.hpp"

namespace ssm_doctor {

// One address of an endpoint as the last full check resolved it.
struct endpoint_address {
    std::string service;  // "ssmmessages"
    std::string host;     // "ssmmessages.us-east-1.amazonaws.com"
    ip_address address;
    unsigned short port = 443;
};

// What a sample needs from the last full check: where each endpoint is, and who the agent is.
struct session_context {
    std::vector<endpoint_address> endpoints;
    std::vector<int> agent_pids;        // sorted
    std::vector<unsigned short> ports;  // remote ports worth reading: 443, overrides', proxy's
};

// The endpoints' resolved addresses (not those reached through a proxy), the agent's process
// ids, and the remote ports of the endpoints and of the agent's proxy.
session_context session_context_of(const observations& seen);

// The sessions of `sample` that belong to the agent: the owner is one of `context.agent_pids`
// or its executable is an agent's (a process started since the check). Unattributed sessions
// (pid 0) are left out: whose they are is unknown.
std::vector<tcp_session> agent_sessions(const socket_observation& sample,
                                        const session_context& context);

// "10.0.0.5:40000", "[fd00::5]:443"; IPv4-mapped IPv6 addresses are shown as IPv4.
std::string endpoint_text(const tcp_endpoint& endpoint);

// The endpoint `remote` goes to, by address and port; nullptr when it matches none.
const endpoint_address* endpoint_for(const tcp_endpoint& remote,
                                     const std::vector<endpoint_address>& endpoints);

// A session as the tracker keeps it: the socket and the endpoint it was attributed to when it
// was first seen, so that its end is reported under the same name even if DNS moved since.
struct tracked_session {
    tcp_session session;
    std::string service;
    std::string host;
};

// Keeps the last sample only; each update returns what changed since, closed sessions first,
// then opened ones, each group ordered by (pid, local, remote). A session listed twice in one
// sample (the table is read in chunks) counts once.
class session_tracker {
public:
    std::vector<session_change> update(const std::vector<tcp_session>& sample,
                                       const std::vector<endpoint_address>& endpoints,
                                       std::chrono::system_clock::time_point at);

    const std::vector<tracked_session>& sessions() const { return sessions_; }

private:
    std::vector<tracked_session> sessions_;  // sorted by (pid, local, remote), no duplicates
};

}  // namespace ssm_doctor
