// SPDX-License-Identifier: Apache-2.0
// CloudWatch Logs over HTTPS: request bodies, SigV4-signed request bytes, one TLS exchange per
// call, and the sorting of answers into what the shipper should do next.
#include "agent/cloudwatch/logs_client.hpp"

#include <utility>

#include <algorithm>
#include <array>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent/targets.hpp"

namespace ssm_doctor {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using json = nlohmann::json;

constexpr std::string_view target_prefix = "Logs_20140328.";
constexpr std::size_t max_quoted = 300;

// Text from the network made safe for a log line: printable ASCII, bounded.
std::string printable(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, max_quoted)) {
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    if (text.size() > max_quoted) {
        out += "...";
    }
    return out;
}

bool is_address_literal(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

std::string host_header(const logs_endpoint& endpoint) {
    std::string host = endpoint.host.find(':') != std::string::npos && endpoint.host[0] != '['
                           ? "[" + endpoint.host + "]"
                           : endpoint.host;
    if (endpoint.port != 443) {
        host += ":" + std::to_string(endpoint.port);
    }
    return host;
}

std::string where(const logs_endpoint& endpoint) {
    return host_header(endpoint) + (endpoint.port == 443 ? ":443" : "");
}

std::string openssl_errors() {
    std::string text;
    while (unsigned long code = ERR_get_error()) {
        if (!text.empty()) {
            text += "; ";
        }
        const char* reason = ERR_reason_error_string(code);
        text += reason != nullptr ? reason : "OpenSSL error " + std::to_string(code);
    }
    return text.empty() ? std::string("no reason given by OpenSSL") : text;
}

failure_reason reason_for(const error_code& ec) {
    if (ec == asio::error::connection_refused) {
        return failure_reason::refused;
    }
    if (ec == asio::error::network_unreachable || ec == asio::error::host_unreachable) {
        return failure_reason::unreachable;
    }
    if (ec == asio::error::connection_reset || ec == asio::error::eof ||
        ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated) {
        return failure_reason::reset;
    }
    if (ec == asio::error::timed_out) {
        return failure_reason::timeout;
    }
    return failure_reason::other;
}

// The parts of one HTTPS exchange; the caller has signed the request already.
asio::awaitable<http_exchange> https_exchange(asio::any_io_executor executor,
                                              logs_endpoint endpoint,
                                              std::shared_ptr<ssl::context> tls, std::string wire,
                                              steady_time deadline) {
    http_exchange result;
    const auto started = std::chrono::steady_clock::now();
    auto fail = [&](probe_phase phase, failure_reason reason, std::string detail) {
        result.failure = probe_failure{phase, reason, std::move(detail)};
        result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
        return result;
    };
    const std::string peer = where(endpoint);
    if (std::chrono::steady_clock::now() >= deadline) {
        co_return fail(probe_phase::connect, failure_reason::timeout,
                       "the deadline passed before connecting to " + peer);
    }

    ssl::stream<tcp::socket> stream(executor, *tls);
    tcp::socket& socket = stream.next_layer();
    tcp::resolver resolver(executor);
    deadline_guard guard(executor, deadline, [&socket, &resolver] {
        error_code ignored;
        resolver.cancel();
        socket.close(ignored);
    });
    error_code ec;
    auto on_error = asio::redirect_error(asio::use_awaitable, ec);

    // 1. Resolve (names only) and connect to the first address that answers.
    std::vector<tcp::endpoint> addresses;
    if (is_address_literal(endpoint.host)) {
        addresses.emplace_back(asio::ip::make_address(endpoint.host), endpoint.port);
    } else {
        auto found =
            co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port), on_error);
        if (guard.expired()) {
            co_return fail(probe_phase::dns, failure_reason::dns_timeout,
                           "no address for " + endpoint.host + " before the deadline");
        }
        if (ec) {
            co_return fail(probe_phase::dns, failure_reason::dns_error,
                           "resolving " + endpoint.host + ": " + ec.message());
        }
        for (const auto& entry : found) {
            addresses.push_back(entry.endpoint());
        }
    }
    co_await asio::async_connect(socket, addresses, on_error);
    if (guard.expired()) {
        co_return fail(probe_phase::connect, failure_reason::timeout,
                       "no TCP connection to " + peer + " before the deadline");
    }
    if (ec) {
        co_return fail(probe_phase::connect, reason_for(ec),
                       "connect to " + peer + ": " + ec.message());
    }

    // 2. TLS with SNI and host-name (or IP address) verification against the probes' trust.
    SSL* native = stream.native_handle();
    ERR_clear_error();
    if (is_address_literal(endpoint.host)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), endpoint.host.c_str()) != 1) {
            co_return fail(probe_phase::tls, failure_reason::other,
                           "cannot expect IP address " + endpoint.host + ": " + openssl_errors());
        }
    } else if (SSL_set_tlsext_host_name(native, endpoint.host.c_str()) != 1 ||
               SSL_set1_host(native, endpoint.host.c_str()) != 1) {
        co_return fail(
            probe_phase::tls, failure_reason::other,
            "cannot expect host name " + printable(endpoint.host) + ": " + openssl_errors());
    }
    stream.set_verify_mode(ssl::verify_peer, ec);
    if (!ec) {
        co_await stream.async_handshake(ssl::stream_base::client, on_error);
    }
    if (guard.expired()) {
        co_return fail(probe_phase::tls, failure_reason::timeout,
                       "no TLS handshake with " + peer + " before the deadline");
    }
    if (ec) {
        const long verify = SSL_get_verify_result(native);
        ERR_clear_error();
        if (verify != X509_V_OK) {
            co_return fail(probe_phase::tls, failure_reason::tls_verify_failed,
                           "TLS with " + peer + ": " + X509_verify_cert_error_string(verify));
        }
        co_return fail(probe_phase::tls,
                       reason_for(ec) == failure_reason::reset
                           ? failure_reason::reset
                           : failure_reason::tls_handshake_failed,
                       "TLS with " + peer + ": " + ec.message());
    }

    // 3. Send the request and read until the parser has a whole answer.
    co_await asio::async_write(stream, asio::buffer(wire), on_error);
    if (guard.expired()) {
        co_return fail(probe_phase::http, failure_reason::timeout,
                       "request to " + peer + " not sent before the deadline");
    }
    if (ec) {
        co_return fail(probe_phase::http, reason_for(ec),
                       "sending the request to " + peer + ": " + ec.message());
    }
    std::string received;
    std::array<char, 16 * 1024> buffer{};
    while (true) {
        ec.clear();
        const std::size_t n = co_await stream.async_read_some(asio::buffer(buffer), on_error);
        if (guard.expired()) {
            co_return fail(probe_phase::http, failure_reason::timeout,
                           "no complete answer from " + peer + " before the deadline");
        }
        // A server that closes without close_notify after a complete answer is common; the
        // parser decides whether the answer was whole.
        const bool at_eof = ec == asio::error::eof || ec == ssl::error::stream_truncated;
        if (ec && !at_eof) {
            co_return fail(probe_phase::http, reason_for(ec),
                           "reading the answer from " + peer + ": " + ec.message());
        }
        received.append(buffer.data(), n);
        auto parsed = parse_http_response(received, at_eof);
        if (parsed.status == http_parse_status::complete) {
            result.response = std::move(parsed.response);
            result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started);
            error_code ignored;
            socket.close(ignored);  // no close_notify: a slow peer must not hold us
            co_return result;
        }
        if (parsed.status == http_parse_status::error) {
            co_return fail(probe_phase::http, failure_reason::http_error,
                           "answer from " + peer + ": " + parsed.error);
        }
        if (at_eof) {
            co_return fail(probe_phase::http, failure_reason::reset,
                           "connection to " + peer + " closed before the answer was complete");
        }
    }
}

