// SPDX-License-Identifier: Apache-2.0
// Tests of the SigV4 signer: every case of the AWS test suite (tests/data/sigv4), then the rules.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/cloudwatch/credentials.hpp"
#include "agent/cloudwatch/sigv4.hpp"

using namespace ssm_doctor;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const fs::path suite_dir = fs::path(SSM_DOCTOR_TEST_DATA) / "sigv4" / "v4";

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + path.string());
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// A raw HTTP request as the suite writes it: LF line ends, header lines "Name:value", lines
// starting with white space continue the previous value, a blank line, then the body.
struct raw_request {
    std::string method;
    std::string path;
    std::string query;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

raw_request parse_raw_request(const std::string& text, const std::string& where) {
    raw_request request;
    const auto blank = text.find("\n\n");
    const std::string head = text.substr(0, blank);
    if (blank != std::string::npos) {
        request.body = text.substr(blank + 2);
    }
    std::istringstream lines(head);
    std::string line;
    if (!std::getline(lines, line)) {
        throw std::runtime_error(where + ": empty request");
    }
    // The target may hold spaces ("/example space/"): method and version are the outer words.
    const auto first_space = line.find(' ');
    const auto last_space = line.rfind(' ');
    if (first_space == std::string::npos || last_space <= first_space) {
        throw std::runtime_error(where + ": bad request line: " + line);
    }
    request.method = line.substr(0, first_space);
    const auto target = line.substr(first_space + 1, last_space - first_space - 1);
    const auto question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string::npos) {
        request.query = target.substr(question + 1);
    }
    while (std::getline(lines, line)) {
        if (line.empty()) {
            continue;
        }
        if (line.front() == ' ' || line.front() == '\t') {
            if (request.headers.empty()) {
                throw std::runtime_error(where + ": continuation line before any header");
            }
            request.headers.back().second += "\n" + line;
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string::npos) {
            throw std::runtime_error(where + ": header line without a colon: " + line);
        }
        request.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
    }
    return request;
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

// Header lists compared as multisets of (lower-case name, value): order is not signed.
std::vector<std::pair<std::string, std::string>> header_set(
    const std::vector<std::pair<std::string, std::string>>& headers) {
    std::vector<std::pair<std::string, std::string>> result;
    for (const auto& [name, value] : headers) {
        result.emplace_back(lower(name), value);
    }
    std::sort(result.begin(), result.end());
    return result;
}

struct suite_case {
    std::string name;
    raw_request request;
    aws_credentials credentials;
    signing_scope scope;
    std::chrono::system_clock::time_point now;
    std::chrono::seconds expires{0};
};

suite_case load_case(const fs::path& dir) {
    suite_case c;
    c.name = dir.filename().string();
    c.request = parse_raw_request(read_file(dir / "request.txt"), c.name + "/request.txt");
    const auto context = nlohmann::json::parse(read_file(dir / "context.json"));
    const auto& creds = context.at("credentials");
    c.credentials.access_key_id = creds.at("access_key_id").get<std::string>();
    c.credentials.secret_access_key = creds.at("secret_access_key").get<std::string>();
    c.credentials.session_token = creds.value("token", "");
    c.scope.region = context.at("region").get<std::string>();
    c.scope.service = context.at("service").get<std::string>();
    c.scope.normalize_path = context.at("normalize").get<bool>();
    c.scope.add_content_sha256 = context.at("sign_body").get<bool>();
    c.scope.sign_session_token = !context.value("omit_session_token", false);
    const auto now = parse_utc_timestamp(context.at("timestamp").get<std::string>());
    if (!now) {
        throw std::runtime_error(c.name + "/context.json: bad timestamp");
    }
    c.now = *now;
    c.expires = std::chrono::seconds(context.at("expiration_in_seconds").get<long>());
    return c;
}

signable_request to_signable(const raw_request& raw) {
    return signable_request{raw.method, raw.path, raw.query, raw.headers, raw.body};
}

std::vector<fs::path> suite_cases() {
    std::vector<fs::path> dirs;
    for (const auto& entry : fs::directory_iterator(suite_dir)) {
        if (entry.is_directory()) {
            dirs.push_back(entry.path());
        }
    }
    std::sort(dirs.begin(), dirs.end());
    return dirs;
}

const std::string example_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

aws_credentials example_credentials(std::string token = "") {
    return aws_credentials{"AKIDEXAMPLE", example_secret, std::move(token), std::nullopt};
}

std::chrono::system_clock::time_point example_time() {
    return *parse_utc_timestamp("2015-08-30T12:36:00Z");
}

signable_request example_request() {
    signable_request request;
    request.method = "POST";
    request.path = "/";
    request.headers = {{"Host", "logs.us-east-1.amazonaws.com"},
                       {"Content-Type", "application/x-amz-json-1.1"},
                       {"X-Amz-Target", "Logs_20140328.PutLogEvents"}};
    request.body = R"({"logGroupName":"g","logStreamName":"s","logEvents":[]})";
    return request;
}

int count_named(const signable_request& request, const std::string& name) {
    return static_cast<int>(
        std::count_if(request.headers.begin(), request.headers.end(),
                      [&](const auto& header) { return lower(header.first) == name; }));
}

}  // namespace

