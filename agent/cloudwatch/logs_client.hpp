// SPDX-License-Identifier: Apache-2.0
// A client for the three CloudWatch Logs calls ssm-doctor makes (PutLogEvents, CreateLogGroup,
// CreateLogStream): JSON 1.1 protocol over HTTPS/1.1, signed with SigV4 for service `logs`.
#pragma once

// Limits, stated once: one request per connection (`Connection: close`), no proxy, answers of at
// most 16 KiB of headers and 1 MiB of body. A host *name* is resolved with getaddrinfo on Asio's
// helper thread, which the deadline cannot interrupt (as in probes/http_client.hpp); address
// literals and the usual VPC endpoint names resolve quickly. Nothing here retries: the shipper
// owns the policy. Errors are data, never exceptions, and no text produced here ever contains
// the Authorization header, the security token or the secret key.

#include <utility>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "agent/cloudwatch/sigv4.hpp"
#include "agent/config.hpp"
#include "probes/deadline.hpp"
#include "probes/failure.hpp"
#include "probes/http_client.hpp"

namespace ssm_doctor {

// Where the CloudWatch Logs API is: the host is also the TLS name checked and the Host header.
struct logs_endpoint {
    std::string host;
    std::uint16_t port = 443;
};

// `cloudwatch.endpoint` ("https://host[:port]", a trailing "/" allowed) when set, else
// logs.<region>.<domain>. Nullopt with `error` set when the override is not an https URL with a
// usable host, or when there is no override and no valid region.
std::optional<logs_endpoint> resolve_logs_endpoint(const std::optional<std::string>& override_url,
                                                   const std::optional<std::string>& region,
                                                   std::string* error = nullptr);

struct log_event {
    std::int64_t timestamp_ms = 0;
    std::string message;  // valid UTF-8
};

// What became of one call, sorted by what the caller should do next.
enum class logs_outcome {
    ok,                    // 2xx
    resource_not_found,    // ResourceNotFoundException: create the group or stream, then retry
    already_exists,        // ResourceAlreadyExistsException (a create that raced or was redundant)
    throttled,             // ThrottlingException, LimitExceededException, 429: back off
    server_error,          // 5xx, ServiceUnavailableException: back off
    network,               // no answer: DNS, connect, TLS, reset, timeout, garbled HTTP
    credentials_rejected,  // ExpiredTokenException, UnrecognizedClientException, bad signature
    invalid_request,       // InvalidParameterException, SerializationException: the data is bad
    denied,                // AccessDeniedException and any other 4xx: fix the role, keep the data
};

std::string_view to_string(logs_outcome outcome);

// PutLogEvents' rejectedLogEventsInfo. Indexes into the batch as sent; the service drops the
// events [0, too_old_end), [0, expired_end) and [too_new_start, size).
struct rejected_events_info {
    std::optional<std::int64_t> too_new_start;
    std::optional<std::int64_t> too_old_end;
    std::optional<std::int64_t> expired_end;
};

// How many of `batch_size` events the service said it dropped (each counted once).
std::size_t rejected_count(const rejected_events_info& info, std::size_t batch_size);

struct logs_response {
    logs_outcome outcome = logs_outcome::network;
    int status = 0;                        // 0 when no answer came
    std::string error_type;                // "ThrottlingException", without any "prefix#"
    std::string message;                   // the service's message or the network failure's text
    std::optional<probe_failure> failure;  // when outcome is network
    rejected_events_info rejected;         // PutLogEvents only
};

// Pure: sorts an HTTP answer into an outcome. The body is JSON 1.1 ({"__type": ..., "message":
// ...}); a body that is not JSON is kept (shortened, printable) in `message`.
logs_response classify_logs_response(const http_response& response);

// Pure: the JSON bodies of the three calls. Messages must be valid UTF-8 (the shipper ensures it).
std::string put_log_events_body(std::string_view group, std::string_view stream,
                                const std::vector<log_event>& events);
std::string create_log_group_body(std::string_view group);
std::string create_log_stream_body(std::string_view group, std::string_view stream);

// Pure: the bytes of a signed request for `operation` ("PutLogEvents") with `body`, at `now`.
std::string build_logs_request(const logs_endpoint& endpoint, std::string_view region,
                               std::string_view operation, const std::string& body,
                               const aws_credentials& credentials,
                               std::chrono::system_clock::time_point now);

class logs_client {
public:
    // `tls` is the probes' trust (make_tls_client_context: tls.ca_file or the system store).
    logs_client(logs_endpoint endpoint, std::string region,
                std::shared_ptr<boost::asio::ssl::context> tls);

    const logs_endpoint& endpoint() const { return endpoint_; }

    // One signed call; never throws for network or protocol trouble; ends by `deadline`.
    boost::asio::awaitable<logs_response> call(boost::asio::any_io_executor executor,
                                               std::string operation, std::string body,
                                               aws_credentials credentials, steady_time deadline);

    boost::asio::awaitable<logs_response> put_log_events(boost::asio::any_io_executor executor,
                                                         std::string group, std::string stream,
                                                         const std::vector<log_event>& events,
                                                         aws_credentials credentials,
                                                         steady_time deadline);

    boost::asio::awaitable<logs_response> create_log_group(boost::asio::any_io_executor executor,
                                                           std::string group,
                                                           aws_credentials credentials,
                                                           steady_time deadline);

    boost::asio::awaitable<logs_response> create_log_stream(boost::asio::any_io_executor executor,
                                                            std::string group, std::string stream,
                                                            aws_credentials credentials,
                                                            steady_time deadline);

private:
    logs_endpoint endpoint_;
    std::string region_;
    std::shared_ptr<boost::asio::ssl::context> tls_;
};

}  // namespace ssm_doctor
