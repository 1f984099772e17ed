// SPDX-License-Identifier: Apache-2.0
// The resolver probe: hosts file first, then A and AAAA over UDP to each name server in turn.
#include "probes/dns_probe.hpp"

#include <algorithm>
#include <charconv>
#include <span>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "probes/dns_message.hpp"

namespace ssm_doctor {
namespace {

using boost::asio::ip::udp;
using steady_clock = std::chrono::steady_clock;

// glibc's limits (resolv.h): MAXNS servers, RES_MAXRETRANS seconds, RES_MAXRETRY attempts.
constexpr std::size_t max_servers = 3;
constexpr int max_timeout_seconds = 30;
constexpr int max_attempts = 5;
constexpr unsigned short dns_port = 53;

std::vector<std::string_view> split_words(std::string_view line) {
    std::vector<std::string_view> words;
    std::size_t position = 0;
    while (position < line.size()) {
        const auto start = line.find_first_not_of(" \t\r\f\v", position);
        if (start == std::string_view::npos) {
            break;
        }
        const auto end = std::min(line.find_first_of(" \t\r\f\v", start), line.size());
        words.push_back(line.substr(start, end - start));
        position = end;
    }
    return words;
}

// Calls `visit(line_number, line)` for each line of `text`.
template <typename Visit>
void for_each_line(std::string_view text, Visit visit) {
    int number = 0;
    while (!text.empty()) {
        const auto end = text.find('\n');
        visit(++number, text.substr(0, end));
        if (end == std::string_view::npos) {
            break;
        }
        text.remove_prefix(end + 1);
    }
}

std::optional<int> parse_count(std::string_view digits) {
    int value = 0;
    const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (err != std::errc{} || end != digits.data() + digits.size() || digits.empty()) {
        return std::nullopt;
    }
    return value;
}

void note(std::vector<std::string>* notes, std::string text) {
    if (notes) {
        notes->push_back(std::move(text));
    }
}

std::string endpoint_text(const udp::endpoint& endpoint) {
    const auto address = endpoint.address().to_string();
    const auto port = std::to_string(endpoint.port());
    return endpoint.address().is_v6() ? "[" + address + "]:" + port : address + ":" + port;
}

void add_unique(std::vector<ip_address>& to, const ip_address& address) {
    if (std::find(to.begin(), to.end(), address) == to.end()) {
        to.push_back(address);
    }
}

// IPv4 first, then IPv6, each in the order given, without duplicates.
std::vector<ip_address> v4_then_v6(const std::vector<ip_address>& addresses) {
    std::vector<ip_address> ordered;
    for (const bool want_v4 : {true, false}) {
        for (const auto& address : addresses) {
            if (address.is_v4() == want_v4) {
                add_unique(ordered, address);
            }
        }
    }
    return ordered;
}

std::chrono::milliseconds since(steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - start);
}

// How one query's answer bears on the name, and what failed when it did not settle anything.
enum class query_failure { none, rcode, error, timeout };

// What is known about one record type across all the servers and attempts.
struct type_state {
    explicit type_state(dns_record_type asked) : type(asked) {}

