// SPDX-License-Identifier: Apache-2.0
// Orchestration of one check: local reads, IMDS, then every endpoint probe in parallel on one
// io_context under one deadline; the observations are assembled once all have ended.
#include "agent/check.hpp"

#include <utility>

#include <exception>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "probes/proxy.hpp"

namespace ssm_doctor {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

milliseconds since(steady::time_point start) {
    return std::chrono::duration_cast<milliseconds>(steady::now() - start);
}

// resolv.conf and hosts are small; anything past 1 MiB is not a configuration we can use.
std::string read_small_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::string text;
    text.resize(1 << 20);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    return text;
}

ip_address unmapped(const ip_address& address) {
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    }
    return address;
}

// What every endpoint probe shares; it outlives io_context::run(), so references are safe.
struct probe_plan {
    resolver_config resolver;
    std::string hosts_text;
    std::shared_ptr<asio::ssl::context> tls_context;
    std::optional<proxy_settings> proxy;
    std::optional<proxy_address> proxy_endpoint;
};

// The agent's HTTP stack sends a request through the proxy unless NO_PROXY excludes the host.
bool uses_proxy(const probe_plan& plan, const std::string& host) {
    return plan.proxy && plan.proxy_endpoint && !proxy_excluded(host, plan.proxy->no_proxy);
}

// A literal address needs no resolver; anything else goes through resolve_host.
asio::awaitable<dns_observation> resolve_name(asio::any_io_executor executor,
                                              const std::string& name, const probe_plan& plan,
                                              steady_time deadline) {
    boost::system::error_code ec;
    const auto literal = asio::ip::make_address(name, ec);
    if (!ec) {
        dns_observation dns;
        dns.host = name;
        dns.source = "literal";
        dns.addresses.push_back(literal);
        co_return dns;
    }
    co_return co_await resolve_host(executor, name, plan.resolver, plan.hosts_text, deadline);
}

// One endpoint: resolve, then connect and handshake with every address at once.
asio::awaitable<void> probe_endpoint(asio::any_io_executor executor, endpoint_observation& ep,
                                     const probe_plan& plan, steady_time deadline) {
    const unsigned short port = ep.via_proxy ? plan.proxy_endpoint->port : ep.target.port;
    const std::string& name = ep.via_proxy ? plan.proxy_endpoint->host : ep.target.host;

    ep.dns = co_await resolve_name(executor, name, plan, deadline);
    ep.dns_ms = ep.dns.elapsed;

    ep.addresses.resize(ep.dns.addresses.size());
    for (std::size_t i = 0; i < ep.dns.addresses.size(); ++i) {
        auto& slot = ep.addresses[i];
        slot.ip = ep.dns.addresses[i];
        tls_target target{ep.target.host, ep.target.port, {slot.ip, port}, ep.via_proxy};
        asio::co_spawn(executor, probe_tls(executor, std::move(target), plan.tls_context, deadline),
                       [&slot](std::exception_ptr error, tls_probe_result result) {
                           if (error) {
                               slot.probe.failure =
                                   probe_failure{probe_phase::connect, failure_reason::other,
                                                 "internal error in the TLS probe"};
                               return;
                           }
                           slot.probe = std::move(result);
                       });
    }
}

std::vector<endpoint_observation> plan_endpoints(const check_options& options,
                                                 const std::optional<std::string>& region,
                                                 const agent_config& agent_values,
                                                 const probe_plan& plan) {
    std::vector<endpoint_observation> endpoints;
    for (auto& target : endpoint_targets(options.config.probe_endpoints, region, agent_values)) {
        endpoint_observation ep;
        ep.target = std::move(target);
        ep.probed = !ep.target.host.empty();
        ep.via_proxy = ep.probed && uses_proxy(plan, ep.target.host);
        ep.dns.host = ep.target.host;
        endpoints.push_back(std::move(ep));
    }
    return endpoints;
}

void start_endpoint_probes(asio::io_context& io, std::vector<endpoint_observation>& endpoints,
                           const probe_plan& plan, steady_time deadline) {
    for (auto& ep : endpoints) {
        if (!ep.probed) {
            continue;
        }
        asio::co_spawn(io, probe_endpoint(io.get_executor(), ep, plan, deadline),
                       [&ep](std::exception_ptr error) {
                           if (error && !ep.dns.failure && ep.dns.addresses.empty()) {
                               ep.dns.failure =
                                   probe_failure{probe_phase::dns, failure_reason::other,
                                                 "internal error in the DNS probe"};
                           }
                       });
    }
}

