// SPDX-License-Identifier: Apache-2.0
// AWS Signature Version 4: canonical request, string to sign, signing key and signature.
#include "agent/cloudwatch/sigv4.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace ssm_doctor {
namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view hex_digits = "0123456789abcdef";        // signatures, hashes
constexpr std::string_view upper_hex_digits = "0123456789ABCDEF";  // percent-encoding

using digest = std::array<unsigned char, 32>;

// A derived key or HMAC output: wiped when it goes out of scope, whatever the path.
struct wiped_digest {
    digest bytes{};
    wiped_digest() = default;
    wiped_digest(const wiped_digest&) = delete;
    wiped_digest& operator=(const wiped_digest&) = delete;
    ~wiped_digest() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

// A string holding key material ("AWS4" + secret), wiped on destruction.
struct wiped_string {
    std::string text;
    // Reserved first, so no reallocation leaves an unwiped copy behind.
    wiped_string(std::string_view prefix, std::string_view secret) {
        text.reserve(prefix.size() + secret.size());
        text.append(prefix).append(secret);
    }
    wiped_string(const wiped_string&) = delete;
    wiped_string& operator=(const wiped_string&) = delete;
    ~wiped_string() { OPENSSL_cleanse(text.data(), text.size()); }
};

std::string to_hex(const unsigned char* data, std::size_t size) {
    std::string text;
    text.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        text += hex_digits[data[i] >> 4];
        text += hex_digits[data[i] & 0x0F];
    }
    return text;
}

void hmac_sha256(const unsigned char* key, std::size_t key_size, std::string_view data,
                 wiped_digest& out) {
    unsigned int length = 0;
    if (HMAC(EVP_sha256(), key, static_cast<int>(key_size),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.bytes.data(),
             &length) == nullptr ||
        length != out.bytes.size()) {
        throw std::runtime_error("HMAC-SHA256 failed in OpenSSL");
    }
}

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string to_lower(std::string_view text) {
    std::string result(text);
    std::transform(result.begin(), result.end(), result.begin(), lower);
    return result;
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// Trims and collapses each run of white space (folded continuation lines included) to one space.
std::string canonical_header_value(std::string_view value) {
    std::string result;
    bool pending_space = false;
    for (const char c : value) {
        if (is_space(c)) {
            pending_space = !result.empty();
            continue;
        }
        if (pending_space) {
            result += ' ';
            pending_space = false;
        }
        result += c;
    }
    return result;
}

bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// %XX sequences become bytes; a '%' not followed by two hex digits stays as it is.
std::string percent_decode(std::string_view text) {
    std::string result;
    result.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size()) {
            const int high = hex_value(text[i + 1]);
            const int low = hex_value(text[i + 2]);
            if (high >= 0 && low >= 0) {
                result += static_cast<char>(high * 16 + low);
                i += 2;
                continue;
            }
        }
        result += text[i];
    }
    return result;
}

// Resolves "." and ".." and drops empty segments, as RFC 3986 section 5.2.4 does for "." and
// ".."; a path that ended in '/', "." or ".." keeps a trailing slash.
std::string normalize_path(std::string_view path) {
    std::vector<std::string_view> segments;
    bool trailing_slash = false;
    std::size_t pos = 0;
    while (pos <= path.size()) {
        const auto slash = path.find('/', pos);
        const auto end = slash == std::string_view::npos ? path.size() : slash;
        const auto segment = path.substr(pos, end - pos);
        const bool last = slash == std::string_view::npos;
        if (segment == "..") {
            if (!segments.empty()) {
                segments.pop_back();
            }
            trailing_slash = last;
        } else if (segment == ".") {
            trailing_slash = last;
        } else if (segment.empty()) {
            trailing_slash = last;
        } else {
            segments.push_back(segment);
            trailing_slash = false;
        }
        pos = end + 1;
    }
    std::string result;
    for (const auto segment : segments) {
        result += '/';
        result += segment;
    }
    if (result.empty() || trailing_slash) {
        result += '/';
    }
    return result;
}

// The headers to sign: (lower-case name, canonical value), sorted by name, repeats joined.
using header_map = std::map<std::string, std::string>;

bool is_owned_header(const std::string& lower_name) {
    return lower_name == "authorization" || lower_name == "x-amz-date" ||
           lower_name == "x-amz-security-token" || lower_name == "x-amz-content-sha256";
}

header_map collect_headers(const signable_request& request) {
    header_map headers;
    for (const auto& [name, value] : request.headers) {
        auto key = to_lower(name);
        if (is_owned_header(key)) {
            continue;
        }
        auto [it, inserted] = headers.try_emplace(std::move(key), canonical_header_value(value));
        if (!inserted) {
            it->second += ',';
            it->second += canonical_header_value(value);
        }
    }
    if (headers.find("host") == headers.end()) {
        throw std::invalid_argument("the request to sign has no Host header");
    }
    return headers;
}

