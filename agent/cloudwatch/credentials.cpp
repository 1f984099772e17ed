// SPDX-License-Identifier: Apache-2.0
// The instance role's credentials: three IMDSv2 requests, a parser, a cache and a scrubber.
#include "agent/cloudwatch/credentials.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include "probes/http_client.hpp"
#include "probes/imds_protocol.hpp"

namespace ssm_doctor {
namespace {

using json = nlohmann::json;
using imds::token_header;
using imds::token_path;
using imds::trim;
using imds::ttl_header;

constexpr std::string_view role_list_path = "/latest/meta-data/iam/security-credentials/";
// The token is used for the three requests of one fetch and then wiped; the longest TTL costs
// nothing and spares a second token request if a fetch is slow.
constexpr std::string_view token_ttl_seconds = "21600";

void wipe(std::string& text) {
    OPENSSL_cleanse(text.data(), text.size());
    text.clear();
}

// Field values are never quoted: every string in this document but Code may be a secret.
std::string required_string(const json& document, const char* field) {
    const auto it = document.find(field);
    if (it == document.end()) {
        throw std::runtime_error(std::string("role credentials have no \"") + field + "\" field");
    }
    if (!it->is_string()) {
        throw std::runtime_error(std::string("role credentials field \"") + field + "\" is " +
                                 it->type_name() + ", expected a string");
    }
    auto value = it->get<std::string>();
    if (value.empty()) {
        throw std::runtime_error(std::string("role credentials field \"") + field + "\" is empty");
    }
    return value;
}

// Code is not secret, but it is server text: printable ASCII only, and short.
std::string printable(std::string_view text, std::size_t max = 40) {
    std::string result;
    for (const char c : text.substr(0, max)) {
        result += (c >= 0x20 && c < 0x7F) ? c : '?';
    }
    if (text.size() > max) {
        result += "...";
    }
    return result;
}

// IAM role names: 1 to 64 of A-Z a-z 0-9 and +=,.@_- . Checked before it becomes a path.
bool is_role_name(std::string_view text) {
    return !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               std::string_view("+=,.@_-").find(c) != std::string_view::npos;
    });
}

void replace_all(std::string& text, std::string_view secret, std::string_view with) {
    if (secret.empty()) {
        return;
    }
    for (auto at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + with.size())) {
        text.replace(at, secret.size(), with);
    }
}

probe_failure http_failure(std::string detail) {
    return probe_failure{probe_phase::http, failure_reason::http_error, std::move(detail)};
}

// A failed exchange as seen by the caller. A malformed answer's detail quotes the received
// bytes, which might be anything the server holds (a secret included): it is replaced by our
// own words. Timeouts, refusals and resets carry the system's text only, which is kept.
probe_failure exchange_failure(std::string_view step, const probe_failure& failure) {
    auto result = failure;
    if (failure.reason == failure_reason::http_error) {
        result.detail = std::string(step) + ": the answer is not valid HTTP";
    } else {
        result.detail = std::string(step) + ": " + failure.detail;
    }
    return result;
}

// One fetch: the three requests share the endpoint, the token and the deadline.
class imds_fetch {
public:
    imds_fetch(boost::asio::any_io_executor executor, http_endpoint endpoint, steady_time deadline)
        : executor_(std::move(executor)), endpoint_(std::move(endpoint)), deadline_(deadline) {}
    imds_fetch(const imds_fetch&) = delete;
    imds_fetch& operator=(const imds_fetch&) = delete;
    ~imds_fetch() { wipe(token_); }

    const std::string& token() const { return token_; }