logs_outcome outcome_for_type(std::string_view type, int status) {
    if (type == "ResourceNotFoundException") {
        return logs_outcome::resource_not_found;
    }
    if (type == "ResourceAlreadyExistsException") {
        return logs_outcome::already_exists;
    }
    if (type == "ThrottlingException" || type == "LimitExceededException" ||
        type == "TooManyRequestsException" || type == "RequestLimitExceeded" || status == 429) {
        return logs_outcome::throttled;
    }
    if (type == "ServiceUnavailableException" || type == "InternalFailure" || status >= 500) {
        return logs_outcome::server_error;
    }
    if (type == "ExpiredTokenException" || type == "ExpiredToken" ||
        type == "UnrecognizedClientException" || type == "InvalidSignatureException" ||
        type == "IncompleteSignature" || type == "InvalidClientTokenId") {
        return logs_outcome::credentials_rejected;
    }
    if (type == "InvalidParameterException" || type == "SerializationException" ||
        type == "ValidationException" || type == "DataAlreadyAcceptedException") {
        return type == "DataAlreadyAcceptedException" ? logs_outcome::ok
                                                      : logs_outcome::invalid_request;
    }
    return logs_outcome::denied;
}

std::optional<std::int64_t> index_field(const json& info, const char* name) {
    const auto it = info.find(name);
    if (it == info.end() || !it->is_number_integer()) {
        return std::nullopt;
    }
    return it->get<std::int64_t>();
}

}  // namespace

