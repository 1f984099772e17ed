// SPDX-License-Identifier: Apache-2.0
// TCP connect and TLS handshake to one address of an endpoint, directly or through a proxy,
// with SNI, chain and host-name verification, and the time of each phase.
//
// Limits: only the leaf certificate is described (not the chain); the proxy CONNECT carries no
// Proxy-Authorization; the connection is closed without a TLS close_notify on purpose, so a
// slow peer cannot hold the probe past its deadline. A phase's *_ms is set when the phase
// finished, including a handshake that completed but failed verification.
#pragma once

#include <utility>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "probes/deadline.hpp"
#include "probes/failure.hpp"

namespace ssm_doctor {

// What the server presented, recorded whenever a certificate was seen, also when verification
// failed (so an intercepting proxy's issuer can be named).
struct tls_details {
    std::string version;  // "TLSv1.3"
    std::string cipher;   // "TLS_AES_128_GCM_SHA256"
    std::string subject;  // one-line RFC 2253 form
    std::string issuer;
    std::vector<std::string> subject_alt_names;  // DNS names and IP addresses
    std::optional<std::chrono::system_clock::time_point> not_after;
};

struct tls_probe_result {
    bool ok = false;  // connected, handshake done, chain and host name verified
    std::optional<probe_failure> failure;
    std::optional<tls_details> tls;
    std::optional<std::chrono::milliseconds> connect_ms;  // present when the phase ended
    std::optional<std::chrono::milliseconds> proxy_ms;
    std::optional<std::chrono::milliseconds> tls_ms;
};

// The trust store: the system's default paths, or only `ca_file` (PEM) when given. Throws
// std::runtime_error naming the file when it cannot be loaded.
std::shared_ptr<boost::asio::ssl::context> make_tls_client_context(
    const std::optional<std::filesystem::path>& ca_file);

struct tls_target {
    std::string host;  // SNI and the name verified; the proxy is asked to CONNECT to host:port
    unsigned short port = 443;
    boost::asio::ip::tcp::endpoint address;  // where to connect: the endpoint's or the proxy's
    bool via_proxy = false;                  // send CONNECT host:port first
};

// The status code of a proxy's reply head ("HTTP/1.1 200 Connection established\r\n..."), or
// nullopt when its first line is not an HTTP/1.x status line.
std::optional<int> parse_proxy_status(std::string_view reply_head);

// Never throws for network trouble: every failure is recorded in the result. Ends by `deadline`
// with reason `timeout` in the phase that was pending.
boost::asio::awaitable<tls_probe_result> probe_tls(
    boost::asio::any_io_executor executor, tls_target target,
    std::shared_ptr<boost::asio::ssl::context> context, steady_time deadline);

}  // namespace ssm_doctor
