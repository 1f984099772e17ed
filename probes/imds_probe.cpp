// SPDX-License-Identifier: Apache-2.0
// The IMDS probe: token, identity document, VPC CIDR blocks, in as few requests as possible.
#include "probes/imds_probe.hpp"

#include <utility>

#include <algorithm>
#include <exception>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "probes/http_client.hpp"
#include "probes/imds_protocol.hpp"

namespace ssm_doctor {
namespace {

using json = nlohmann::json;
using imds::token_header;
using imds::token_path;
using imds::trim;
using imds::ttl_header;

constexpr std::string_view document_path = "/latest/dynamic/instance-identity/document";
constexpr std::string_view mac_path = "/latest/meta-data/mac";
constexpr std::string_view macs_path = "/latest/meta-data/network/interfaces/macs/";
// One run needs the token for a second or two; a short life limits the harm of a leak.
constexpr std::string_view token_ttl_seconds = "60";

std::string_view json_type_name(const json& value) {
    // nlohmann calls integers "number" and so do we; people do not care about the width.
    return value.type_name();
}

std::string required_string(const json& document, const char* field) {
    const auto it = document.find(field);
    if (it == document.end()) {
        throw std::runtime_error(std::string("identity document has no \"") + field + "\" field");
    }
    if (!it->is_string()) {
        throw std::runtime_error(std::string("identity document field \"") + field + "\" is " +
                                 std::string(json_type_name(*it)) + ", expected a string");
    }
    auto value = it->get<std::string>();
    if (value.empty()) {
        throw std::runtime_error(std::string("identity document field \"") + field + "\" is empty");
    }
    return value;
}

// The agent's own rule for a region (FACTS: ^[A-Za-z0-9-]+$); anything else would end up in
// host names.
bool is_region_name(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-';
    });
}

// "0e:1a:2b:3c:4d:5e": checked before it becomes part of a request path.
bool is_mac(std::string_view text) {
    if (text.size() != 17) {
        return false;
    }
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (i % 3 == 2 ? c != ':' : !hex) {
            return false;
        }
    }
    return true;
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

// The requests of one probe run: endpoint, token (when IMDSv2 works) and the common deadline.
class imds_session {
public:
    imds_session(boost::asio::any_io_executor executor, http_endpoint endpoint,
                 steady_time deadline)
        : executor_(std::move(executor)), endpoint_(std::move(endpoint)), deadline_(deadline) {}

    boost::asio::awaitable<http_exchange> put_token() {
        http_request request;
        request.method = "PUT";
        request.target = std::string(token_path);
        request.headers.push_back({std::string(ttl_header), std::string(token_ttl_seconds)});
        co_return co_await send(std::move(request));
    }

    boost::asio::awaitable<http_exchange> get(std::string target) {
        http_request request;
        request.target = std::move(target);
        if (token_) {
            request.headers.push_back({std::string(token_header), *token_});
        }
        co_return co_await send(std::move(request));
    }

    void use_token(std::string token) { token_ = std::move(token); }
    const std::optional<std::string>& token() const { return token_; }

private:
    boost::asio::awaitable<http_exchange> send(http_request request) {
        co_return co_await send_http_request(executor_, endpoint_, std::move(request), deadline_);
    }

    boost::asio::any_io_executor executor_;
    http_endpoint endpoint_;
    steady_time deadline_;
    std::optional<std::string> token_;
};

std::string status_text(const http_response& response) {
    auto text = std::to_string(response.status);
    if (!response.reason.empty()) {
        text += " " + response.reason;
    }
    return text;
}

// A failed exchange as a note: "meta-data/mac: timeout (no complete answer ...)".
std::string exchange_note(std::string_view what, const probe_failure& failure) {
    return std::string(what) + ": " + std::string(to_string(failure.reason)) + " (" +
           failure.detail + ")";
}

// Reads one list of CIDR blocks into the observation; notes what went wrong, if anything.
// Returns whether the list is known: read, or missing where missing is normal.
boost::asio::awaitable<bool> read_cidrs(imds_session& session, imds_observation& observation,
                                        std::string_view list, bool missing_is_normal) {
    const auto target = std::string(macs_path) + *observation.mac + "/" + std::string(list);
    const auto exchange = co_await session.get(target);
    if (exchange.failure) {
        observation.notes.push_back(exchange_note(list, *exchange.failure));
        co_return false;
    }
    const auto& response = *exchange.response;
    if (response.status != 200) {
        if (missing_is_normal && response.status == 404) {
            co_return true;
        }
        observation.notes.push_back(std::string(list) + ": HTTP " + status_text(response));
        co_return false;
    }
    std::vector<int> bad_lines;
    const auto blocks = parse_cidr_lines(response.body, &bad_lines);
    observation.vpc_cidrs.insert(observation.vpc_cidrs.end(), blocks.begin(), blocks.end());
    for (const int line : bad_lines) {
        observation.notes.push_back(std::string(list) + ": line " + std::to_string(line) +
                                    " is not a CIDR block");
    }
    if (blocks.empty() && bad_lines.empty()) {
        observation.notes.push_back(std::string(list) + ": empty list");
    }
    // A skipped line may hold the block an address is in: only a whole list places addresses.
    co_return !blocks.empty() && bad_lines.empty();
}