TEST_CASE("The test suite is present with its licence and all 38 cases", "[sigv4]") {
    REQUIRE(fs::exists(suite_dir.parent_path() / "LICENSE"));
    REQUIRE(fs::exists(suite_dir.parent_path() / "NOTICE"));
    const auto dirs = suite_cases();
    REQUIRE(dirs.size() == 38);
    for (const auto& dir : dirs) {
        for (const char* file :
             {"context.json", "request.txt", "header-canonical-request.txt",
              "header-string-to-sign.txt", "header-signature.txt", "header-signed-request.txt",
              "query-canonical-request.txt", "query-string-to-sign.txt", "query-signature.txt",
              "query-signed-request.txt"}) {
            INFO(dir.filename().string() << "/" << file);
            CHECK(fs::is_regular_file(dir / file));
        }
    }
}

TEST_CASE("Every case of the AWS SigV4 test suite signs with the Authorization header", "[sigv4]") {
    for (const auto& dir : suite_cases()) {
        DYNAMIC_SECTION("header signing: " << dir.filename().string()) {
            const auto c = load_case(dir);
            const auto parts =
                compute_signature(to_signable(c.request), c.credentials, c.scope, c.now);
            CHECK(parts.canonical_request == read_file(dir / "header-canonical-request.txt"));
            CHECK(parts.string_to_sign == read_file(dir / "header-string-to-sign.txt"));
            CHECK(parts.signature == read_file(dir / "header-signature.txt"));

            // The signed request: the suite's headers exactly, Authorization included.
            auto signed_request = to_signable(c.request);
            sign_request(signed_request, c.credentials, c.scope, c.now);
            const auto expected = parse_raw_request(read_file(dir / "header-signed-request.txt"),
                                                    c.name + "/header-signed-request.txt");
            CHECK(header_set(signed_request.headers) == header_set(expected.headers));
            CHECK(signed_request.body == expected.body);
            const auto authorization =
                std::find_if(expected.headers.begin(), expected.headers.end(),
                             [](const auto& h) { return lower(h.first) == "authorization"; });
            REQUIRE(authorization != expected.headers.end());
            CHECK(parts.authorization == authorization->second);
        }
    }
}

TEST_CASE("Every case of the AWS SigV4 test suite signs with query parameters", "[sigv4]") {
    for (const auto& dir : suite_cases()) {
        DYNAMIC_SECTION("query signing: " << dir.filename().string()) {
            const auto c = load_case(dir);
            const auto parts = compute_query_signature(to_signable(c.request), c.credentials,
                                                       c.scope, c.now, c.expires);
            CHECK(parts.canonical_request == read_file(dir / "query-canonical-request.txt"));
            CHECK(parts.string_to_sign == read_file(dir / "query-string-to-sign.txt"));
            CHECK(parts.signature == read_file(dir / "query-signature.txt"));

            const auto signed_text = read_file(dir / "query-signed-request.txt");
            const auto expected_line = signed_text.substr(0, signed_text.find('\n'));
            CHECK(c.request.method + " " + c.request.path + "?" + parts.query + " HTTP/1.1" ==
                  expected_line);
            const auto expected =
                parse_raw_request(signed_text, c.name + "/query-signed-request.txt");
            CHECK(header_set(c.request.headers) == header_set(expected.headers));
        }
    }
}

