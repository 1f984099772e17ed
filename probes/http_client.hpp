// SPDX-License-Identifier: Apache-2.0
// A minimal HTTP/1.1 client over plain TCP: one request per connection, bounded memory.
#pragma once

// Limits, stated once: the header block of a response (status line, header lines and any
// interim 1xx responses) is at most `max_header_bytes`, the decoded body at most
// `max_body_bytes`; chunk framing (size lines, extensions, CRLFs) may add at most their sum
// again, and trailers another `max_header_bytes`. Nothing larger is ever buffered.
// No TLS, no proxies, no redirects, no keep-alive: every request is sent with
// `Connection: close`. Errors are data (probe_failure), never exceptions.
//
// The executor must run its handlers one at a time (one thread, or a strand): the deadline
// closes the socket from a timer handler.
//
// Known limit: a host *name* is resolved with Asio's resolver, i.e. getaddrinfo on a helper
// thread, which cannot be interrupted; a slow resolver can hold the exchange past its deadline
// (the result is still `dns_timeout`). Address literals, the normal case, do not resolve.

#include <utility>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "probes/deadline.hpp"
#include "probes/failure.hpp"

namespace ssm_doctor {

struct http_header {
    std::string name;
    std::string value;
};

// In the order received; names compare case-insensitively (find_header).
using http_headers = std::vector<http_header>;

// The value of the first header called `name` (any case), or nullptr.
const std::string* find_header(const http_headers& headers, std::string_view name);

struct http_request {
    std::string method = "GET";
    std::string target = "/";  // origin form: path and query
    http_headers headers;      // Host, Connection and Content-Length are added by the client
    std::string body;
};

struct http_response {
    int status = 0;
    std::string reason;
    http_headers headers;
    std::string body;  // decoded (chunked framing removed)
};

// Where to send requests: an IPv4 or IPv6 literal or a name, and a TCP port.
struct http_endpoint {
    std::string host;  // without the brackets of an IPv6 literal
    std::uint16_t port = 80;

    // "host" or "host:port" as the Host header wants it (IPv6 literals in brackets).
    std::string authority() const;
};

// Parses "http://host[:port]" with an optional trailing "/"; host is a name, an IPv4 literal or
// an IPv6 literal in brackets. On failure returns nullopt and, when `error` is given, says why.
std::optional<http_endpoint> parse_http_endpoint(std::string_view url,
                                                 std::string* error = nullptr);

struct http_limits {
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_body_bytes = 1024 * 1024;
};

enum class http_parse_status { complete, incomplete, error };

struct http_parse_result {
    http_parse_status status = http_parse_status::incomplete;
    http_response response;    // filled when complete
    std::size_t consumed = 0;  // bytes of `bytes` that made up the response, when complete
    std::string error;         // when error: what was wrong and where, for people
};

struct http_parse_options {
    http_limits limits;
    bool head_request = false;  // the response to HEAD has no body whatever its headers say
};

// Parses a response from the bytes received so far. `at_eof` says the peer closed the
// connection after them: a body without length then ends there, and anything still missing is
// an error (truncated). Interim 1xx responses are skipped. Pure: no I/O, no clock.
http_parse_result parse_http_response(std::string_view bytes, bool at_eof,
                                      const http_parse_options& options = {});

// The bytes of a request: request line, Host, the caller's headers, Connection: close and
// Content-Length when there is a body (or the method normally has one). Returns nullopt and
// sets `error` when the method, target or a header would break the framing (CR, LF, ...).
std::optional<std::string> serialize_http_request(const http_request& request,
                                                  const http_endpoint& endpoint,
                                                  std::string* error = nullptr);

struct http_exchange {
    std::optional<http_response> response;  // an answer was received and parsed
    std::optional<probe_failure> failure;   // otherwise: the step that failed and why
    std::chrono::milliseconds elapsed{0};
};

// Resolves the host (names only), connects, sends `request` and reads the whole response.
// Ends by `deadline`: the socket is closed and the failure is `timeout` (`dns_timeout` while
// resolving) in the phase that was pending. Never throws for network or protocol trouble.
boost::asio::awaitable<http_exchange> send_http_request(boost::asio::any_io_executor executor,
                                                        http_endpoint endpoint,
                                                        http_request request, steady_time deadline,
                                                        http_limits limits = {});

}  // namespace ssm_doctor
