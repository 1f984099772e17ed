// SPDX-License-Identifier: Apache-2.0
// AWS Signature Version 4 for HTTP requests (Authorization header form, and query form).
#pragma once

// How the canonical request is built, stated once (it is what the AWS test vectors check):
// - URI: `path` is taken as sent and every byte outside A-Z a-z 0-9 - _ . ~ and '/' is
//   percent-encoded (upper-case hex). A path that is already encoded is thus encoded a second
//   time, which is what every service but S3 expects. With `normalize_path`, "." and ".."
//   segments are resolved and empty segments (double slashes) dropped first.
// - Query: each key and value is percent-decoded, then encoded as above ('/' too); pairs are
//   sorted by encoded key, then encoded value. A key without '=' gets an empty value.
// - Headers: names lower-cased and sorted; values trimmed, inner runs of white space (folded
//   lines included) collapsed to one space; repeated names joined with ',' in request order.
// The signer owns Authorization, X-Amz-Date and X-Amz-Security-Token (and X-Amz-Content-Sha256
// when it adds it): copies of them in the request are ignored and replaced, never signed twice.
//
// Caller mistakes (no Host header, no access key, an expiry out of range) throw
// std::invalid_argument; the text never contains a key or a token.

#include <utility>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ssm_doctor {

struct aws_credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // empty for long-term keys
    std::optional<std::chrono::system_clock::time_point> expiration;
};

struct signable_request {
    std::string method;  // "POST"
    std::string path;    // as sent, e.g. "/" (percent-encoded already where needed)
    std::string query;   // raw query string without '?', may be empty
    std::vector<std::pair<std::string, std::string>> headers;  // must include Host
    std::string body;
};

struct signing_scope {
    std::string region;          // "us-east-1"
    std::string service;         // "logs"
    bool normalize_path = true;  // false only for S3, never for logs
    // Whether the session token is part of the signature. Nearly every service wants it signed;
    // a few (and two of the AWS test vectors) add it only after signing.
    bool sign_session_token = true;
    // Adds and signs X-Amz-Content-Sha256 (the payload's hash), as S3 requires. Header form only.
    bool add_content_sha256 = false;
};

// The intermediate results, exposed so tests can compare them with the AWS test vectors.
struct signature_parts {
    std::string canonical_request;
    std::string string_to_sign;
    std::string signature;      // lower-case hex
    std::string authorization;  // the full Authorization header value
};

signature_parts compute_signature(const signable_request& request, const aws_credentials& creds,
                                  const signing_scope& scope,
                                  std::chrono::system_clock::time_point now);

// Adds X-Amz-Date, X-Amz-Security-Token (when the credentials have a token) and Authorization
// to `request.headers`. Never logs anything; the secret key never leaves this function.
void sign_request(signable_request& request, const aws_credentials& creds,
                  const signing_scope& scope, std::chrono::system_clock::time_point now);

// ---- Query-string signing (presigned requests) ----------------------------------------------

struct query_signature_parts {
    std::string canonical_request;
    std::string string_to_sign;
    std::string signature;  // lower-case hex
    // The request's own query followed by X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
    // X-Amz-SignedHeaders, X-Amz-Expires, X-Amz-Security-Token (with a token) and
    // X-Amz-Signature: what goes after '?' in the request line.
    std::string query;
};

// Signs with query parameters instead of an Authorization header; the URL stays valid for
// `expires` (1 s to 7 days). Every header of the request is signed; the payload hash is the
// body's SHA-256.
query_signature_parts compute_query_signature(const signable_request& request,
                                              const aws_credentials& creds,
                                              const signing_scope& scope,
                                              std::chrono::system_clock::time_point now,
                                              std::chrono::seconds expires);

// ---- Pieces, exposed for tests and for callers that need the same rules ---------------------

// "20150830T123600Z" (UTC, whole seconds).
std::string format_amz_date(std::chrono::system_clock::time_point time);

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// SigV4 percent-encoding: A-Z a-z 0-9 - _ . ~ stay, '/' stays unless `encode_slash`, every other
// byte becomes %XX.
std::string uri_encode(std::string_view text, bool encode_slash);

std::string canonical_uri(std::string_view path, bool normalize);
std::string canonical_query(std::string_view query);

}  // namespace ssm_doctor