TEST_CASE("Percent-encoding keeps only unreserved bytes", "[sigv4]") {
    CHECK(uri_encode("AZaz09-_.~", true) == "AZaz09-_.~");
    CHECK(uri_encode("a b+c=d&e", true) == "a%20b%2Bc%3Dd%26e");
    CHECK(uri_encode("/a/b", false) == "/a/b");
    CHECK(uri_encode("/a/b", true) == "%2Fa%2Fb");
    CHECK(uri_encode("\xE1\x88\xB4", true) == "%E1%88%B4");
    CHECK(uri_encode(std::string("\0\xFF", 2), true) == "%00%FF");
}

TEST_CASE("The canonical URI normalizes dot segments and double slashes", "[sigv4]") {
    SECTION("normalized") {
        CHECK(canonical_uri("", true) == "/");
        CHECK(canonical_uri("/", true) == "/");
        CHECK(canonical_uri("/a/b/..", true) == "/a/");
        CHECK(canonical_uri("/a/./b/", true) == "/a/b/");
        CHECK(canonical_uri("/../../a", true) == "/a");
        CHECK(canonical_uri("//a///b", true) == "/a/b");
        CHECK(canonical_uri("/a/b/.", true) == "/a/b/");
    }
    SECTION("not normalized") {
        CHECK(canonical_uri("/a/../b", false) == "/a/../b");
        CHECK(canonical_uri("//", false) == "//");
    }
    SECTION("a path that is already encoded is encoded again, as non-S3 services expect") {
        CHECK(canonical_uri("/a%20b", true) == "/a%2520b");
    }
}

TEST_CASE("The canonical query sorts encoded pairs and decodes what was encoded", "[sigv4]") {
    CHECK(canonical_query("") == "");
    CHECK(canonical_query("b=2&a=1") == "a=1&b=2");
    CHECK(canonical_query("a=2&a=1") == "a=1&a=2");
    CHECK(canonical_query("flag&x=") == "flag=&x=");
    CHECK(canonical_query("&&a=1&") == "a=1");
    CHECK(canonical_query("k=a%2Fb") == "k=a%2Fb");
    CHECK(canonical_query("k=a/b c") == "k=a%2Fb%20c");
    CHECK(canonical_query("k=%zz%4") == "k=%25zz%254");
    CHECK(canonical_query("k=1=2") == "k=1%3D2");
}

TEST_CASE("Dates are written as SigV4 wants them", "[sigv4]") {
    CHECK(format_amz_date(example_time()) == "20150830T123600Z");
    CHECK(format_amz_date(example_time() + 999ms) == "20150830T123600Z");
    CHECK(format_amz_date(*parse_utc_timestamp("2024-02-29T23:59:59Z")) == "20240229T235959Z");
    CHECK(format_amz_date(std::chrono::system_clock::time_point{}) == "19700101T000000Z");
}

