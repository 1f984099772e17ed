// SPDX-License-Identifier: Apache-2.0
// HTTP/1.1 request framing, a bounded response parser and the exchange over one TCP connection.
#include "probes/http_client.hpp"

#include <utility>

#include <array>
#include <charconv>
#include <cstdint>
#include <exception>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace ssm_doctor {
namespace {

using boost::asio::ip::tcp;

// A chunk-size line ("1a2b;name=value") longer than this is an attack or garbage, not framing.
constexpr std::size_t max_chunk_line_bytes = 4096;

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

// RFC 9110 tchar: the characters allowed in methods and header names.
bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
    if (text.empty()) {
        return false;
    }
    for (char c : text) {
        if (!is_token_char(c)) {
            return false;
        }
    }
    return true;
}

bool is_control(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

std::string_view trim_ows(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

// Received bytes quoted in an error message: printable, short, never raw control characters.
std::string quote(std::string_view text, std::size_t max = 60) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "'";
    for (std::size_t i = 0; i < text.size() && i < max; ++i) {
        const auto u = static_cast<unsigned char>(text[i]);
        if (u >= 0x20 && u < 0x7F && u != '\\' && u != '\'') {
            out += text[i];
        } else {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 0xF];
        }
    }
    if (text.size() > max) {
        out += "...";
    }
    out += "'";
    return out;
}

struct line {
    std::string_view text;  // without the LF and an optional CR before it
    std::size_t next = 0;   // offset just after the LF
};

// The line starting at `pos`, or nullopt when its LF has not arrived yet. Bare LF is accepted.
std::optional<line> next_line(std::string_view bytes, std::size_t pos) {
    const auto lf = bytes.find('\n', pos);
    if (lf == std::string_view::npos) {
        return std::nullopt;
    }
    auto text = bytes.substr(pos, lf - pos);
    if (!text.empty() && text.back() == '\r') {
        text.remove_suffix(1);
    }
    return line{text, lf + 1};
}

http_parse_result failed(std::string message) {
    http_parse_result result;
    result.status = http_parse_status::error;
    result.error = std::move(message);
    return result;
}

http_parse_result incomplete() {
    return http_parse_result{};
}

// "HTTP/1.1 200 OK" -> status and reason; the reason may be missing or empty.
std::optional<std::string> parse_status_line(std::string_view text, http_response& response) {
    if (text.size() < 12 || text.substr(0, 5) != "HTTP/" || !is_digit(text[5]) || text[6] != '.' ||
        !is_digit(text[7]) || text[8] != ' ') {
        return "malformed status line " + quote(text);
    }
    if (text[5] != '1') {
        return "unsupported HTTP version in status line " + quote(text);
    }
    const auto code = text.substr(9, 3);
    if (!is_digit(code[0]) || !is_digit(code[1]) || !is_digit(code[2]) ||
        (text.size() > 12 && text[12] != ' ')) {
        return "malformed status code in status line " + quote(text);
    }
    response.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    if (response.status < 100 || response.status > 599) {
        return "status code " + std::string(code) + " is out of range";
    }
    response.reason = text.size() > 13 ? std::string(text.substr(13)) : std::string();
    for (char c : response.reason) {
        if (is_control(c) && c != '\t') {
            return "control character in the reason phrase of " + quote(text);
        }
    }
    return std::nullopt;
}

std::optional<std::string> parse_header_line(std::string_view text, int line_number,
                                             http_headers& headers) {
    const auto where = " (header line " + std::to_string(line_number) + ")";
    if (text.front() == ' ' || text.front() == '\t') {
        return "folded header continuation is not supported" + where;
    }
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) {
        return "header line without a colon " + quote(text) + where;
    }
    const auto name = text.substr(0, colon);
    if (!is_token(name)) {
        return "invalid header name " + quote(name) + where;
    }
    const auto value = trim_ows(text.substr(colon + 1));
    for (char c : value) {
        if (is_control(c) && c != '\t') {
            return "control character in the value of header " + quote(name) + where;
        }
    }
    headers.push_back(http_header{std::string(name), std::string(value)});
    return std::nullopt;
}