std::string_view to_string(logs_outcome outcome) {
    switch (outcome) {
        case logs_outcome::ok:
            return "ok";
        case logs_outcome::resource_not_found:
            return "resource_not_found";
        case logs_outcome::already_exists:
            return "already_exists";
        case logs_outcome::throttled:
            return "throttled";
        case logs_outcome::server_error:
            return "server_error";
        case logs_outcome::network:
            return "network";
        case logs_outcome::credentials_rejected:
            return "credentials_rejected";
        case logs_outcome::invalid_request:
            return "invalid_request";
        case logs_outcome::denied:
            return "denied";
    }
    return "unknown";
}

std::optional<logs_endpoint> resolve_logs_endpoint(const std::optional<std::string>& override_url,
                                                   const std::optional<std::string>& region,
                                                   std::string* error) {
    auto fail = [error](std::string why) -> std::optional<logs_endpoint> {
        if (error != nullptr) {
            *error = std::move(why);
        }
        return std::nullopt;
    };
    if (override_url && !override_url->empty()) {
        std::string text = *override_url;
        while (text.size() > 8 && text.back() == '/') {
            text.pop_back();
        }
        const auto parsed = parse_endpoint_override(text);
        const bool usable_host =
            parsed && (valid_host_name(parsed->host) || is_address_literal(parsed->host));
        if (!text.starts_with("https://") || !usable_host || parsed->plain_http ||
            text.find('/', 8) != std::string::npos) {
            return fail("cloudwatch.endpoint \"" + printable(*override_url) +
                        "\" is not https://host[:port]");
        }
        return logs_endpoint{parsed->host, parsed->port};
    }
    if (!region || !valid_region(*region)) {
        return fail(region ? "region \"" + printable(*region) + "\" is not a valid region name"
                           : std::string("no region known for the CloudWatch Logs endpoint; set "
                                         "`region` or `cloudwatch.endpoint`"));
    }
    return logs_endpoint{"logs." + *region + "." + domain_for_region(*region), 443};
}

std::size_t rejected_count(const rejected_events_info& info, std::size_t batch_size) {
    const auto n = static_cast<std::int64_t>(batch_size);
    auto clamp = [n](std::int64_t v) { return std::clamp<std::int64_t>(v, 0, n); };
    // The rejected ranges are a prefix (too old or expired) and a suffix (too new).
    const std::int64_t prefix =
        std::max(clamp(info.too_old_end.value_or(0)), clamp(info.expired_end.value_or(0)));
    const std::int64_t suffix_start = std::max(prefix, clamp(info.too_new_start.value_or(n)));
    return static_cast<std::size_t>(prefix + (n - suffix_start));
}

logs_response classify_logs_response(const http_response& response) {
    logs_response out;
    out.status = response.status;
    json body = json::parse(response.body, nullptr, false);
    if (response.status >= 200 && response.status < 300) {
        out.outcome = logs_outcome::ok;
        if (body.is_object()) {
            const auto info = body.find("rejectedLogEventsInfo");
            if (info != body.end() && info->is_object()) {
                out.rejected.too_new_start = index_field(*info, "tooNewLogEventStartIndex");
                out.rejected.too_old_end = index_field(*info, "tooOldLogEventEndIndex");
                out.rejected.expired_end = index_field(*info, "expiredLogEventEndIndex");
            }
        }
        return out;
    }
    if (body.is_object()) {
        // JSON 1.1 errors name their type in "__type", sometimes as "namespace#Type".
        if (const auto t = body.find("__type"); t != body.end() && t->is_string()) {
            out.error_type = t->get<std::string>();
            if (const auto hash = out.error_type.rfind('#'); hash != std::string::npos) {
                out.error_type.erase(0, hash + 1);
            }
        }
        for (const char* key : {"message", "Message"}) {
            if (const auto m = body.find(key); m != body.end() && m->is_string()) {
                out.message = printable(m->get<std::string>());
                break;
            }
        }
    } else {
        out.message = printable(response.body);
    }
    if (out.error_type.empty()) {
        if (const auto* amzn = find_header(response.headers, "x-amzn-ErrorType")) {
            out.error_type = printable(amzn->substr(0, amzn->find(':')));
        }
    }
    if (out.message.empty()) {
        out.message = "HTTP " + std::to_string(response.status) + " " + printable(response.reason);
    }
    out.outcome = outcome_for_type(out.error_type, response.status);
    return out;
}

