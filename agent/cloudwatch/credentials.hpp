// SPDX-License-Identifier: Apache-2.0
// The instance role's credentials from IMDSv2, refreshed before they expire.
#pragma once

#include <utility>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "agent/cloudwatch/sigv4.hpp"
#include "probes/deadline.hpp"
#include "probes/failure.hpp"

namespace ssm_doctor {

// Parses the JSON of /latest/meta-data/iam/security-credentials/<role> (AccessKeyId,
// SecretAccessKey, Token, Expiration, Code). Throws std::runtime_error naming the field; the
// message never contains a secret.
// A missing Code is accepted (only AccessKeyId, SecretAccessKey, Token and Expiration are
// needed); a Code other than "Success" is an error that names it.
aws_credentials parse_role_credentials(std::string_view json_text);

// "2026-12-03T22:10:00Z", optionally with fractional seconds ("...:00.123Z"); UTC only.
std::optional<std::chrono::system_clock::time_point> parse_utc_timestamp(std::string_view text);

struct credentials_result {
    std::optional<aws_credentials> credentials;
    std::optional<probe_failure> failure;  // detail never contains a secret or the token
};

// Fetches from IMDS (token PUT, role name, role document) and caches. `get` returns the cached
// credentials while they have more than `refresh_margin` left, else fetches anew.
// - IMDSv2 only: every EC2 instance with IMDS on answers the token PUT (403 = IMDS off).
// - `timeout` bounds one fetch as a whole (all three requests share one deadline).
// - When a refresh fails while the cached credentials have not yet expired, the result holds
//   both: the still valid credentials and the failure, so callers can go on and still report.
// - Failure text never holds the IMDS token, a key id, a secret or a session token, nor any
//   text the server sent (reason phrases, bodies, malformed lines): only status codes.
// The executor must run handlers one at a time (see probes/http_client.hpp); one `get` at a time.
class imds_credentials_provider {
public:
    imds_credentials_provider(std::string imds_endpoint, std::chrono::milliseconds timeout,
                              std::chrono::seconds refresh_margin = std::chrono::minutes(5));
    ~imds_credentials_provider();  // wipes the cached secret and session token

    boost::asio::awaitable<credentials_result> get(boost::asio::any_io_executor executor,
                                                   std::chrono::system_clock::time_point now);

    // Drops the cache, e.g. after the service answered ExpiredTokenException.
    void invalidate();

private:
    std::string endpoint_;
    std::chrono::milliseconds timeout_;
    std::chrono::seconds refresh_margin_;
    std::optional<aws_credentials> cached_;
};

}  // namespace ssm_doctor