struct head_result {
    http_parse_status status = http_parse_status::incomplete;
    std::size_t end = 0;  // offset of the body
    std::string error;
};

// One header block (status line, header lines, empty line) starting at `pos`. The limit counts
// from the start of the response so that interim responses cannot grow it without bound.
head_result parse_head(std::string_view bytes, std::size_t pos, bool at_eof,
                       const http_limits& limits, http_response& response) {
    head_result result;
    const auto fail = [&](std::string message) {
        result.status = http_parse_status::error;
        result.error = std::move(message);
        return result;
    };
    // Garbage is recognised from its first bytes, without waiting for a line end.
    const std::string_view prefix = "HTTP/";
    const auto start = bytes.substr(pos, prefix.size());
    if (start != prefix.substr(0, start.size())) {
        auto first = bytes.substr(pos);
        first = first.substr(0, first.find('\n'));
        if (!first.empty() && first.back() == '\r') {
            first.remove_suffix(1);
        }
        return fail("the answer does not start with an HTTP status line: " + quote(first));
    }
    response = http_response{};
    int line_number = 0;
    while (true) {
        const auto next = next_line(bytes, pos);
        if ((next ? next->next : bytes.size()) > limits.max_header_bytes) {
            return fail("header block is larger than " + std::to_string(limits.max_header_bytes) +
                        " bytes");
        }
        if (!next) {
            if (at_eof) {
                return fail(bytes.empty() ? "connection closed without an answer"
                                          : "connection closed inside the header block after " +
                                                std::to_string(bytes.size()) + " bytes");
            }
            return result;  // incomplete
        }
        pos = next->next;
        if (line_number == 0) {
            if (auto error = parse_status_line(next->text, response)) {
                return fail(std::move(*error));
            }
        } else if (next->text.empty()) {
            result.status = http_parse_status::complete;
            result.end = pos;
            return result;
        } else if (auto error = parse_header_line(next->text, line_number, response.headers)) {
            return fail(std::move(*error));
        }
        ++line_number;
    }
}

// Decimal, digits only, no sign, no overflow.
std::optional<std::uint64_t> parse_decimal(std::string_view text) {
    std::uint64_t value = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || err != std::errc{} || end != text.data() + text.size() ||
        !is_digit(text.front())) {
        return std::nullopt;
    }
    return value;
}

// Content-Length may repeat (several headers, or "5, 5") but only with one value.
std::optional<std::string> content_length(const http_headers& headers,
                                          std::optional<std::uint64_t>& length) {
    for (const auto& header : headers) {
        if (!iequals(header.name, "Content-Length")) {
            continue;
        }
        std::string_view rest = header.value;
        while (true) {
            const auto comma = rest.find(',');
            const auto item = trim_ows(rest.substr(0, comma));
            const auto value = parse_decimal(item);
            if (!value) {
                return "invalid Content-Length " + quote(header.value);
            }
            if (length && *length != *value) {
                return "conflicting Content-Length values";
            }
            length = value;
            if (comma == std::string_view::npos) {
                break;
            }
            rest.remove_prefix(comma + 1);
        }
    }
    return std::nullopt;
}

// True when the last transfer coding (over all Transfer-Encoding headers) is chunked.
bool is_chunked(const http_headers& headers, bool& has_transfer_encoding) {
    std::string_view last;
    for (const auto& header : headers) {
        if (!iequals(header.name, "Transfer-Encoding")) {
            continue;
        }
        has_transfer_encoding = true;
        std::string_view value = header.value;
        const auto comma = value.rfind(',');
        last = trim_ows(comma == std::string_view::npos ? value : value.substr(comma + 1));
    }
    return iequals(last, "chunked");
}

