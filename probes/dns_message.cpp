// SPDX-License-Identifier: Apache-2.0
// Encoding of A and AAAA queries and bounds-checked decoding of their answers (RFC 1035).
#include "probes/dns_message.hpp"

#include <algorithm>
#include <cerrno>
#include <random>
#include <unordered_set>

#include <sys/random.h>

namespace ssm_doctor {
namespace {

constexpr std::size_t header_size = 12;
constexpr std::size_t max_name_wire_size = 255;
constexpr std::size_t max_label_size = 63;
// Real servers compress a name through one or two pointers; more hints at a crafted message.
constexpr int max_compression_jumps = 16;
// CNAME chains longer than this are rejected by resolvers too (BIND stops at 16 as well).
constexpr int max_cname_chain = 16;
constexpr std::uint16_t class_in = 1;
constexpr std::uint16_t flag_qr = 0x8000;
constexpr std::uint16_t flag_tc = 0x0200;
constexpr std::uint16_t flag_rd = 0x0100;
constexpr std::uint16_t flag_ra = 0x0080;

std::string offset_text(std::size_t offset) {
    return "offset " + std::to_string(offset);
}

char lower_ascii(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Appends one label in the presentation form used throughout: lower case, odd bytes as \DDD.
void append_label(std::string& out, std::span<const std::uint8_t> label) {
    for (const std::uint8_t byte : label) {
        const char c = static_cast<char>(byte);
        if (byte <= 0x20 || byte >= 0x7F || c == '.' || c == '\\') {
            const auto three = std::to_string(1000 + byte).substr(1);
            out += '\\';
            out += three;
        } else {
            out += lower_ascii(c);
        }
    }
}

// A cursor over the message that refuses to read past its end.
class wire_reader {
public:
    explicit wire_reader(std::span<const std::uint8_t> message) : message_(message) {}

    std::size_t position() const { return position_; }
    void seek(std::size_t position) { position_ = position; }
    bool has(std::size_t count) const {
        return position_ <= message_.size() && message_.size() - position_ >= count;
    }

    std::uint16_t u16() {
        const auto value =
            static_cast<std::uint16_t>((message_[position_] << 8) | message_[position_ + 1]);
        position_ += 2;
        return value;
    }
    std::uint32_t u32() {
        const std::uint32_t high = u16();
        return (high << 16) | u16();
    }

private:
    std::span<const std::uint8_t> message_;
    std::size_t position_ = 0;
};

// Decodes the possibly compressed name at `start`. Returns the offset just past the name where
// it is written (not where pointers led), or nullopt with the reason in `error`.
std::optional<std::size_t> read_name(std::span<const std::uint8_t> message, std::size_t start,
                                     std::string& name, std::string& error) {
    name.clear();
    std::size_t position = start;
    std::optional<std::size_t> end_in_place;
    std::size_t wire_size = 1;  // the root label
    int jumps = 0;
    for (;;) {
        if (position >= message.size()) {
            error = "name at " + offset_text(start) + " runs past the end of the message";
            return std::nullopt;
        }
        const std::uint8_t length = message[position];
        if ((length & 0xC0) == 0xC0) {
            if (position + 1 >= message.size()) {
                error = "compression pointer at " + offset_text(position) + " is cut short";
                return std::nullopt;
            }
            const std::size_t target = (std::size_t{length & 0x3Fu} << 8) | message[position + 1];
            // Pointers refer to an earlier occurrence (RFC 1035 4.1.4); one that does not
            // would let a message loop, so it is refused outright.
            if (target >= position) {
                error = "compression pointer at " + offset_text(position) + " points to " +
                        offset_text(target) + ", not backwards (a loop)";
                return std::nullopt;
            }
            if (++jumps > max_compression_jumps) {
                error = "name at " + offset_text(start) + " follows more than " +
                        std::to_string(max_compression_jumps) + " compression pointers";
                return std::nullopt;
            }
            if (!end_in_place) {
                end_in_place = position + 2;
            }
            position = target;
            continue;
        }
        if ((length & 0xC0) != 0) {
            error = "label at " + offset_text(position) + " has unsupported type bits";
            return std::nullopt;
        }
        if (length == 0) {
            return end_in_place ? *end_in_place : position + 1;
        }
        if (message.size() - position - 1 < length) {
            error = "label at " + offset_text(position) + " runs past the end of the message";
            return std::nullopt;
        }
        wire_size += length + 1u;
        if (wire_size > max_name_wire_size) {
            error = "name at " + offset_text(start) + " is longer than 255 bytes";
            return std::nullopt;
        }
        if (!name.empty()) {
            name += '.';
        }
        append_label(name, message.subspan(position + 1, length));
        position += length + 1u;
    }
}

struct answer_record {
    std::string owner;
    dns_record_type type;
    std::optional<ip_address> address;  // A and AAAA
    std::string target;                 // CNAME
};

ip_address address_from(std::span<const std::uint8_t> rdata) {
    if (rdata.size() == 4) {
        boost::asio::ip::address_v4::bytes_type bytes{};
        std::copy(rdata.begin(), rdata.end(), bytes.begin());
        return boost::asio::ip::address_v4(bytes);
    }
    boost::asio::ip::address_v6::bytes_type bytes{};
    std::copy(rdata.begin(), rdata.end(), bytes.begin());
    return boost::asio::ip::address_v6(bytes);
}

dns_parse_result fail(dns_parse_status status, std::string error) {
    dns_parse_result result;
    result.status = status;
    result.error = std::move(error);
    return result;
}

}  // namespace

std::string_view to_string(dns_record_type type) {
    switch (type) {
        case dns_record_type::a:
            return "A";
        case dns_record_type::cname:
            return "CNAME";
        case dns_record_type::aaaa:
            return "AAAA";
    }
    return "?";
}

std::string dns_rcode_name(int rcode) {
    switch (rcode) {
        case dns_rcode_noerror:
            return "noerror";
        case dns_rcode_formerr:
            return "formerr";
        case dns_rcode_servfail:
            return "servfail";
        case dns_rcode_nxdomain:
            return "nxdomain";
        case dns_rcode_notimp:
            return "notimp";
        case dns_rcode_refused:
            return "refused";
        default:
            return "rcode " + std::to_string(rcode);
    }
}

std::uint16_t random_query_id() {
    std::uint16_t id = 0;
    ssize_t got = -1;
    do {
        got = getrandom(&id, sizeof id, 0);
    } while (got < 0 && errno == EINTR);
    if (got == static_cast<ssize_t>(sizeof id)) {
        return id;
    }
    // Kernels before 3.17 lack getrandom; random_device reads /dev/urandom there.
    std::random_device device;
    return static_cast<std::uint16_t>(device());
}

std::string normalize_dns_name(std::string_view name) {
    if (!name.empty() && name.back() == '.') {
        name.remove_suffix(1);
    }
    std::string out;
    while (!name.empty()) {
        const auto dot = name.find('.');
        const auto label = name.substr(0, dot);
        if (!out.empty()) {
            out += '.';
        }
        append_label(out,
                     std::span(reinterpret_cast<const std::uint8_t*>(label.data()), label.size()));
        if (dot == std::string_view::npos) {
            break;
        }
        name.remove_prefix(dot + 1);
        if (name.empty()) {
            out += '.';  // an empty last label stays visible rather than vanishing
        }
    }
    return out;
}

std::optional<std::vector<std::uint8_t>> build_dns_query(std::string_view name,
                                                         dns_record_type type, std::uint16_t id,
                                                         std::string* error) {
    const auto refuse = [&](std::string why) -> std::optional<std::vector<std::uint8_t>> {
        if (error) {
            *error = "cannot ask for \"" + std::string(name) + "\": " + std::move(why);
        }
        return std::nullopt;
    };
    std::string_view rest = name;
    if (!rest.empty() && rest.back() == '.') {
        rest.remove_suffix(1);
    }
    if (rest.empty()) {
        return refuse("the name is empty");
    }
    std::vector<std::uint8_t> query = {
        static_cast<std::uint8_t>(id >> 8),
        static_cast<std::uint8_t>(id & 0xFF),
        static_cast<std::uint8_t>(flag_rd >> 8),
        static_cast<std::uint8_t>(flag_rd & 0xFF),
        0,
        1,  // QDCOUNT
        0,
        0,  // ANCOUNT
        0,
        0,  // NSCOUNT
        0,
        0,  // ARCOUNT
    };
    for (;;) {
        const auto dot = rest.find('.');
        const auto label = rest.substr(0, dot);
        if (label.empty()) {
            return refuse("it has an empty label");
        }
        if (label.size() > max_label_size) {
            return refuse("a label is longer than 63 bytes");
        }
        query.push_back(static_cast<std::uint8_t>(label.size()));
        query.insert(query.end(), label.begin(), label.end());
        if (dot == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(dot + 1);
    }
    query.push_back(0);
    if (query.size() - header_size > max_name_wire_size) {
        return refuse("it is longer than 255 bytes in wire form");
    }
    const auto qtype = static_cast<std::uint16_t>(type);
    query.push_back(static_cast<std::uint8_t>(qtype >> 8));
    query.push_back(static_cast<std::uint8_t>(qtype & 0xFF));
    query.push_back(0);
    query.push_back(class_in);
    return query;
}

std::optional<std::uint16_t> dns_message_id(std::span<const std::uint8_t> message) {
    if (message.size() < header_size) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>((message[0] << 8) | message[1]);
}

dns_parse_result parse_dns_response(std::span<const std::uint8_t> message, std::uint16_t id,
                                    std::string_view name, dns_record_type type) {
    // Header. A packet that is not a response to our id is somebody else's, not an error.
    if (message.size() < header_size) {
        return fail(dns_parse_status::not_ours,
                    std::to_string(message.size()) + " bytes, shorter than a DNS header");
    }
    wire_reader reader(message);
    const std::uint16_t got_id = reader.u16();
    const std::uint16_t flags = reader.u16();
    const std::uint16_t qdcount = reader.u16();
    const std::uint16_t ancount = reader.u16();
    reader.u32();  // NSCOUNT and ARCOUNT: those sections are not read
    if (got_id != id) {
        return fail(dns_parse_status::not_ours,
                    "id " + std::to_string(got_id) + " instead of " + std::to_string(id));
    }
    if ((flags & flag_qr) == 0) {
        return fail(dns_parse_status::not_ours, "a query, not a response (QR clear)");
    }
    const int opcode = (flags >> 11) & 0x0F;
    if (opcode != 0) {
        return fail(dns_parse_status::malformed,
                    "opcode " + std::to_string(opcode) + " in the answer to a standard query");
    }

    dns_parse_result result;
    dns_response& response = result.response;
    response.id = got_id;
    response.rcode = flags & 0x0F;
    response.truncated = (flags & flag_tc) != 0;
    response.recursion_available = (flags & flag_ra) != 0;

    // Question: it must echo ours, or the packet answers another query (RFC 5452 section 9.1).
    // Some servers leave it out of an error answer; that is accepted for errors only.
    const std::string wanted = normalize_dns_name(name);
    if (qdcount > 1) {
        return fail(dns_parse_status::malformed,
                    std::to_string(qdcount) + " questions in the answer to one question");
    }
    if (qdcount == 0 && response.rcode == dns_rcode_noerror) {
        return fail(dns_parse_status::malformed, "no question section in a NOERROR answer");
    }
    std::string error;
    std::string owner;
    if (qdcount == 1) {
        const auto after = read_name(message, reader.position(), owner, error);
        if (!after) {
            return fail(dns_parse_status::malformed, "question: " + error);
        }
        reader.seek(*after);
        if (!reader.has(4)) {
            return fail(dns_parse_status::malformed,
                        "question cut short at " + offset_text(reader.position()));
        }
        const std::uint16_t qtype = reader.u16();
        const std::uint16_t qclass = reader.u16();
        if (owner != wanted || qtype != static_cast<std::uint16_t>(type) || qclass != class_in) {
            return fail(dns_parse_status::not_ours, "question is for " + owner + " type " +
                                                        std::to_string(qtype) + ", not " + wanted +
                                                        " " + std::string(to_string(type)));
        }
    }

    // Answer section. A truncated (TC) answer may end in the middle of a record; the records
    // before the cut are still good, so reading stops there instead of failing.
    std::vector<answer_record> records;
    for (int index = 0; index < ancount; ++index) {
        const auto where = "answer " + std::to_string(index + 1) + ": ";
        const auto stop = [&](std::string why) {
            return fail(dns_parse_status::malformed, where + why);
        };
        const auto after = read_name(message, reader.position(), owner, error);
        if (!after || message.size() - *after < 10) {
            if (response.truncated) {
                break;
            }
            return stop(after ? "record header cut short at " + offset_text(*after) : error);
        }
        reader.seek(*after);
        const std::uint16_t rtype = reader.u16();
        const std::uint16_t rclass = reader.u16();
        reader.u32();  // TTL
        const std::uint16_t rdlength = reader.u16();
        const std::size_t rdata_start = reader.position();
        if (!reader.has(rdlength)) {
            if (response.truncated) {
                break;
            }
            return stop("data of " + std::to_string(rdlength) + " bytes at " +
                        offset_text(rdata_start) + " runs past the end of the message");
        }
        reader.seek(rdata_start + rdlength);
        ++response.answer_count;
        if (rclass != class_in) {
            continue;
        }
        const auto rdata = message.subspan(rdata_start, rdlength);
        if (rtype == static_cast<std::uint16_t>(dns_record_type::a) ||
            rtype == static_cast<std::uint16_t>(dns_record_type::aaaa)) {
            const bool is_a = rtype == static_cast<std::uint16_t>(dns_record_type::a);
            const std::size_t expected = is_a ? 4 : 16;
            if (rdlength != expected) {
                return stop(std::string(is_a ? "A" : "AAAA") + " record of " +
                            std::to_string(rdlength) + " bytes instead of " +
                            std::to_string(expected));
            }
            records.push_back({owner,
                               is_a ? dns_record_type::a : dns_record_type::aaaa,
                               address_from(rdata),
                               {}});
        } else if (rtype == static_cast<std::uint16_t>(dns_record_type::cname)) {
            std::string target;
            const auto target_end = read_name(message, rdata_start, target, error);
            if (!target_end) {
                return stop("CNAME target: " + error);
            }
            if (*target_end != rdata_start + rdlength) {
                return stop("CNAME target does not fill its " + std::to_string(rdlength) +
                            " data bytes");
            }
            records.push_back({owner, dns_record_type::cname, std::nullopt, std::move(target)});
        }
    }

    // Follow the CNAME chain from the asked name; only the names on it may own our addresses,
    // so unrelated records a server adds cannot pass for the answer.
    std::unordered_set<std::string> chain = {wanted};
    std::string current = wanted;
    for (;;) {
        const answer_record* link = nullptr;
        for (const auto& record : records) {
            if (record.type == dns_record_type::cname && record.owner == current) {
                link = &record;
                break;
            }
        }
        if (link == nullptr) {
            break;
        }
        if (chain.count(link->target) != 0) {
            return fail(dns_parse_status::malformed, "CNAME chain loops back to " + link->target);
        }
        if (response.cname_chain.size() >= static_cast<std::size_t>(max_cname_chain)) {
            return fail(dns_parse_status::malformed,
                        "CNAME chain longer than " + std::to_string(max_cname_chain));
        }
        response.cname_chain.push_back(link->target);
        chain.insert(link->target);
        current = link->target;
    }
    for (const auto& record : records) {
        if (record.type == type && chain.count(record.owner) != 0) {
            response.addresses.push_back(*record.address);
        }
    }
    result.status = dns_parse_status::ok;
    return result;
}

}  // namespace ssm_doctor