    dns_record_type type;
    bool settled = false;  // NOERROR (with or without records) or NXDOMAIN: no need to ask again
    bool nxdomain = false;
    std::vector<ip_address> addresses;
    bool saw_servfail = false;          // SERVFAIL or REFUSED
    bool saw_error = false;             // malformed answers, other rcodes, ICMP, socket errors
    std::vector<std::string> failures;  // "10.0.0.2:53 servfail", one per unsettled query
};

struct in_flight {
    type_state* state;
    std::uint16_t id;
    std::size_t trace_index;
    steady_clock::time_point sent;
    bool awaiting = true;
};

// Ends one query: its trace line, and what it taught about its type.
void conclude(in_flight& query, dns_observation& observation, const std::string& server,
              std::string outcome, query_failure failure) {
    query.awaiting = false;
    auto& trace = observation.trace[query.trace_index];
    trace.elapsed = since(query.sent);
    switch (failure) {
        case query_failure::none:
            break;
        case query_failure::rcode:
            query.state->saw_servfail = true;
            break;
        case query_failure::error:
            query.state->saw_error = true;
            break;
        case query_failure::timeout:
            break;
    }
    if (failure != query_failure::none) {
        query.state->failures.push_back(server + " " + outcome);
    }
    trace.outcome = std::move(outcome);
}

std::string via_chain(const dns_response& response) {
    std::string text;
    for (const auto& target : response.cname_chain) {
        text += (text.empty() ? " via CNAME " : " -> ") + target;
    }
    return text;
}

// Reads a parsed answer into its type's state.
void take_answer(in_flight& query, const dns_response& response, dns_observation& observation,
                 const std::string& server) {
    type_state& state = *query.state;
    if (response.rcode == dns_rcode_noerror) {
        if (!response.addresses.empty()) {
            state.settled = true;
            for (const auto& address : response.addresses) {
                add_unique(state.addresses, address);
            }
            conclude(query, observation, server,
                     "noerror " + std::to_string(response.addresses.size()) +
                         (response.addresses.size() == 1 ? " address" : " addresses") +
                         via_chain(response) + (response.truncated ? " (truncated)" : ""),
                     query_failure::none);
        } else if (response.truncated) {
            // The records did not fit and TCP is not tried: this says nothing about the name.
            conclude(query, observation, server, "truncated without addresses (no TCP retry)",
                     query_failure::error);
        } else {
            state.settled = true;
            conclude(query, observation, server,
                     "noerror no data (" + std::to_string(response.answer_count) + " answers" +
                         via_chain(response) + ")",
                     query_failure::none);
        }
        return;
    }
    if (response.rcode == dns_rcode_nxdomain) {
        state.settled = true;
        state.nxdomain = true;
        conclude(query, observation, server, "nxdomain" + via_chain(response), query_failure::none);
        return;
    }
    const bool servfail =
        response.rcode == dns_rcode_servfail || response.rcode == dns_rcode_refused;
    conclude(query, observation, server, dns_rcode_name(response.rcode),
             servfail ? query_failure::rcode : query_failure::error);
}

// One attempt at one server: sends the queries of the unsettled types from one connected UDP
// socket and reads answers until each is answered or `until` passes. Connecting the socket makes
// the kernel drop datagrams from other sources and report ICMP port unreachable as
// ECONNREFUSED; the source is still compared, so a stray packet can never pass for the answer.
boost::asio::awaitable<void> ask_server(boost::asio::any_io_executor executor,
                                        const udp::endpoint& server, const std::string& host,
                                        std::vector<type_state*> types, steady_time until,
                                        steady_time deadline, dns_observation& observation) {
    const std::string server_name = endpoint_text(server);
    std::vector<in_flight> queries;
    for (type_state* state : types) {
        observation.trace.push_back({server_name, std::string(to_string(state->type)), "", {}});
        queries.push_back(
            {state, random_query_id(), observation.trace.size() - 1, steady_clock::now()});
    }
    const auto conclude_all = [&](const std::string& outcome, query_failure failure) {
        for (auto& query : queries) {
            if (query.awaiting) {
                conclude(query, observation, server_name, outcome, failure);
            }
        }
    };

    udp::socket socket(executor);
    boost::system::error_code ec;
    socket.open(server.protocol(), ec);
    if (!ec) {
        socket.connect(server, ec);
    }
    if (ec) {
        conclude_all("not sent: " + ec.message(), query_failure::error);
        co_return;
    }
    // Closing the socket at `until` ends the pending receive; declared after the socket so
    // that it is disarmed before the socket goes away.
    deadline_guard guard(executor, std::min(until, deadline), [&socket] {
        boost::system::error_code ignored;
        socket.close(ignored);
    });
    auto use = boost::asio::redirect_error(boost::asio::use_awaitable, ec);

    for (auto& query : queries) {
        std::string error;
        const auto bytes = build_dns_query(host, query.state->type, query.id, &error);
        if (!bytes) {
            conclude(query, observation, server_name, error, query_failure::error);
            continue;
        }
        query.sent = steady_clock::now();
        co_await socket.async_send(boost::asio::buffer(*bytes), use);
        if (ec == boost::asio::error::connection_refused) {
            // The ICMP error of the first query's datagram surfaces on the next send; the port
            // is closed for every query, so the attempt at this server is over.
            conclude_all("port unreachable (ICMP)", query_failure::error);
            break;
        }
        if (ec) {
            conclude(query, observation, server_name, "send failed: " + ec.message(),
                     query_failure::error);
        }
    }

    std::vector<std::uint8_t> buffer(65536);  // the largest UDP payload
    int strays = 0;
    const auto any_awaiting = [&] {
        return std::any_of(queries.begin(), queries.end(), [](auto& q) { return q.awaiting; });
    };
    while (any_awaiting()) {
        udp::endpoint sender;
        const std::size_t size =
            co_await socket.async_receive_from(boost::asio::buffer(buffer), sender, use);
        if (ec) {
            if (guard.expired()) {
                conclude_all(
                    steady_clock::now() >= deadline ? "timeout (overall deadline)" : "timeout",
                    query_failure::timeout);
            } else if (ec == boost::asio::error::connection_refused) {
                conclude_all("port unreachable (ICMP)", query_failure::error);
            } else {
                conclude_all("receive failed: " + ec.message(), query_failure::error);
            }
            break;
        }
        const std::span<const std::uint8_t> message(buffer.data(), size);
        const auto id = dns_message_id(message);
        const auto query = std::find_if(queries.begin(), queries.end(), [&](const auto& q) {
            return q.awaiting && id && q.id == *id;
        });
        if (sender != server || query == queries.end()) {
            ++strays;
            continue;
        }
        const auto parsed = parse_dns_response(message, query->id, host, query->state->type);
        if (parsed.status == dns_parse_status::not_ours) {
            ++strays;
            continue;
        }
        if (parsed.status == dns_parse_status::malformed) {
            conclude(*query, observation, server_name, "malformed answer: " + parsed.error,
                     query_failure::error);
            continue;
        }
        take_answer(*query, parsed.response, observation, server_name);
        if (query->state->nxdomain) {
            // The name does not exist; the other type's answer cannot change that.
            conclude_all("not awaited: the name does not exist", query_failure::none);
        }
    }
    if (strays > 0) {
        for (const auto& query : queries) {
            observation.trace[query.trace_index].outcome +=
                " (" + std::to_string(strays) + (strays == 1 ? " stray packet" : " stray packets") +
                " ignored)";
        }
    }
}

std::string join(const std::vector<std::string>& parts) {
    std::string text;
    for (const auto& part : parts) {
        if (text.find(part) == std::string::npos) {
            text += (text.empty() ? "" : "; ") + part;
        }
    }
    return text;
}

// The outcome for the name once the asking is over.
void conclude_name(dns_observation& observation, const type_state& a, const type_state& aaaa,
                   bool default_server) {
    std::vector<ip_address> addresses = a.addresses;
    addresses.insert(addresses.end(), aaaa.addresses.begin(), aaaa.addresses.end());
    observation.addresses = v4_then_v6(addresses);
    if (!observation.addresses.empty()) {
        return;
    }
    const auto failed = [&](failure_reason reason, std::string detail) {
        observation.failure = probe_failure{probe_phase::dns, reason, std::move(detail)};
    };
    if (a.nxdomain || aaaa.nxdomain) {
        failed(failure_reason::nxdomain, observation.host + " does not exist (NXDOMAIN)");
        return;
    }
    if (a.settled && aaaa.settled) {
        failed(failure_reason::no_address,
               observation.host + " exists but has no A or AAAA record");
        return;
    }
    std::vector<std::string> failures;
    bool servfail = false;
    bool error = false;
    for (const type_state* state : {&a, &aaaa}) {
        if (!state->settled) {
            failures.insert(failures.end(), state->failures.begin(), state->failures.end());
            servfail = servfail || state->saw_servfail;
            error = error || state->saw_error;
        }
    }
    std::string detail =
        failures.empty() ? "the deadline passed before a query was answered" : join(failures);
    if (default_server) {
        // Without a configured server the failure is the configuration's, whatever the
        // fallback answered.
        failed(
            failure_reason::dns_error,
            "resolv.conf names no nameserver; 127.0.0.1:53, glibc's default, was asked: " + detail);
    } else if (servfail) {
        failed(failure_reason::servfail, detail);
    } else if (error) {
        failed(failure_reason::dns_error, detail);
    } else {
        failed(failure_reason::dns_timeout, detail);
    }
}

boost::asio::awaitable<dns_observation> resolve_on_strand(std::string host, resolver_config config,
                                                          std::string hosts_text,
                                                          steady_time deadline) {
    const auto start = steady_clock::now();
    const auto executor = co_await boost::asio::this_coro::executor;
    dns_observation observation;
    observation.host = host;

    // /etc/hosts comes first, as with the "files dns" order of nsswitch.conf.
    const auto listed = lookup_hosts_file(hosts_text, host);
    if (!listed.empty()) {
        observation.source = "hosts";
        observation.addresses = v4_then_v6(listed);
        observation.elapsed = since(start);
        co_return observation;
    }
    observation.source = "dns";

    std::string error;
    if (!build_dns_query(host, dns_record_type::a, 0, &error)) {
        observation.failure = probe_failure{probe_phase::dns, failure_reason::dns_error, error};
        observation.elapsed = since(start);
        co_return observation;
    }

    const bool default_server = config.servers.empty();
    const auto servers = effective_servers(config);
    if (default_server) {
        observation.notes.push_back(
            "resolv.conf names no nameserver; asking 127.0.0.1:53 as glibc does");
    }
    const int attempts = std::clamp(config.attempts, 1, max_attempts);
    const auto attempt_timeout = std::max(config.attempt_timeout, std::chrono::milliseconds(1));

    type_state a(dns_record_type::a);
    type_state aaaa(dns_record_type::aaaa);
    // Like glibc: each attempt goes through the servers in order.
    for (int attempt = 0; attempt < attempts; ++attempt) {
        for (const auto& server : servers) {
            std::vector<type_state*> unsettled;
            for (type_state* state : {&a, &aaaa}) {
                if (!state->settled) {
                    unsettled.push_back(state);
                }
            }
            const auto now = steady_clock::now();
            if (unsettled.empty() || a.nxdomain || aaaa.nxdomain || now >= deadline) {
                break;
            }
            co_await ask_server(executor, server, host, std::move(unsettled),
                                std::min(now + attempt_timeout, deadline), deadline, observation);
        }
    }
    conclude_name(observation, a, aaaa, default_server);
    observation.elapsed = since(start);
    co_return observation;
}

}  // namespace