TEST_CASE("SHA-256 of known inputs", "[sigv4]") {
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("Signing a request adds the signer's headers once", "[sigv4]") {
    const signing_scope scope{"us-east-1", "logs"};
    auto request = example_request();

    SECTION("with a session token, which is signed") {
        sign_request(request, example_credentials("session-token-value"), scope, example_time());
        CHECK(count_named(request, "x-amz-date") == 1);
        CHECK(count_named(request, "x-amz-security-token") == 1);
        CHECK(count_named(request, "authorization") == 1);
        CHECK(count_named(request, "x-amz-content-sha256") == 0);
        const auto& authorization = request.headers.back();
        CHECK(authorization.first == "Authorization");
        CHECK_THAT(authorization.second,
                   Catch::StartsWith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
                                     "logs/aws4_request, SignedHeaders=content-type;host;"
                                     "x-amz-date;x-amz-security-token;x-amz-target, Signature="));
    }
    SECTION("signing again replaces the earlier signature instead of signing it") {
        sign_request(request, example_credentials("old-token"), scope, example_time());
        sign_request(request, example_credentials(), scope, example_time() + 1h);
        CHECK(count_named(request, "x-amz-date") == 1);
        CHECK(count_named(request, "x-amz-security-token") == 0);
        CHECK(count_named(request, "authorization") == 1);
        const auto fresh = example_request();
        auto again = fresh;
        sign_request(again, example_credentials(), scope, example_time() + 1h);
        CHECK(header_set(again.headers) == header_set(request.headers));
    }
    SECTION("with the payload hash header") {
        auto with_hash = scope;
        with_hash.add_content_sha256 = true;
        sign_request(request, example_credentials(), with_hash, example_time());
        CHECK(count_named(request, "x-amz-content-sha256") == 1);
        CHECK_THAT(request.headers.back().second,
                   Catch::Contains("x-amz-content-sha256;x-amz-date"));
    }
    SECTION("the secret appears in no header and no intermediate result") {
        const auto parts =
            compute_signature(request, example_credentials("t"), scope, example_time());
        sign_request(request, example_credentials("t"), scope, example_time());
        for (const auto& [name, value] : request.headers) {
            CHECK(value.find(example_secret) == std::string::npos);
        }
        CHECK(parts.canonical_request.find(example_secret) == std::string::npos);
        CHECK(parts.string_to_sign.find(example_secret) == std::string::npos);
    }
}

TEST_CASE("A different key, time, region or body gives a different signature", "[sigv4]") {
    const signing_scope scope{"us-east-1", "logs"};
    const auto base =
        compute_signature(example_request(), example_credentials(), scope, example_time());
    auto other_key = example_credentials();
    other_key.secret_access_key.back() = 'X';
    CHECK(compute_signature(example_request(), other_key, scope, example_time()).signature !=
          base.signature);
    CHECK(compute_signature(example_request(), example_credentials(), scope, example_time() + 1s)
              .signature != base.signature);
    CHECK(compute_signature(example_request(), example_credentials(), {"eu-west-1", "logs"},
                            example_time())
              .signature != base.signature);
    auto other_body = example_request();
    other_body.body += " ";
    CHECK(compute_signature(other_body, example_credentials(), scope, example_time()).signature !=
          base.signature);
}

TEST_CASE("Caller mistakes are reported without the secret", "[sigv4]") {
    const signing_scope scope{"us-east-1", "logs"};
    SECTION("no Host header") {
        auto request = example_request();
        request.headers.erase(request.headers.begin());
        try {
            compute_signature(request, example_credentials(), scope, example_time());
            FAIL("no exception");
        } catch (const std::invalid_argument& e) {
            CHECK_THAT(e.what(), Catch::Contains("Host"));
            CHECK_THAT(e.what(), !Catch::Contains(example_secret));
        }
    }
    SECTION("no secret") {
        auto creds = example_credentials();
        creds.secret_access_key.clear();
        CHECK_THROWS_AS(compute_signature(example_request(), creds, scope, example_time()),
                        std::invalid_argument);
    }
    SECTION("no region") {
        CHECK_THROWS_AS(compute_signature(example_request(), example_credentials(), {"", "logs"},
                                          example_time()),
                        std::invalid_argument);
    }
    SECTION("a presigned request's expiry out of range") {
        CHECK_THROWS_AS(compute_query_signature(example_request(), example_credentials(), scope,
                                                example_time(), 0s),
                        std::invalid_argument);
        CHECK_THROWS_AS(compute_query_signature(example_request(), example_credentials(), scope,
                                                example_time(), std::chrono::hours(24 * 7 + 1)),
                        std::invalid_argument);
    }
}
