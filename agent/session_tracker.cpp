// SPDX-License-Identifier: Apache-2.0
// Diffing two socket-table samples into the agent's sessions opened and closed.
#include "agent/session_tracker.hpp"

#include <algorithm>
#include <set>
#include <tuple>

#include "agent/service.hpp"
#include "probes/agent_probe.hpp"
#include "probes/proxy.hpp"

namespace ssm_doctor {
namespace {

ip_address unmapped(const ip_address& address) {
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
    }
    return address;
}

// The identity of a session; asio endpoints order by address, then port.
bool key_less(const tcp_session& a, const tcp_session& b) {
    return std::tie(a.pid, a.local, a.remote) < std::tie(b.pid, b.local, b.remote);
}

bool key_equal(const tcp_session& a, const tcp_session& b) {
    return a.pid == b.pid && a.local == b.local && a.remote == b.remote;
}

session_change change_of(const tracked_session& tracked, bool opened,
                         std::chrono::system_clock::time_point at) {
    session_change change;
    change.opened = opened;
    change.service = tracked.service;
    change.host = tracked.host;
    change.pid = tracked.session.pid;
    change.process = tracked.session.process;
    change.local = endpoint_text(tracked.session.local);
    change.remote = endpoint_text(tracked.session.remote);
    change.at = at;
    return change;
}

}  // namespace

session_context session_context_of(const observations& seen) {
    session_context context;
    std::set<unsigned short> ports{443};
    for (const auto& ep : seen.endpoints) {
        if (!ep.probed) {
            continue;
        }
        ports.insert(ep.target.port);
        if (ep.via_proxy) {
            continue;  // its addresses are the proxy's, shared by every proxied endpoint
        }
        for (const auto& address : ep.dns.addresses) {
            context.endpoints.push_back({std::string(to_string(ep.target.svc)), ep.target.host,
                                         unmapped(address), ep.target.port});
        }
    }
    if (seen.agent.proxy) {
        if (const auto proxy = parse_proxy_url(seen.agent.proxy->https_proxy)) {
            ports.insert(proxy->port);
        }
    }
    context.ports.assign(ports.begin(), ports.end());
    for (const auto& process : seen.agent.processes) {
        context.agent_pids.push_back(process.pid);
    }
    std::sort(context.agent_pids.begin(), context.agent_pids.end());
    return context;
}

std::vector<tcp_session> agent_sessions(const socket_observation& sample,
                                        const session_context& context) {
    std::vector<tcp_session> sessions;
    for (const auto& s : sample.sessions) {
        const bool known_pid =
            std::binary_search(context.agent_pids.begin(), context.agent_pids.end(), s.pid);
        if (s.pid != 0 && (known_pid || is_agent_executable(s.process))) {
            sessions.push_back(s);
        }
    }
    return sessions;
}

std::string endpoint_text(const tcp_endpoint& endpoint) {
    const auto address = unmapped(endpoint.address());
    const auto port = std::to_string(endpoint.port());
    if (address.is_v6()) {
        return "[" + address.to_string() + "]:" + port;
    }
    return address.to_string() + ":" + port;
}

const endpoint_address* endpoint_for(const tcp_endpoint& remote,
                                     const std::vector<endpoint_address>& endpoints) {
    const auto address = unmapped(remote.address());
    for (const auto& ep : endpoints) {
        if (ep.port == remote.port() && ep.address == address) {
            return &ep;
        }
    }
    return nullptr;
}

std::vector<session_change> session_tracker::update(const std::vector<tcp_session>& sample,
                                                    const std::vector<endpoint_address>& endpoints,
                                                    std::chrono::system_clock::time_point at) {
    std::vector<tcp_session> now(sample);
    std::sort(now.begin(), now.end(), key_less);
    now.erase(std::unique(now.begin(), now.end(), key_equal), now.end());

    std::vector<tracked_session> next;
    next.reserve(now.size());
    std::vector<session_change> closed;
    std::vector<session_change> opened;

    // Both lists are sorted by key: one merge pass finds what ended, what stayed, what is new.
    auto old_it = sessions_.begin();
    auto new_it = now.begin();
    while (old_it != sessions_.end() || new_it != now.end()) {
        if (new_it == now.end() ||
            (old_it != sessions_.end() && key_less(old_it->session, *new_it))) {
            closed.push_back(change_of(*old_it, false, at));
            ++old_it;
        } else if (old_it == sessions_.end() || key_less(*new_it, old_it->session)) {
            tracked_session tracked{*new_it, "", ""};
            if (const auto* ep = endpoint_for(new_it->remote, endpoints)) {
                tracked.service = ep->service;
                tracked.host = ep->host;
            }
            opened.push_back(change_of(tracked, true, at));
            next.push_back(std::move(tracked));
            ++new_it;
        } else {
            // The same session; keep its first attribution, take the fresher process name.
            tracked_session kept = std::move(*old_it);
            kept.session = *new_it;
            next.push_back(std::move(kept));
            ++old_it;
            ++new_it;
        }
    }
    sessions_ = std::move(next);

    closed.insert(closed.end(), std::make_move_iterator(opened.begin()),
                  std::make_move_iterator(opened.end()));
    return closed;
}

}  // namespace ssm_doctor