// The steps; returns early at the first failure that leaves nothing more to learn.
boost::asio::awaitable<void> run_probe(imds_session& session, imds_observation& observation) {
    // 1. The token. 403 means IMDS is off; other HTTP errors mean IMDSv1 only.
    {
        const auto exchange = co_await session.put_token();
        if (exchange.failure) {
            observation.failure = *exchange.failure;
            observation.failure->detail = "token request: " + exchange.failure->detail;
            co_return;
        }
        observation.reachable = true;
        const auto& response = *exchange.response;
        const auto token = trim(response.body);
        if (response.status == 403) {
            observation.failure =
                probe_failure{probe_phase::http, failure_reason::http_error,
                              "IMDS answered 403: the metadata service is turned off for this "
                              "instance"};
            co_return;
        }
        if (response.status != 200) {
            observation.notes.push_back("IMDSv2 token request answered " +
                                        std::to_string(response.status) + "; using IMDSv1");
        } else if (token.empty() || std::any_of(token.begin(), token.end(), [](char c) {
                       return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
                   })) {
            observation.notes.push_back(
                "IMDSv2 token request answered 200 without a usable token; using IMDSv1");
        } else {
            session.use_token(std::string(token));
            observation.token_accepted = true;
        }
    }

    // 2. The identity document: region and instance id.
    {
        const auto exchange = co_await session.get(std::string(document_path));
        if (exchange.failure) {
            observation.failure = *exchange.failure;
            observation.failure->detail = "identity document: " + exchange.failure->detail;
            co_return;  // the connection failed after working once: do not insist
        }
        const auto& response = *exchange.response;
        if (response.status != 200) {
            observation.failure =
                probe_failure{probe_phase::http, failure_reason::http_error,
                              "identity document: IMDS answered " + status_text(response) +
                                  (response.status == 401 ? " (the token was not accepted)" : "")};
        } else {
            try {
                const auto document = parse_identity_document(response.body);
                observation.region = document.region;
                observation.instance_id = document.instance_id;
            } catch (const std::exception& e) {
                observation.notes.push_back(e.what());
                observation.failure =
                    probe_failure{probe_phase::http, failure_reason::http_error, e.what()};
            }
        }
    }

    // 3. The interface's MAC, then its VPC's blocks. Only notes from here on: the region is
    // what matters, the blocks refine the verdict (endpoint addresses inside the VPC).
    {
        const auto exchange = co_await session.get(std::string(mac_path));
        if (exchange.failure) {
            observation.notes.push_back(exchange_note("meta-data/mac", *exchange.failure));
            co_return;
        }
        const auto& response = *exchange.response;
        const auto mac = trim(response.body);
        if (response.status != 200) {
            observation.notes.push_back("meta-data/mac: HTTP " + status_text(response));
            co_return;
        }
        if (!is_mac(mac)) {
            observation.notes.push_back("meta-data/mac: not a MAC address: '" +
                                        std::string(mac.substr(0, 40)) + "'");
            co_return;
        }
        observation.mac = std::string(mac);
    }
    observation.vpc_ipv4_known =
        co_await read_cidrs(session, observation, "vpc-ipv4-cidr-blocks", false);
    observation.vpc_ipv6_known =
        co_await read_cidrs(session, observation, "vpc-ipv6-cidr-blocks", true);
}

}  // namespace

identity_document parse_identity_document(std::string_view json_text) {
    json document;
    try {
        document = json::parse(json_text);
    } catch (const json::parse_error& e) {
        // what() starts with "[json.exception.parse_error.101] "; keep the part for people.
        std::string message = e.what();
        if (const auto bracket = message.find("] "); bracket != std::string::npos) {
            message.erase(0, bracket + 2);
        }
        throw std::runtime_error("identity document is not valid JSON (byte " +
                                 std::to_string(e.byte) + "): " + message);
    }
    if (!document.is_object()) {
        throw std::runtime_error("identity document is " + std::string(json_type_name(document)) +
                                 ", expected a JSON object");
    }
    identity_document result;
    result.region = required_string(document, "region");
    if (!is_region_name(result.region)) {
        throw std::runtime_error("identity document field \"region\" is not a region name: '" +
                                 result.region.substr(0, 40) + "'");
    }
    result.instance_id = required_string(document, "instanceId");
    return result;
}

std::vector<cidr_block> parse_cidr_lines(std::string_view text, std::vector<int>* bad_lines) {
    std::vector<cidr_block> blocks;
    int number = 0;
    while (!text.empty()) {
        ++number;
        const auto lf = text.find('\n');
        const auto line = trim(text.substr(0, lf));
        text.remove_prefix(lf == std::string_view::npos ? text.size() : lf + 1);
        if (line.empty()) {
            continue;
        }
        if (auto block = parse_cidr(line)) {
            blocks.push_back(*block);
        } else if (bad_lines != nullptr) {
            bad_lines->push_back(number);
        }
    }
    return blocks;
}

boost::asio::awaitable<imds_observation> probe_imds(boost::asio::any_io_executor executor,
                                                    imds_options options, steady_time deadline) {
    const auto start = std::chrono::steady_clock::now();
    const auto end = std::min(start + options.timeout, deadline);
    imds_observation observation;

    std::string error;
    if (auto endpoint = parse_http_endpoint(options.endpoint, &error)) {
        imds_session session(executor, std::move(*endpoint), end);
        try {
            co_await run_probe(session, observation);
        } catch (const std::exception& e) {
            // Not a network failure (those are data): memory exhaustion and the like.
            observation.failure = probe_failure{probe_phase::http, failure_reason::other,
                                                std::string("internal error: ") + e.what()};
        }
        // The token is a credential: whatever a server echoed back, it leaves no trace here.
        if (const auto& token = session.token()) {
            for (auto& note : observation.notes) {
                replace_all(note, *token, "<token>");
            }
            if (observation.failure) {
                replace_all(observation.failure->detail, *token, "<token>");
            }
        }
    } else {
        observation.failure = probe_failure{probe_phase::connect, failure_reason::other,
                                            "IMDS endpoint is not usable: " + error};
    }
    observation.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    co_return observation;
}

}  // namespace ssm_doctor