resolver_config parse_resolv_conf(std::string_view text, std::vector<std::string>* notes) {
    resolver_config config;
    for_each_line(text, [&](int number, std::string_view line) {
        const auto words = split_words(line);
        if (words.empty() || words[0].front() == '#' || words[0].front() == ';') {
            return;
        }
        const auto where = "resolv.conf line " + std::to_string(number) + ": ";
        if (words[0] == "nameserver") {
            if (words.size() < 2) {
                note(notes, where + "nameserver without an address");
                return;
            }
            boost::system::error_code ec;
            const auto address = boost::asio::ip::make_address(std::string(words[1]), ec);
            if (ec) {
                note(notes,
                     where + "nameserver \"" + std::string(words[1]) + "\" is not an IP address");
            } else if (config.servers.size() >= max_servers) {
                note(notes, where + "nameserver " + std::string(words[1]) +
                                " ignored: glibc asks the first 3 only");
            } else {
                config.servers.emplace_back(address, dns_port);
            }
            return;
        }
        if (words[0] != "options") {
            return;
        }
        for (std::size_t i = 1; i < words.size(); ++i) {
            const auto option = words[i];
            const auto colon = option.find(':');
            const auto name = option.substr(0, colon);
            if (name != "timeout" && name != "attempts") {
                continue;  // rotate, ndots:N, edns0, ...: not used by this probe
            }
            const auto value = colon == std::string_view::npos
                                   ? std::nullopt
                                   : parse_count(option.substr(colon + 1));
            if (!value || *value < 0) {
                note(notes, where + "option \"" + std::string(option) + "\" has no count");
                continue;
            }
            if (name == "timeout") {
                // glibc caps the timeout at 30 s and waits at least 1 s.
                config.attempt_timeout =
                    std::chrono::seconds(std::clamp(*value, 1, max_timeout_seconds));
            } else {
                if (*value == 0) {
                    note(notes, where + "attempts:0 makes glibc send no query; using 1");
                }
                config.attempts = std::clamp(*value, 1, max_attempts);
            }
        }
    });
    return config;
}

