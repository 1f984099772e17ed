// SPDX-License-Identifier: Apache-2.0
// Every member of every observation type, by name. nlohmann's macros write the two directions
// from one list, so a member cannot be written and forgotten on the way back, and decoding needs
// every key (j.at). A member added to a type and not listed here fails the build: each list is
// checked against the type's number of members. Enumerations travel as their numbers: both ends
// are the same build.
#include "agent/observations_codec.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <nlohmann/json.hpp>

namespace nlohmann {

template <typename T>
struct adl_serializer<std::optional<T>> {
    static void to_json(json& j, const std::optional<T>& value) {
        if (value) {
            j = *value;
        } else {
            j = nullptr;
        }
    }
    static void from_json(const json& j, std::optional<T>& value) {
        if (j.is_null()) {
            value.reset();
        } else {
            value = j.get<T>();
        }
    }
};

template <>
struct adl_serializer<std::chrono::milliseconds> {
    static void to_json(json& j, const std::chrono::milliseconds& d) { j = d.count(); }
    static void from_json(const json& j, std::chrono::milliseconds& d) {
        d = std::chrono::milliseconds(j.get<std::chrono::milliseconds::rep>());
    }
};

// Nanoseconds since the epoch: the time points keep every digit they had.
template <>
struct adl_serializer<std::chrono::system_clock::time_point> {
    static void to_json(json& j, const std::chrono::system_clock::time_point& t) {
        j = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    }
    static void from_json(const json& j, std::chrono::system_clock::time_point& t) {
        t = std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::nanoseconds(j.get<std::int64_t>())));
    }
};

template <>
struct adl_serializer<boost::asio::ip::address> {
    static void to_json(json& j, const boost::asio::ip::address& a) { j = a.to_string(); }
    static void from_json(const json& j, boost::asio::ip::address& a) {
        boost::system::error_code ec;
        a = boost::asio::ip::make_address(j.get<std::string>(), ec);
        if (ec) {
            throw ssm_doctor::codec_error("not an IP address: " + j.get<std::string>());
        }
    }
};

template <>
struct adl_serializer<boost::asio::ip::tcp::endpoint> {
    static void to_json(json& j, const boost::asio::ip::tcp::endpoint& e) {
        j = json{{"address", e.address()}, {"port", e.port()}};
    }
    static void from_json(const json& j, boost::asio::ip::tcp::endpoint& e) {
        e = boost::asio::ip::tcp::endpoint(j.at("address").get<boost::asio::ip::address>(),
                                           j.at("port").get<unsigned short>());
    }
};

}  // namespace nlohmann

namespace ssm_doctor {
namespace {

// Converts to anything: T{member_filler{}, ...} compiles with as many fillers as T has members
// and no more.
struct member_filler {
    template <typename U>
    operator U() const;
};

template <typename T, typename... Fillers>
consteval std::size_t member_count() {
    if constexpr (requires { T{Fillers{}..., member_filler{}}; }) {
        return member_count<T, Fillers..., member_filler>();
    } else {
        return sizeof...(Fillers);
    }
}

}  // namespace

#define SSM_DOCTOR_COUNT_ONE(member) +1
// The two conversions of `type` from its members, and the check that they are all of them.
#define SSM_DOCTOR_CODEC(type, ...)                                                   \
    NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(type, __VA_ARGS__)                             \
    static_assert(member_count<type>() == 0 NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE( \
                                              SSM_DOCTOR_COUNT_ONE, __VA_ARGS__)),    \
                  "the codec must list every member of " #type);

SSM_DOCTOR_CODEC(cidr_block, network, prefix_length)
SSM_DOCTOR_CODEC(probe_failure, phase, reason, detail)
SSM_DOCTOR_CODEC(agent_version, parts)
SSM_DOCTOR_CODEC(agent_config, region, service_domain, ssm_endpoint, mgs_endpoint, mgs_region,
                 mds_endpoint, s3_endpoint, kms_endpoint)
SSM_DOCTOR_CODEC(agent_config_observation, path, present, error, values)
SSM_DOCTOR_CODEC(agent_process, pid, name, started, exe)
SSM_DOCTOR_CODEC(proxy_settings, https_proxy, no_proxy, from_pid)
SSM_DOCTOR_CODEC(agent_observation, installed, version, version_source, method, processes, proxy,
                 hibernate_log_written, notes)
SSM_DOCTOR_CODEC(imds_observation, reachable, token_accepted, region, instance_id, mac, vpc_cidrs,
                 vpc_ipv4_known, vpc_ipv6_known, failure, notes, elapsed)
SSM_DOCTOR_CODEC(dns_query_trace, server, type, outcome, elapsed)
SSM_DOCTOR_CODEC(dns_observation, host, source, addresses, failure, trace, elapsed, notes)
SSM_DOCTOR_CODEC(tls_details, version, cipher, subject, issuer, subject_alt_names, not_after)
SSM_DOCTOR_CODEC(tls_probe_result, ok, failure, tls, connect_ms, proxy_ms, tls_ms)
SSM_DOCTOR_CODEC(tcp_session, local, remote, inode, pid, process)
SSM_DOCTOR_CODEC(socket_observation, table_read, attribution_complete, sessions, notes)
SSM_DOCTOR_CODEC(endpoint_target, svc, host, port, default_host, overridden, override_key,
                 override_value, plain_http)
SSM_DOCTOR_CODEC(address_observation, ip, kind, in_vpc, probe)
SSM_DOCTOR_CODEC(endpoint_observation, target, probed, via_proxy, dns, addresses, sessions, dns_ms)
SSM_DOCTOR_CODEC(observations, region, region_source, agent, agent_config, imds, sockets, endpoints,
                 proxy_sessions, notes, elapsed)

#undef SSM_DOCTOR_CODEC
#undef SSM_DOCTOR_COUNT_ONE

namespace {

constexpr int format_version = 1;

}  // namespace

std::string encode_observations(const observations& seen) {
    const nlohmann::json out{{"format", format_version}, {"observations", seen}};
    // Strings from the probes (file contents, server names) may hold bytes that are not UTF-8;
    // they travel as they are replaced, as everywhere else in ssm-doctor's JSON.
    return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

observations decode_observations(std::string_view text) {
    nlohmann::json in;
    try {
        in = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw codec_error(std::string("observations: not JSON: ") + e.what());
    }
    try {
        if (!in.is_object() || in.value("format", 0) != format_version) {
            throw codec_error("observations: not format " + std::to_string(format_version));
        }
        return in.at("observations").get<observations>();
    } catch (const nlohmann::json::exception& e) {
        throw codec_error(std::string("observations: ") + e.what());
    }
}

}  // namespace ssm_doctor