    boost::asio::awaitable<credentials_result> run() {
        credentials_result result;
        // 1. The IMDSv2 token.
        {
            http_request request;
            request.method = "PUT";
            request.target = std::string(token_path);
            request.headers.push_back({std::string(ttl_header), std::string(token_ttl_seconds)});
            auto exchange = co_await send(std::move(request));
            if (exchange.failure) {
                result.failure = exchange_failure("IMDS token request", *exchange.failure);
                co_return result;
            }
            auto& response = *exchange.response;
            const auto token = trim(response.body);
            if (response.status == 403) {
                result.failure = http_failure(
                    "IMDS token request answered 403: the metadata service is turned off for "
                    "this instance");
            } else if (response.status != 200) {
                result.failure = http_failure("IMDS token request answered HTTP " +
                                              std::to_string(response.status));
            } else if (token.empty() || std::any_of(token.begin(), token.end(), [](char c) {
                           return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
                       })) {
                result.failure = http_failure("IMDS token request answered 200 without a token");
            } else {
                token_ = std::string(token);
            }
            wipe(response.body);
            if (result.failure) {
                co_return result;
            }
        }

        // 2. The role name: the first line of the list.
        std::string role;
        {
            auto exchange = co_await get(std::string(role_list_path));
            if (exchange.failure) {
                result.failure = exchange_failure("IMDS role name request", *exchange.failure);
                co_return result;
            }
            const auto& response = *exchange.response;
            if (response.status == 404) {
                result.failure = http_failure(
                    "no instance profile attached: IMDS answered 404 for "
                    "meta-data/iam/security-credentials/");
                co_return result;
            }
            if (response.status != 200) {
                result.failure = status_failure("IMDS role name request", response.status);
                co_return result;
            }
            const auto first_line =
                trim(std::string_view(response.body)
                         .substr(0, std::string_view(response.body).find('\n')));
            if (!is_role_name(first_line)) {
                result.failure =
                    http_failure("IMDS role name request: the answer is not an IAM role name");
                co_return result;
            }
            role = std::string(first_line);
        }

        // 3. The role's credentials.
        {
            auto exchange = co_await get(std::string(role_list_path) + role);
            if (exchange.failure) {
                result.failure = exchange_failure("IMDS credentials request for role " + role,
                                                  *exchange.failure);
                co_return result;
            }
            auto& response = *exchange.response;
            if (response.status == 404) {
                result.failure = http_failure("IMDS has no credentials for role " + role +
                                              " (404; the instance profile may have just changed)");
            } else if (response.status != 200) {
                result.failure =
                    status_failure("IMDS credentials request for role " + role, response.status);
            } else {
                try {
                    result.credentials = parse_role_credentials(response.body);
                } catch (const std::exception& e) {
                    result.failure =
                        http_failure("IMDS credentials for role " + role + ": " + e.what());
                }
            }
            wipe(response.body);
        }
        co_return result;
    }

private:
    probe_failure status_failure(std::string_view step, int status) const {
        auto detail = std::string(step) + " answered HTTP " + std::to_string(status);
        if (status == 401) {
            detail += " (the IMDS token was not accepted)";
        }
        return http_failure(std::move(detail));
    }

    boost::asio::awaitable<http_exchange> get(std::string target) {
        http_request request;
        request.target = std::move(target);
        request.headers.push_back({std::string(token_header), token_});
        co_return co_await send(std::move(request));
    }

    boost::asio::awaitable<http_exchange> send(http_request request) {
        co_return co_await send_http_request(executor_, endpoint_, std::move(request), deadline_);
    }

    boost::asio::any_io_executor executor_;
    http_endpoint endpoint_;
    steady_time deadline_;
    std::string token_;
};

bool still_valid(const aws_credentials& credentials, std::chrono::system_clock::time_point now,
                 std::chrono::seconds margin) {
    return credentials.expiration && *credentials.expiration - margin > now;
}

bool not_expired(const aws_credentials& credentials, std::chrono::system_clock::time_point now) {
    return credentials.expiration && *credentials.expiration > now;
}

void wipe(std::optional<aws_credentials>& credentials) {
    if (credentials) {
        wipe(credentials->secret_access_key);
        wipe(credentials->session_token);
        credentials.reset();
    }
}

void scrub(probe_failure& failure, const aws_credentials& credentials) {
    replace_all(failure.detail, credentials.secret_access_key, "<secret>");
    replace_all(failure.detail, credentials.session_token, "<session-token>");
    replace_all(failure.detail, credentials.access_key_id, "<access-key-id>");
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_utc_timestamp(std::string_view text) {
    // YYYY-MM-DDTHH:MM:SS[.fraction]Z
    const auto digits = [&](std::size_t at, std::size_t count, int& value) {
        if (at + count > text.size()) {
            return false;
        }
        value = 0;
        for (std::size_t i = at; i < at + count; ++i) {
            if (text[i] < '0' || text[i] > '9') {
                return false;
            }
            value = value * 10 + (text[i] - '0');
        }
        return true;
    };
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (text.size() < 20 || !digits(0, 4, year) || text[4] != '-' || !digits(5, 2, month) ||
        text[7] != '-' || !digits(8, 2, day) || (text[10] != 'T' && text[10] != 't') ||
        !digits(11, 2, hour) || text[13] != ':' || !digits(14, 2, minute) || text[16] != ':' ||
        !digits(17, 2, second)) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    std::chrono::nanoseconds fraction{0};
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        const auto start = pos;
        long long scale = 100'000'000;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
            fraction += std::chrono::nanoseconds((text[pos] - '0') * scale);
            scale /= 10;
            ++pos;
        }
        if (pos == start) {
            return std::nullopt;
        }
    }
    if (pos + 1 != text.size() || (text[pos] != 'Z' && text[pos] != 'z')) {
        return std::nullopt;
    }
    using namespace std::chrono;
    const year_month_day date{std::chrono::year{year}, std::chrono::month{unsigned(month)},
                              std::chrono::day{unsigned(day)}};
    if (!date.ok() || hour > 23 || minute > 59 || second > 59) {
        return std::nullopt;
    }
    const auto time = sys_days{date} + hours{hour} + minutes{minute} + seconds{second};
    return time_point_cast<system_clock::duration>(time + fraction);
}