std::vector<ip_address> lookup_hosts_file(std::string_view hosts_text, std::string_view name) {
    const std::string wanted = normalize_dns_name(name);
    std::vector<ip_address> found;
    if (wanted.empty()) {
        return found;
    }
    for_each_line(hosts_text, [&](int, std::string_view line) {
        line = line.substr(0, line.find('#'));
        const auto words = split_words(line);
        if (words.size() < 2) {
            return;
        }
        boost::system::error_code ec;
        const auto address = boost::asio::ip::make_address(std::string(words[0]), ec);
        if (ec) {
            return;
        }
        for (std::size_t i = 1; i < words.size(); ++i) {
            if (normalize_dns_name(words[i]) == wanted) {
                add_unique(found, address);
                break;
            }
        }
    });
    return found;
}

std::vector<udp::endpoint> effective_servers(const resolver_config& config) {
    if (!config.servers.empty()) {
        return config.servers;
    }
    return {udp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), dns_port)};
}

boost::asio::awaitable<dns_observation> resolve_host(boost::asio::any_io_executor executor,
                                                     std::string host, resolver_config config,
                                                     std::string hosts_text, steady_time deadline) {
    // Sockets and the deadline timer share a strand, so the timer's close cannot race a receive
    // even when the caller runs its io_context on several threads.
    auto strand = boost::asio::make_strand(executor);
    co_return co_await boost::asio::co_spawn(
        strand,
        resolve_on_strand(std::move(host), std::move(config), std::move(hosts_text), deadline),
        boost::asio::use_awaitable);
}

}  // namespace ssm_doctor