// Sessions belong to the agent when their pid is one of its processes, or when the socket
// reader named the owner by an agent executable (it may have seen a process started since).
void attribute_sessions(observations& seen, const probe_plan& plan) {
    std::set<int> agent_pids;
    for (const auto& process : seen.agent.processes) {
        agent_pids.insert(process.pid);
    }
    const auto is_agent = [&](const tcp_session& s) {
        return s.pid != 0 && (agent_pids.count(s.pid) > 0 || is_agent_executable(s.process));
    };

    std::set<ip_address> proxy_ips;
    for (const auto& ep : seen.endpoints) {
        if (ep.via_proxy) {
            proxy_ips.insert(ep.dns.addresses.begin(), ep.dns.addresses.end());
        }
    }

    for (const auto& session : seen.sockets.sessions) {
        if (!is_agent(session)) {
            continue;
        }
        const auto remote_ip = unmapped(session.remote.address());
        const auto remote_port = session.remote.port();
        if (plan.proxy_endpoint && remote_port == plan.proxy_endpoint->port &&
            proxy_ips.count(remote_ip) > 0) {
            seen.proxy_sessions.push_back(session);
            continue;
        }
        for (auto& ep : seen.endpoints) {
            if (ep.via_proxy || remote_port != ep.target.port) {
                continue;
            }
            const bool ours = std::any_of(ep.dns.addresses.begin(), ep.dns.addresses.end(),
                                          [&](const ip_address& a) { return a == remote_ip; });
            if (ours) {
                ep.sessions.push_back(session);
            }
        }
    }
}

std::vector<unsigned short> ports_of_interest(const check_options& options,
                                              const std::optional<proxy_address>& proxy,
                                              const agent_config& agent_values) {
    std::set<unsigned short> ports{443};
    for (const auto& target :
         endpoint_targets(options.config.probe_endpoints, std::nullopt, agent_values)) {
        ports.insert(target.port);
    }
    if (proxy) {
        ports.insert(proxy->port);
    }
    return {ports.begin(), ports.end()};
}

}  // namespace

void classify_addresses(observations& seen) {
    for (auto& ep : seen.endpoints) {
        for (auto& a : ep.addresses) {
            a.kind = classify(a.ip);
            if (a.ip.is_v4() ? seen.imds.vpc_ipv4_known : seen.imds.vpc_ipv6_known) {
                a.in_vpc = in_any(seen.imds.vpc_cidrs, a.ip);
            }
        }
    }
}

observations run_check(const check_options& options) {
    const auto start = steady::now();
    const auto& config = options.config;
    observations seen;

    // Local reads that decide how the network is probed come first; they take milliseconds.
    probe_plan plan;
    plan.tls_context = make_tls_client_context(config.tls_ca_file);
    std::vector<std::string> resolver_notes;
    plan.resolver = parse_resolv_conf(read_small_file(options.host.resolv_conf), &resolver_notes);
    plan.hosts_text = read_small_file(options.host.hosts_file);
    seen.agent_config = read_agent_config(config.agent_config);
    auto scan = scan_agent_processes(options.host.proc_root);
    plan.proxy = scan.proxy;
    if (plan.proxy) {
        plan.proxy_endpoint = parse_proxy_url(plan.proxy->https_proxy);
    }

    // The agent's version may take a command of up to 2 s: it runs beside the network probes.
    agent_probe_options agent_options;
    agent_options.binary = config.agent_binary;
    agent_options.log_dir = config.agent_log_dir;
    agent_options.proc_root = options.host.proc_root;
    agent_options.ask_package_managers = options.ask_package_managers;
    const auto ports = ports_of_interest(options, plan.proxy_endpoint, seen.agent_config.values);
    // The version command and the package tools take tens of milliseconds, and so does the
    // socket table on a host with a large TCP hash: both run beside the network probes.
    std::thread agent_work([&] {
        seen.agent = probe_agent(agent_options, start + config.probe_timeout, std::move(scan));
    });
    std::thread socket_work(
        [&] { seen.sockets = read_socket_table(options.host.proc_root, ports); });

    asio::io_context io;
    const auto start_endpoints = [&](const std::optional<std::string>& region) {
        seen.endpoints = plan_endpoints(options, region, seen.agent_config.values, plan);
        start_endpoint_probes(io, seen.endpoints, plan, steady::now() + config.probe_timeout);
    };

    // The region, in order: --region, the config's `region`, IMDS, the agent's Agent.Region.
    if (options.region) {
        seen.region = options.region;
        seen.region_source = "option";
    } else if (config.region) {
        seen.region = config.region;
        seen.region_source = "config";
    }
    if (seen.region) {
        start_endpoints(seen.region);
    }
    asio::co_spawn(io,
                   probe_imds(io.get_executor(), {config.imds_endpoint, config.imds_timeout},
                              start + config.imds_timeout),
                   [&](std::exception_ptr error, imds_observation imds) {
                       if (error) {
                           imds.failure = probe_failure{probe_phase::http, failure_reason::other,
                                                        "internal error in the IMDS probe"};
                       }
                       seen.imds = std::move(imds);
                       if (seen.region) {
                           return;
                       }
                       if (seen.imds.region && valid_region(*seen.imds.region)) {
                           seen.region = seen.imds.region;
                           seen.region_source = "imds";
                       } else if (seen.agent_config.values.region &&
                                  valid_region(*seen.agent_config.values.region)) {
                           seen.region = seen.agent_config.values.region;
                           seen.region_source = "agent_config";
                       }
                       start_endpoints(seen.region);
                   });
    io.run();
    agent_work.join();
    socket_work.join();

    classify_addresses(seen);
    attribute_sessions(seen, plan);
    seen.notes = std::move(resolver_notes);
    seen.elapsed = since(start);
    return seen;
}

}  // namespace ssm_doctor