struct canonical_headers {
    std::string block;         // "name:value\n" per header
    std::string signed_names;  // "host;x-amz-date"
};

canonical_headers render_headers(const header_map& headers) {
    canonical_headers result;
    for (const auto& [name, value] : headers) {
        result.block += name + ":" + value + "\n";
        if (!result.signed_names.empty()) {
            result.signed_names += ';';
        }
        result.signed_names += name;
    }
    return result;
}

std::string date_stamp(std::string_view amz_date) {
    return std::string(amz_date.substr(0, 8));
}

std::string credential_scope(std::string_view amz_date, const signing_scope& scope) {
    return date_stamp(amz_date) + "/" + scope.region + "/" + scope.service + "/aws4_request";
}

void check_inputs(const aws_credentials& creds, const signing_scope& scope) {
    if (creds.access_key_id.empty() || creds.secret_access_key.empty()) {
        throw std::invalid_argument("credentials to sign with have no access key id or secret");
    }
    if (scope.region.empty() || scope.service.empty()) {
        throw std::invalid_argument("signing scope needs a region and a service");
    }
}

std::string string_to_sign(std::string_view amz_date, const std::string& scope_text,
                           std::string_view canonical_request) {
    return std::string(algorithm) + "\n" + std::string(amz_date) + "\n" + scope_text + "\n" +
           sha256_hex(canonical_request);
}

// HMAC chain: "AWS4" + secret -> date -> region -> service -> "aws4_request" -> signature.
std::string sign(const aws_credentials& creds, const signing_scope& scope,
                 std::string_view amz_date, std::string_view to_sign) {
    wiped_string first_key("AWS4", creds.secret_access_key);
    wiped_digest date_key;
    wiped_digest region_key;
    wiped_digest service_key;
    wiped_digest signing_key;
    wiped_digest signature;
    hmac_sha256(reinterpret_cast<const unsigned char*>(first_key.text.data()),
                first_key.text.size(), date_stamp(amz_date), date_key);
    hmac_sha256(date_key.bytes.data(), date_key.bytes.size(), scope.region, region_key);
    hmac_sha256(region_key.bytes.data(), region_key.bytes.size(), scope.service, service_key);
    hmac_sha256(service_key.bytes.data(), service_key.bytes.size(), "aws4_request", signing_key);
    hmac_sha256(signing_key.bytes.data(), signing_key.bytes.size(), to_sign, signature);
    return to_hex(signature.bytes.data(), signature.bytes.size());
}

void remove_owned_headers(signable_request& request) {
    auto& headers = request.headers;
    headers.erase(
        std::remove_if(headers.begin(), headers.end(),
                       [](const auto& header) { return is_owned_header(to_lower(header.first)); }),
        headers.end());
}

}  // namespace

std::string format_amz_date(std::chrono::system_clock::time_point time) {
    using namespace std::chrono;
    const auto seconds = floor<std::chrono::seconds>(time);
    const auto day = floor<days>(seconds);
    const year_month_day date{day};
    const hh_mm_ss clock{seconds - day};
    char text[32];
    std::snprintf(text, sizeof text, "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<int>(clock.hours().count()),
                  static_cast<int>(clock.minutes().count()),
                  static_cast<int>(clock.seconds().count()));
    return text;
}

std::string sha256_hex(std::string_view data) {
    digest hash{};
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), hash.data(), &length, EVP_sha256(), nullptr) != 1 ||
        length != hash.size()) {
        throw std::runtime_error("SHA-256 failed in OpenSSL");
    }
    return to_hex(hash.data(), hash.size());
}

std::string uri_encode(std::string_view text, bool encode_slash) {
    std::string result;
    result.reserve(text.size());
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (is_unreserved(byte) || (c == '/' && !encode_slash)) {
            result += c;
        } else {
            result += '%';
            result += upper_hex_digits[byte >> 4];
            result += upper_hex_digits[byte & 0x0F];
        }
    }
    return result;
}

std::string canonical_uri(std::string_view path, bool normalize) {
    if (path.empty()) {
        return "/";
    }
    return uri_encode(normalize ? std::string_view(normalize_path(path)) : path, false);
}