// Walks chunked framing from `pos`; appends the data to `body` when it is given. With body null
// it only checks framing and completeness, so incomplete answers are never copied.
http_parse_result walk_chunks(std::string_view bytes, std::size_t pos, bool at_eof,
                              const http_limits& limits, std::string* body) {
    const auto start = pos;
    std::uint64_t data_bytes = 0;
    const auto framing_allowance =
        static_cast<std::uint64_t>(limits.max_body_bytes) + limits.max_header_bytes;
    const auto truncated = [&](std::string_view where) {
        return at_eof ? failed("connection closed inside the chunked body (" + std::string(where) +
                               ")")
                      : incomplete();
    };
    while (true) {
        if ((pos - start) - data_bytes > framing_allowance) {
            return failed("chunk framing exceeds " + std::to_string(framing_allowance) + " bytes");
        }
        const auto size_line = next_line(bytes, pos);
        if (!size_line) {
            if (bytes.size() - pos > max_chunk_line_bytes) {
                return failed("chunk size line is longer than " +
                              std::to_string(max_chunk_line_bytes) + " bytes");
            }
            return truncated("chunk size line");
        }
        if (size_line->text.size() > max_chunk_line_bytes) {
            return failed("chunk size line is longer than " + std::to_string(max_chunk_line_bytes) +
                          " bytes");
        }
        const auto hex = trim_ows(size_line->text.substr(0, size_line->text.find(';')));
        std::uint64_t size = 0;
        const auto [end, err] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
        if (hex.empty() || hex.size() > 16 || err != std::errc{} ||
            end != hex.data() + hex.size()) {
            return failed("invalid chunk size " + quote(size_line->text) + " at byte " +
                          std::to_string(pos));
        }
        if (size > limits.max_body_bytes - data_bytes) {
            return failed("chunked body is larger than " + std::to_string(limits.max_body_bytes) +
                          " bytes");
        }
        pos = size_line->next;
        if (size == 0) {
            break;
        }
        if (bytes.size() - pos < size) {
            return truncated("chunk data");
        }
        if (body != nullptr) {
            body->append(bytes.substr(pos, size));
        }
        pos += size;
        data_bytes += size;
        // The data must be followed by CRLF (a bare LF is tolerated, as in header lines).
        if (bytes.size() - pos >= 1 && bytes[pos] == '\n') {
            pos += 1;
        } else if (bytes.size() - pos >= 2 && bytes.substr(pos, 2) == "\r\n") {
            pos += 2;
        } else if (bytes.size() - pos == 0 || (bytes.size() - pos == 1 && bytes[pos] == '\r')) {
            return truncated("chunk data end");
        } else {
            return failed("chunk data is not followed by CRLF at byte " + std::to_string(pos));
        }
    }
    // Trailer fields are read past and dropped; they count against the header limit.
    const auto trailer_start = pos;
    while (true) {
        const auto trailer = next_line(bytes, pos);
        const auto used = (trailer ? trailer->next : bytes.size()) - trailer_start;
        if (used > limits.max_header_bytes) {
            return failed("chunked trailer is larger than " +
                          std::to_string(limits.max_header_bytes) + " bytes");
        }
        if (!trailer) {
            return truncated("trailer");
        }
        pos = trailer->next;
        if (trailer->text.empty()) {
            break;
        }
    }
    http_parse_result result;
    result.status = http_parse_status::complete;
    result.consumed = pos;
    return result;
}

std::string to_string(const tcp::endpoint& endpoint) {
    const auto address = endpoint.address();
    const auto text = address.to_string();
    return (address.is_v6() ? "[" + text + "]" : text) + ":" + std::to_string(endpoint.port());
}

failure_reason reason_for(const boost::system::error_code& ec) {
    namespace error = boost::asio::error;
    if (ec == error::connection_refused) {
        return failure_reason::refused;
    }
    if (ec == error::network_unreachable || ec == error::host_unreachable) {
        return failure_reason::unreachable;
    }
    if (ec == error::connection_reset || ec == error::eof || ec == error::broken_pipe ||
        ec == error::connection_aborted) {
        return failure_reason::reset;
    }
    return failure_reason::other;
}

