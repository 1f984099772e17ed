// SPDX-License-Identifier: Apache-2.0
// DNS wire format for the resolver probe: encode one recursive A or AAAA query, decode the answer.
//
// The decoder trusts nothing in the message: every read is bounds-checked, compression pointers
// must point backwards and may be followed a few times only, and any fault is returned as text
// naming what was wrong and at which offset. Only the header, the question and the answer section
// are read; authority and additional records are not needed to tell whether a name resolved.
#pragma once

#include <utility>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "probes/address.hpp"

namespace ssm_doctor {

enum class dns_record_type : std::uint16_t { a = 1, cname = 5, aaaa = 28 };

std::string_view to_string(dns_record_type type);

// Response codes of RFC 1035 section 4.1.1 that the probe tells apart.
inline constexpr int dns_rcode_noerror = 0;
inline constexpr int dns_rcode_formerr = 1;
inline constexpr int dns_rcode_servfail = 2;
inline constexpr int dns_rcode_nxdomain = 3;
inline constexpr int dns_rcode_notimp = 4;
inline constexpr int dns_rcode_refused = 5;

// "noerror", "servfail", ... or "rcode N" for codes without a name here.
std::string dns_rcode_name(int rcode);

// A query id from the kernel's random source, so that an off-path sender cannot guess it.
std::uint16_t random_query_id();

// The name as the decoder reports names: lower case, no trailing dot, bytes other than printable
// ASCII (and '.' or '\' inside a label) written as \DDD.
std::string normalize_dns_name(std::string_view name);

// A standard query (RD set, one question, class IN). nullopt, with the reason in `error`, when the
// name cannot be encoded: empty, an empty label, a label over 63 bytes, or over 255 bytes in all.
std::optional<std::vector<std::uint8_t>> build_dns_query(std::string_view name,
                                                         dns_record_type type, std::uint16_t id,
                                                         std::string* error);

// The id of a message, or nullopt when it is shorter than a header.
std::optional<std::uint16_t> dns_message_id(std::span<const std::uint8_t> message);

enum class dns_parse_status {
    ok,         // an answer to our question
    not_ours,   // another id or another question: a stray packet, to be ignored
    malformed,  // claims to answer our question but cannot be read
};

struct dns_response {
    std::uint16_t id = 0;
    int rcode = 0;
    bool truncated = false;            // TC: the server cut the answer to fit UDP
    bool recursion_available = false;  // RA: a server that does not recurse answers REFUSED often
    int answer_count = 0;              // records in the answer section, of any type
    // Addresses of the asked type owned by the name or by a target of its CNAME chain, in the
    // order of the answer section.
    std::vector<ip_address> addresses;
    std::vector<std::string> cname_chain;  // the targets followed from the asked name, in order
};

struct dns_parse_result {
    dns_parse_status status = dns_parse_status::malformed;
    dns_response response;  // filled when status is ok
    std::string error;      // why not ok, with the offset where reading stopped
};

// Decodes `message` as the answer to the query `id` for `name` and `type`.
dns_parse_result parse_dns_response(std::span<const std::uint8_t> message, std::uint16_t id,
                                    std::string_view name, dns_record_type type);

}  // namespace ssm_doctor