std::string put_log_events_body(std::string_view group, std::string_view stream,
                                const std::vector<log_event>& events) {
    json list = json::array();
    for (const auto& event : events) {
        list.push_back({{"timestamp", event.timestamp_ms}, {"message", event.message}});
    }
    const json body = {
        {"logGroupName", group}, {"logStreamName", stream}, {"logEvents", std::move(list)}};
    // Replace, not throw, on invalid UTF-8: the shipper cleans messages first, this is a backstop.
    return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string create_log_group_body(std::string_view group) {
    return json{{"logGroupName", group}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string create_log_stream_body(std::string_view group, std::string_view stream) {
    return json{{"logGroupName", group}, {"logStreamName", stream}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
}

std::string build_logs_request(const logs_endpoint& endpoint, std::string_view region,
                               std::string_view operation, const std::string& body,
                               const aws_credentials& credentials,
                               std::chrono::system_clock::time_point now) {
    signable_request request;
    request.method = "POST";
    request.path = "/";
    request.headers = {
        {"Host", host_header(endpoint)},
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", std::string(target_prefix) + std::string(operation)},
    };
    request.body = body;
    sign_request(request, credentials, signing_scope{std::string(region), "logs", true}, now);

    std::string wire = "POST / HTTP/1.1\r\n";
    for (const auto& [name, value] : request.headers) {
        wire += name + ": " + value + "\r\n";
    }
    wire += "User-Agent: ssm-doctor/" SSM_DOCTOR_VERSION "\r\n";
    wire += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    wire += "Connection: close\r\n\r\n";
    wire += body;
    return wire;
}

logs_client::logs_client(logs_endpoint endpoint, std::string region,
                         std::shared_ptr<ssl::context> tls)
    : endpoint_(std::move(endpoint)), region_(std::move(region)), tls_(std::move(tls)) {}

asio::awaitable<logs_response> logs_client::call(asio::any_io_executor executor,
                                                 std::string operation, std::string body,
                                                 aws_credentials credentials,
                                                 steady_time deadline) {
    std::string wire = build_logs_request(endpoint_, region_, operation, body, credentials,
                                          std::chrono::system_clock::now());
    body.clear();
    body.shrink_to_fit();
    const auto exchange =
        co_await https_exchange(executor, endpoint_, tls_, std::move(wire), deadline);
    if (!exchange.response) {
        logs_response out;
        out.outcome = logs_outcome::network;
        out.failure = exchange.failure;
        out.message = exchange.failure ? exchange.failure->detail : "no answer";
        co_return out;
    }
    co_return classify_logs_response(*exchange.response);
}

asio::awaitable<logs_response> logs_client::put_log_events(asio::any_io_executor executor,
                                                           std::string group, std::string stream,
                                                           const std::vector<log_event>& events,
                                                           aws_credentials credentials,
                                                           steady_time deadline) {
    std::string body = put_log_events_body(group, stream, events);
    co_return co_await call(std::move(executor), "PutLogEvents", std::move(body),
                            std::move(credentials), deadline);
}

asio::awaitable<logs_response> logs_client::create_log_group(asio::any_io_executor executor,
                                                             std::string group,
                                                             aws_credentials credentials,
                                                             steady_time deadline) {
    co_return co_await call(std::move(executor), "CreateLogGroup", create_log_group_body(group),
                            std::move(credentials), deadline);
}

asio::awaitable<logs_response> logs_client::create_log_stream(asio::any_io_executor executor,
                                                              std::string group, std::string stream,
                                                              aws_credentials credentials,
                                                              steady_time deadline) {
    co_return co_await call(std::move(executor), "CreateLogStream",
                            create_log_stream_body(group, stream), std::move(credentials),
                            deadline);
}

}  // namespace ssm_doctor