// The steps of one exchange. Each step: if the deadline passed or the step failed, record the
// phase and stop. The guard closes the socket at the deadline, which ends any pending step.
boost::asio::awaitable<http_exchange> exchange(boost::asio::any_io_executor executor,
                                               const http_endpoint& endpoint,
                                               const http_request& request, steady_time deadline,
                                               const http_limits& limits) {
    namespace asio = boost::asio;
    http_exchange result;
    const auto fail = [&](probe_phase phase, failure_reason reason, std::string detail) {
        result.failure = probe_failure{phase, reason, std::move(detail)};
        return result;
    };

    std::string error;
    const auto wire = serialize_http_request(request, endpoint, &error);
    if (!wire) {
        co_return fail(probe_phase::http, failure_reason::other, "request not sent: " + error);
    }

    tcp::resolver resolver(executor);
    tcp::socket socket(executor);
    deadline_guard guard(executor, deadline, [&resolver, &socket] {
        resolver.cancel();
        boost::system::error_code ignored;
        socket.close(ignored);
    });
    // A timer handler can run between two steps, so each new step checks first.
    const auto expired = [&] {
        return guard.expired() || std::chrono::steady_clock::now() >= deadline;
    };
    boost::system::error_code ec;

    // 1. Addresses: a literal as is, a name through getaddrinfo.
    std::vector<tcp::endpoint> addresses;
    const auto literal = asio::ip::make_address(endpoint.host, ec);
    if (!ec) {
        addresses.emplace_back(literal, endpoint.port);
    } else {
        ec.clear();
        const auto found =
            co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port),
                                            asio::redirect_error(asio::use_awaitable, ec));
        if (expired()) {
            co_return fail(probe_phase::dns, failure_reason::dns_timeout,
                           "no address for " + endpoint.host + " before the deadline");
        }
        if (ec == asio::error::host_not_found) {
            co_return fail(probe_phase::dns, failure_reason::nxdomain,
                           endpoint.host + ": " + ec.message());
        }
        if (ec) {
            co_return fail(probe_phase::dns, failure_reason::dns_error,
                           endpoint.host + ": " + ec.message());
        }
        for (const auto& entry : found) {
            addresses.push_back(entry.endpoint());
        }
        if (addresses.empty()) {
            co_return fail(probe_phase::dns, failure_reason::no_address,
                           endpoint.host + " has no address");
        }
    }

    // 2. Connect, trying the addresses in order.
    std::string tried;
    bool connected = false;
    for (const auto& address : addresses) {
        if (expired()) {
            break;
        }
        ec.clear();
        co_await socket.async_connect(address, asio::redirect_error(asio::use_awaitable, ec));
        if (!ec && !expired()) {
            connected = true;
            break;
        }
        boost::system::error_code ignored;
        socket.close(ignored);
        tried += (tried.empty() ? "" : "; ") + to_string(address) + ": " + ec.message();
    }
    if (!connected) {
        if (expired()) {
            co_return fail(probe_phase::connect, failure_reason::timeout,
                           "no connection to " + endpoint.authority() + " before the deadline");
        }
        co_return fail(probe_phase::connect, reason_for(ec), "connect to " + tried);
    }
    const auto peer = to_string(socket.remote_endpoint(ec));

    // 3. Send the request.
    co_await asio::async_write(socket, asio::buffer(*wire),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (expired()) {
        co_return fail(probe_phase::http, failure_reason::timeout,
                       "request to " + peer + " not sent before the deadline");
    }
    if (ec) {
        co_return fail(probe_phase::http, reason_for(ec),
                       "sending the request to " + peer + ": " + ec.message());
    }

    // 4. Read until the parser has a whole response; it bounds what is kept.
    const http_parse_options options{limits, request.method == "HEAD"};
    std::string received;
    std::array<char, 16 * 1024> buffer{};
    while (true) {
        ec.clear();
        const auto n = co_await socket.async_read_some(
            asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
        if (expired()) {
            co_return fail(probe_phase::http, failure_reason::timeout,
                           "no complete answer from " + peer + " before the deadline (" +
                               std::to_string(received.size() + n) + " bytes received)");
        }
        const bool at_eof = ec == asio::error::eof;
        if (ec && !at_eof) {
            co_return fail(probe_phase::http, reason_for(ec),
                           "reading the answer from " + peer + ": " + ec.message());
        }
        received.append(buffer.data(), n);
        auto parsed = parse_http_response(received, at_eof, options);
        if (parsed.status == http_parse_status::complete) {
            result.response = std::move(parsed.response);
            co_return result;
        }
        if (parsed.status == http_parse_status::error) {
            co_return fail(probe_phase::http, failure_reason::http_error,
                           "answer from " + peer + ": " + parsed.error);
        }
        if (at_eof) {  // the parser never leaves an answer incomplete at EOF; stay safe anyway
            co_return fail(probe_phase::http, failure_reason::reset,
                           "connection to " + peer + " closed before the answer was complete");
        }
    }
}

}  // namespace