std::string canonical_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> pairs;
    std::size_t pos = 0;
    while (pos <= query.size()) {
        const auto amp = query.find('&', pos);
        const auto end = amp == std::string_view::npos ? query.size() : amp;
        const auto item = query.substr(pos, end - pos);
        if (!item.empty()) {
            const auto equals = item.find('=');
            const auto key = item.substr(0, equals);
            const auto value =
                equals == std::string_view::npos ? std::string_view() : item.substr(equals + 1);
            pairs.emplace_back(uri_encode(percent_decode(key), true),
                               uri_encode(percent_decode(value), true));
        }
        pos = end + 1;
    }
    std::sort(pairs.begin(), pairs.end());
    std::string result;
    for (const auto& [key, value] : pairs) {
        if (!result.empty()) {
            result += '&';
        }
        result += key + "=" + value;
    }
    return result;
}

signature_parts compute_signature(const signable_request& request, const aws_credentials& creds,
                                  const signing_scope& scope,
                                  std::chrono::system_clock::time_point now) {
    check_inputs(creds, scope);
    const auto amz_date = format_amz_date(now);
    const auto payload_hash = sha256_hex(request.body);

    auto headers = collect_headers(request);
    headers["x-amz-date"] = amz_date;
    if (!creds.session_token.empty() && scope.sign_session_token) {
        headers["x-amz-security-token"] = canonical_header_value(creds.session_token);
    }
    if (scope.add_content_sha256) {
        headers["x-amz-content-sha256"] = payload_hash;
    }
    const auto rendered = render_headers(headers);

    signature_parts parts;
    parts.canonical_request = request.method + "\n" +
                              canonical_uri(request.path, scope.normalize_path) + "\n" +
                              canonical_query(request.query) + "\n" + rendered.block + "\n" +
                              rendered.signed_names + "\n" + payload_hash;
    const auto scope_text = credential_scope(amz_date, scope);
    parts.string_to_sign = string_to_sign(amz_date, scope_text, parts.canonical_request);
    parts.signature = sign(creds, scope, amz_date, parts.string_to_sign);
    parts.authorization = std::string(algorithm) + " Credential=" + creds.access_key_id + "/" +
                          scope_text + ", SignedHeaders=" + rendered.signed_names +
                          ", Signature=" + parts.signature;
    return parts;
}

void sign_request(signable_request& request, const aws_credentials& creds,
                  const signing_scope& scope, std::chrono::system_clock::time_point now) {
    const auto parts = compute_signature(request, creds, scope, now);
    remove_owned_headers(request);
    request.headers.emplace_back("X-Amz-Date", format_amz_date(now));
    if (!creds.session_token.empty()) {
        request.headers.emplace_back("X-Amz-Security-Token", creds.session_token);
    }
    if (scope.add_content_sha256) {
        request.headers.emplace_back("X-Amz-Content-Sha256", sha256_hex(request.body));
    }
    request.headers.emplace_back("Authorization", parts.authorization);
}

query_signature_parts compute_query_signature(const signable_request& request,
                                              const aws_credentials& creds,
                                              const signing_scope& scope,
                                              std::chrono::system_clock::time_point now,
                                              std::chrono::seconds expires) {
    check_inputs(creds, scope);
    if (expires < std::chrono::seconds(1) || expires > std::chrono::hours(24 * 7)) {
        throw std::invalid_argument("a presigned request expires after 1 s to 7 days");
    }
    const auto amz_date = format_amz_date(now);
    const auto scope_text = credential_scope(amz_date, scope);
    const auto rendered = render_headers(collect_headers(request));

    // The signing parameters, in the order they are appended to the request's own query.
    std::string added = "X-Amz-Algorithm=" + std::string(algorithm) + "&X-Amz-Credential=" +
                        uri_encode(creds.access_key_id + "/" + scope_text, true) +
                        "&X-Amz-Date=" + amz_date +
                        "&X-Amz-SignedHeaders=" + uri_encode(rendered.signed_names, true) +
                        "&X-Amz-Expires=" + std::to_string(expires.count());
    const auto token_parameter =
        creds.session_token.empty()
            ? std::string()
            : "&X-Amz-Security-Token=" + uri_encode(creds.session_token, true);
    const auto join = [&](const std::string& rest) {
        return request.query.empty() ? rest : request.query + "&" + rest;
    };
    const auto signed_query = join(scope.sign_session_token ? added + token_parameter : added);

    query_signature_parts parts;
    parts.canonical_request = request.method + "\n" +
                              canonical_uri(request.path, scope.normalize_path) + "\n" +
                              canonical_query(signed_query) + "\n" + rendered.block + "\n" +
                              rendered.signed_names + "\n" + sha256_hex(request.body);
    parts.string_to_sign = string_to_sign(amz_date, scope_text, parts.canonical_request);
    parts.signature = sign(creds, scope, amz_date, parts.string_to_sign);
    parts.query = join(added + token_parameter + "&X-Amz-Signature=" + parts.signature);
    return parts;
}

}  // namespace ssm_doctor
