// SPDX-License-Identifier: Apache-2.0
// The instance metadata service: IMDSv2 token, identity document (region), VPC CIDR blocks.
#pragma once

#include <utility>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "probes/address.hpp"
#include "probes/deadline.hpp"
#include "probes/failure.hpp"

namespace ssm_doctor {

struct imds_observation {
    bool reachable = false;       // some request got an HTTP answer
    bool token_accepted = false;  // IMDSv2: the token PUT succeeded and was used
    std::optional<std::string> region;
    std::optional<std::string> instance_id;
    std::optional<std::string> mac;
    std::vector<cidr_block> vpc_cidrs;
    // Whether each list was read (for IPv6 a 404 counts: the VPC has no IPv6 blocks). Without
    // its family's list, an address cannot be placed inside or outside the VPC.
    bool vpc_ipv4_known = false;
    bool vpc_ipv6_known = false;
    std::optional<probe_failure> failure;  // what stopped the probe before it had the region
    std::vector<std::string> notes;        // partial data ("vpc-ipv4-cidr-blocks: 404")
    std::chrono::milliseconds elapsed{0};
};

struct identity_document {
    std::string region;
    std::string instance_id;
};

// Parses the JSON of /latest/dynamic/instance-identity/document; throws std::runtime_error
// naming the missing or mistyped field, or the place of a JSON syntax error.
identity_document parse_identity_document(std::string_view json_text);

// One block per line as IMDS returns vpc-ipv4-cidr-blocks; lines that are not blocks are
// reported in `bad_lines` (1-based line numbers) and skipped.
std::vector<cidr_block> parse_cidr_lines(std::string_view text, std::vector<int>* bad_lines);

struct imds_options {
    std::string endpoint = "http://169.254.169.254";  // http://host[:port], no path
    std::chrono::milliseconds timeout{1000};          // for the whole probe
};

// Token first (PUT, TTL 60 s); when the token request gets an HTTP error other than 403, falls
// back to IMDSv1 GETs and says so in notes. Ends by min(now + timeout, deadline).
boost::asio::awaitable<imds_observation> probe_imds(boost::asio::any_io_executor executor,
                                                    imds_options options, steady_time deadline);

}  // namespace ssm_doctor