const std::string* find_header(const http_headers& headers, std::string_view name) {
    for (const auto& header : headers) {
        if (iequals(header.name, name)) {
            return &header.value;
        }
    }
    return nullptr;
}

std::string http_endpoint::authority() const {
    const bool v6 = host.find(':') != std::string::npos;
    auto text = v6 ? "[" + host + "]" : host;
    if (port != 80) {
        text += ":" + std::to_string(port);
    }
    return text;
}

std::optional<http_endpoint> parse_http_endpoint(std::string_view url, std::string* error) {
    const auto fail = [&](std::string message) -> std::optional<http_endpoint> {
        if (error != nullptr) {
            *error = std::move(message) + " in " + quote(url, 200);
        }
        return std::nullopt;
    };
    const std::string_view scheme = "http://";
    if (url.size() < scheme.size() || !iequals(url.substr(0, scheme.size()), scheme)) {
        return fail("not an http:// URL");
    }
    auto rest = url.substr(scheme.size());
    if (!rest.empty() && rest.back() == '/') {
        rest.remove_suffix(1);
    }
    if (rest.find_first_of("/?#@") != std::string_view::npos) {
        return fail("a path, query or user part is not allowed");
    }
    http_endpoint endpoint;
    std::string_view port_text;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) {
            return fail("unterminated IPv6 literal");
        }
        endpoint.host = std::string(rest.substr(1, close - 1));
        boost::system::error_code ec;
        boost::asio::ip::make_address_v6(endpoint.host, ec);
        if (ec) {
            return fail("invalid IPv6 address");
        }
        const auto after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return fail("unexpected text after the IPv6 literal");
            }
            port_text = after.substr(1);
            if (port_text.empty()) {
                return fail("empty port");
            }
        }
    } else {
        const auto colon = rest.find(':');
        if (colon != std::string_view::npos) {
            if (rest.find(':', colon + 1) != std::string_view::npos) {
                return fail("an IPv6 address must be in brackets");
            }
            port_text = rest.substr(colon + 1);
            if (port_text.empty()) {
                return fail("empty port");
            }
            rest = rest.substr(0, colon);
        }
        for (char c : rest) {
            if (!(is_token_char(c) && c != '%' && c != '\'')) {
                return fail("invalid character in the host name");
            }
        }
        endpoint.host = std::string(rest);
    }
    if (endpoint.host.empty()) {
        return fail("no host");
    }
    if (!port_text.empty()) {
        const auto port = parse_decimal(port_text);
        if (!port || *port == 0 || *port > 65535) {
            return fail("invalid port");
        }
        endpoint.port = static_cast<std::uint16_t>(*port);
    }
    return endpoint;
}