aws_credentials parse_role_credentials(std::string_view json_text) {
    json document;
    try {
        document = json::parse(json_text);
    } catch (const json::parse_error& e) {
        // nlohmann's message quotes the text it last read, which may be a secret: only the
        // place is reported.
        throw std::runtime_error("role credentials are not valid JSON (syntax error at byte " +
                                 std::to_string(e.byte) + ")");
    }
    if (!document.is_object()) {
        throw std::runtime_error(std::string("role credentials are ") + document.type_name() +
                                 ", expected a JSON object");
    }
    if (const auto code = document.find("Code"); code != document.end()) {
        if (!code->is_string()) {
            throw std::runtime_error(std::string("role credentials field \"Code\" is ") +
                                     code->type_name() + ", expected a string");
        }
        const auto& text = code->get_ref<const std::string&>();
        if (text != "Success") {
            throw std::runtime_error("IMDS reports the role credentials as unavailable: Code \"" +
                                     printable(text) + "\"");
        }
    }
    aws_credentials credentials;
    credentials.access_key_id = required_string(document, "AccessKeyId");
    credentials.secret_access_key = required_string(document, "SecretAccessKey");
    credentials.session_token = required_string(document, "Token");
    const auto expiration = required_string(document, "Expiration");
    credentials.expiration = parse_utc_timestamp(expiration);
    if (!credentials.expiration) {
        throw std::runtime_error(
            "role credentials field \"Expiration\" is not a UTC time like "
            "2026-12-03T22:10:00Z");
    }
    // The parsed document's copy of the secret cannot be reached for wiping; these can.
    if (auto secret = document.find("SecretAccessKey"); secret != document.end()) {
        wipe(secret->get_ref<std::string&>());
    }
    return credentials;
}

imds_credentials_provider::imds_credentials_provider(std::string imds_endpoint,
                                                     std::chrono::milliseconds timeout,
                                                     std::chrono::seconds refresh_margin)
    : endpoint_(std::move(imds_endpoint)), timeout_(timeout), refresh_margin_(refresh_margin) {}

boost::asio::awaitable<credentials_result> imds_credentials_provider::get(
    boost::asio::any_io_executor executor, std::chrono::system_clock::time_point now) {
    if (cached_ && still_valid(*cached_, now, refresh_margin_)) {
        co_return credentials_result{cached_, std::nullopt};
    }

    credentials_result result;
    std::string error;
    if (auto endpoint = parse_http_endpoint(endpoint_, &error)) {
        imds_fetch fetch(executor, std::move(*endpoint),
                         std::chrono::steady_clock::now() + timeout_);
        try {
            result = co_await fetch.run();
        } catch (const std::exception& e) {
            // Not a network failure (those are data): memory exhaustion and the like.
            result.failure = probe_failure{probe_phase::http, failure_reason::other,
                                           std::string("internal error: ") + e.what()};
        }
        if (result.failure) {
            replace_all(result.failure->detail, fetch.token(), "<imds-token>");
        }
    } else {
        result.failure = probe_failure{probe_phase::connect, failure_reason::other,
                                       "IMDS endpoint is not usable: " + error};
    }

    if (result.credentials) {
        wipe(cached_);
        cached_ = result.credentials;
        co_return result;
    }
    // Whatever the server echoed, no credential we hold or held appears in the text.
    if (cached_ && result.failure) {
        scrub(*result.failure, *cached_);
        if (not_expired(*cached_, now)) {
            result.credentials = cached_;
        }
    }
    co_return result;
}

imds_credentials_provider::~imds_credentials_provider() {
    wipe(cached_);
}

void imds_credentials_provider::invalidate() {
    wipe(cached_);
}

}  // namespace ssm_doctor