http_parse_result parse_http_response(std::string_view bytes, bool at_eof,
                                      const http_parse_options& options) {
    const auto& limits = options.limits;
    http_response response;
    std::size_t body_start = 0;
    // Skip interim 1xx answers (100 Continue, 103 Early Hints) to the final one.
    while (true) {
        auto head = parse_head(bytes, body_start, at_eof, limits, response);
        if (head.status == http_parse_status::error) {
            return failed(std::move(head.error));
        }
        if (head.status == http_parse_status::incomplete) {
            return incomplete();
        }
        body_start = head.end;
        if (response.status == 101) {
            return failed("unexpected 101 Switching Protocols");
        }
        if (response.status >= 200) {
            break;
        }
    }

    http_parse_result result;
    const auto complete = [&](std::size_t consumed) {
        result.status = http_parse_status::complete;
        result.consumed = consumed;
        result.response = std::move(response);
        return std::move(result);
    };
    const auto available = bytes.size() - body_start;

    if (options.head_request || response.status == 204 || response.status == 304) {
        return complete(body_start);
    }
    bool has_transfer_encoding = false;
    if (is_chunked(response.headers, has_transfer_encoding)) {
        auto walked = walk_chunks(bytes, body_start, at_eof, limits, nullptr);
        if (walked.status != http_parse_status::complete) {
            return walked;
        }
        walk_chunks(bytes, body_start, at_eof, limits, &response.body);
        return complete(walked.consumed);
    }
    std::optional<std::uint64_t> length;
    if (!has_transfer_encoding) {
        if (auto error = content_length(response.headers, length)) {
            return failed(std::move(*error));
        }
    }
    if (length) {
        if (*length > limits.max_body_bytes) {
            return failed("body of " + std::to_string(*length) + " bytes is larger than " +
                          std::to_string(limits.max_body_bytes) + " bytes");
        }
        if (available < *length) {
            return at_eof ? failed("body truncated: " + std::to_string(available) + " of " +
                                   std::to_string(*length) + " bytes before the connection closed")
                          : incomplete();
        }
        response.body = std::string(bytes.substr(body_start, *length));
        return complete(body_start + *length);
    }
    // No length: the body runs to the end of the connection.
    if (available > limits.max_body_bytes) {
        return failed("body is larger than " + std::to_string(limits.max_body_bytes) + " bytes");
    }
    if (!at_eof) {
        return incomplete();
    }
    response.body = std::string(bytes.substr(body_start));
    return complete(bytes.size());
}

std::optional<std::string> serialize_http_request(const http_request& request,
                                                  const http_endpoint& endpoint,
                                                  std::string* error) {
    const auto fail = [&](std::string message) -> std::optional<std::string> {
        if (error != nullptr) {
            *error = std::move(message);
        }
        return std::nullopt;
    };
    if (!is_token(request.method)) {
        return fail("invalid method " + quote(request.method));
    }
    if (request.target.empty() || request.target.front() != '/') {
        return fail("the target must start with '/'");
    }
    for (char c : request.target) {
        if (is_control(c) || c == ' ' || static_cast<unsigned char>(c) >= 0x80) {
            return fail("the target contains a space, control or non-ASCII character");
        }
    }
    std::string wire = request.method + " " + request.target + " HTTP/1.1\r\n";
    wire += "Host: " + endpoint.authority() + "\r\n";
    for (const auto& header : request.headers) {
        // Values are never quoted back: they may hold secrets (tokens).
        if (!is_token(header.name)) {
            return fail("invalid header name " + quote(header.name));
        }
        for (std::string_view own : {"Host", "Connection", "Content-Length", "Transfer-Encoding"}) {
            if (iequals(header.name, own)) {
                return fail("header " + header.name + " is set by the client");
            }
        }
        for (char c : header.value) {
            if (is_control(c) && c != '\t') {
                return fail("the value of header " + header.name + " contains a control character");
            }
        }
        wire += header.name + ": " + header.value + "\r\n";
    }
    wire += "Connection: close\r\n";
    const bool body_method =
        request.method == "POST" || request.method == "PUT" || request.method == "PATCH";
    if (!request.body.empty() || body_method) {
        wire += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
    }
    wire += "\r\n";
    wire += request.body;
    return wire;
}

boost::asio::awaitable<http_exchange> send_http_request(boost::asio::any_io_executor executor,
                                                        http_endpoint endpoint,
                                                        http_request request, steady_time deadline,
                                                        http_limits limits) {
    const auto start = std::chrono::steady_clock::now();
    http_exchange result;
    try {
        result = co_await exchange(executor, endpoint, request, deadline, limits);
    } catch (const std::exception& e) {
        // Only resource exhaustion and the like get here; I/O errors are codes.
        result.response.reset();
        result.failure = probe_failure{probe_phase::http, failure_reason::other,
                                       std::string("internal error: ") + e.what()};
    }
    result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    co_return result;
}

}  // namespace ssm_doctor
