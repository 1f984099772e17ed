// SPDX-License-Identifier: Apache-2.0
// Tests of the role credentials parser and the IMDS credentials provider against a fake IMDS.
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/cloudwatch/credentials.hpp"
#include "probes/http_client.hpp"
#include "tests/support/fake_http_server.hpp"

using namespace ssm_doctor;
using namespace ssm_doctor::testing;
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// Values a leak would show; the fake IMDS hands them out and echoes them back.
const std::string imds_token = "AQAEAL-fake-imds-token-7f3c9a1e5b2d==";
const std::string key_id = "ASIAFAKEKEYID0000001";
const std::string secret = "fake/Secret+Key0000000000000000000000001";
const std::string session_token = "IQoJb3JpZ2luX2VjEFAKESESSIONTOKEN0000000000000000000000001==";
const std::string role_name = "ssm-doctor-instance-role";

std::string role_document(const std::string& expiration, const std::string& code = "Success") {
    // The shape IMDS serves, member order and spacing included.
    return "{\n  \"Code\" : \"" + code +
           "\",\n  \"LastUpdated\" : \"2026-12-03T15:52:45Z\",\n  \"Type\" : \"AWS-HMAC\",\n"
           "  \"AccessKeyId\" : \"" +
           key_id + "\",\n  \"SecretAccessKey\" : \"" + secret + "\",\n  \"Token\" : \"" +
           session_token + "\",\n  \"Expiration\" : \"" + expiration + "\"\n}";
}

std::chrono::system_clock::time_point utc(const std::string& text) {
    const auto time = parse_utc_timestamp(text);
    REQUIRE(time);
    return *time;
}

void check_no_secret(const std::string& text) {
    INFO(text);
    CHECK(text.find(imds_token) == std::string::npos);
    CHECK(text.find(key_id) == std::string::npos);
    CHECK(text.find(secret) == std::string::npos);
    CHECK(text.find(session_token) == std::string::npos);
}

std::string parse_error(std::string_view json) {
    try {
        parse_role_credentials(json);
    } catch (const std::runtime_error& e) {
        check_no_secret(e.what());
        return e.what();
    }
    FAIL("parse_role_credentials accepted the document");
    return {};
}

// ---- A fake IMDS on 127.0.0.1 ---------------------------------------------------------------

struct imds_state {
    int token_status = 200;
    int role_list_status = 200;
    std::string role_list = role_name + "\n";
    int role_status = 200;
    std::string expiration = "2026-12-03T22:10:00Z";
    std::optional<std::string> document;         // instead of role_document(expiration)
    std::optional<std::string> raw_role_answer;  // bytes sent as is for the role document
    bool silent = false;                         // read requests, never answer
    int token_requests = 0;
    int role_list_requests = 0;
    int role_requests = 0;
    std::vector<std::string> bad_requests;  // what the fake did not expect, for the assertion
};

// A fake IMDS serving a token and the role credentials as `state` says.
class fake_imds {
public:
    explicit fake_imds(asio::io_context& io)
        : server_(io, [this](const received_request& request) {
              if (state.silent) {
                  return reply{{}, true};
              }
              return reply{{answer(request.method, request.target, request.headers)}};
          }) {}

    std::string url() const { return server_.url(); }
    void stop() { server_.stop(); }

    imds_state state;

private:
    std::string answer(const std::string& method, const std::string& target,
                       const http_headers& headers) {
        const std::string prefix = "/latest/meta-data/iam/security-credentials/";
        if (target == "/latest/api/token") {
            ++state.token_requests;
            const auto* ttl = find_header(headers, "X-aws-ec2-metadata-token-ttl-seconds");
            if (method != "PUT" || ttl == nullptr || *ttl != "21600") {
                state.bad_requests.push_back(method + " " + target);
                return http_answer(400, "");
            }
            if (state.token_status != 200) {
                return http_answer(state.token_status, "");
            }
            return http_answer(200, imds_token, {"X-aws-ec2-metadata-token-ttl-seconds: " + *ttl});
        }
        const auto* token = find_header(headers, "X-aws-ec2-metadata-token");
        if (method != "GET" || token == nullptr || *token != imds_token) {
            state.bad_requests.push_back(method + " " + target);
            return http_answer(401, "");
        }
        if (target == prefix) {
            ++state.role_list_requests;
            return http_answer(state.role_list_status,
                               state.role_list_status == 200 ? state.role_list : "");
        }
        if (target.rfind(prefix, 0) == 0) {
            ++state.role_requests;
            if (state.raw_role_answer) {
                return *state.raw_role_answer;
            }
            if (target != prefix + role_name) {
                // Echo the unknown role name back, as a careless server might.
                return http_answer(404, target, {}, "Not Found " + target);
            }
            return http_answer(state.role_status,
                               state.document.value_or(role_document(state.expiration)));
        }
        return http_answer(404, "");
    }

    fake_http_server server_;
};

// Runs one get to its end on the test's io_context; bounded in time whatever happens.
credentials_result run_get(asio::io_context& io, imds_credentials_provider& provider,
                           std::chrono::system_clock::time_point now) {
    std::optional<credentials_result> result;
    asio::co_spawn(io, provider.get(io.get_executor(), now),
                   [&](std::exception_ptr error, credentials_result value) {
                       if (!error) {
                           result = std::move(value);
                       }
                   });
    io.restart();
    while (!result && io.run_one_for(10s) > 0) {
    }
    REQUIRE(result);
    return *result;
}

std::string failure_text(const credentials_result& result) {
    REQUIRE(result.failure);
    return result.failure->detail;
}

}  // namespace

TEST_CASE("Role credentials are read from the document IMDS serves", "[imds][credentials]") {
    const auto credentials = parse_role_credentials(role_document("2026-12-03T22:10:00Z"));
    CHECK(credentials.access_key_id == key_id);
    CHECK(credentials.secret_access_key == secret);
    CHECK(credentials.session_token == session_token);
    REQUIRE(credentials.expiration);
    CHECK(*credentials.expiration == utc("2026-12-03T22:10:00Z"));

    SECTION("a document without Code is accepted") {
        CHECK(parse_role_credentials(R"({"AccessKeyId":"A","SecretAccessKey":"S","Token":"T",)"
                                     R"("Expiration":"2026-01-01T00:00:00Z"})")
                  .access_key_id == "A");
    }
}

TEST_CASE("Bad role credentials documents name the problem and never a secret",
          "[imds][credentials]") {
    const auto good = nlohmann::json::parse(role_document("2026-12-03T22:10:00Z"));

    SECTION("a Code other than Success is named") {
        const auto error =
            parse_error(role_document("2026-12-03T22:10:00Z", "AssumeRoleUnauthorizedAccess"));
        CHECK_THAT(error, Catch::Contains("AssumeRoleUnauthorizedAccess"));
    }
    SECTION("a Code that is not a string") {
        auto document = good;
        document["Code"] = 7;
        CHECK_THAT(parse_error(document.dump()), Catch::Contains("\"Code\" is number"));
    }
    SECTION("each missing field is named") {
        for (const auto* field : {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}) {
            auto document = good;
            document.erase(field);
            CHECK(parse_error(document.dump()) ==
                  std::string("role credentials have no \"") + field + "\" field");
        }
    }
    SECTION("each mistyped or empty field is named") {
        for (const auto* field : {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}) {
            auto document = good;
            document[field] = {1, 2};
            CHECK_THAT(parse_error(document.dump()),
                       Catch::Contains(std::string("\"") + field + "\" is array"));
            document[field] = "";
            CHECK_THAT(parse_error(document.dump()),
                       Catch::Contains(std::string("\"") + field + "\" is empty"));
        }
    }
    SECTION("an Expiration that is not a UTC time") {
        CHECK_THAT(parse_error(role_document("tomorrow")),
                   Catch::Contains("\"Expiration\" is not a UTC time"));
        CHECK_THAT(parse_error(role_document("2026-12-03T22:10:00+01:00")),
                   Catch::Contains("\"Expiration\""));
    }
    SECTION("truncated JSON: the place, not the text read") {
        const auto document = role_document("2026-12-03T22:10:00Z");
        const auto error = parse_error(document.substr(0, document.find(secret) + 10));
        CHECK_THAT(error,
                   Catch::StartsWith("role credentials are not valid JSON (syntax error at"));
    }
    SECTION("JSON that is not an object") {
        CHECK(parse_error("[\"" + secret + "\"]") ==
              "role credentials are array, expected a JSON object");
        CHECK_THAT(parse_error(""), Catch::Contains("not valid JSON"));
    }
}

TEST_CASE("UTC timestamps are read strictly", "[imds][credentials]") {
    using namespace std::chrono;
    CHECK(utc("1970-01-01T00:00:00Z") == system_clock::time_point{});
    CHECK(utc("2026-12-03T22:10:00Z") - utc("2026-12-03T00:00:00Z") == 22h + 10min);
    CHECK(utc("2024-02-29T00:00:00.5Z") - utc("2024-02-29T00:00:00Z") == 500ms);
    for (const auto* bad : {"", "2026-12-03", "2026-12-03T22:10:00", "2026-12-03T22:10:00Zjunk",
                            "2026-02-30T00:00:00Z", "2026-12-03T24:00:00Z", "2026-12-03T22:60:00Z",
                            "2026-13-03T22:10:00Z", "2026-12-03 22:10:00Z", "2026-12-03T22:10:0xZ",
                            "2026-12-03T22:10:00.Z"}) {
        INFO(bad);
        CHECK_FALSE(parse_utc_timestamp(bad));
    }
}

TEST_CASE("The provider fetches the role credentials with IMDSv2 and caches them",
          "[imds][credentials]") {
    asio::io_context io;
    fake_imds imds(io);
    imds_credentials_provider provider(imds.url(), 2s, 5min);
    const auto expiration = utc("2026-12-03T22:10:00Z");
    const auto early = expiration - 1h;

    const auto first = run_get(io, provider, early);
    CHECK_FALSE(first.failure);
    REQUIRE(first.credentials);
    CHECK(first.credentials->access_key_id == key_id);
    CHECK(first.credentials->secret_access_key == secret);
    CHECK(first.credentials->session_token == session_token);
    CHECK(first.credentials->expiration == expiration);
    CHECK(imds.state.token_requests == 1);
    CHECK(imds.state.role_list_requests == 1);
    CHECK(imds.state.role_requests == 1);
    CHECK(imds.state.bad_requests.empty());

    SECTION("a second get is served from the cache") {
        const auto second = run_get(io, provider, early + 10min);
        REQUIRE(second.credentials);
        CHECK(second.credentials->session_token == session_token);
        CHECK(imds.state.role_requests == 1);
        CHECK(imds.state.token_requests == 1);
    }
    SECTION("within the refresh margin of the expiration it fetches anew") {
        imds.state.expiration = "2026-12-04T04:10:00Z";
        const auto cached = run_get(io, provider, expiration - 5min - 1s);
        CHECK(imds.state.role_requests == 1);
        CHECK(cached.credentials->expiration == expiration);
        const auto refreshed = run_get(io, provider, expiration - 4min);
        CHECK_FALSE(refreshed.failure);
        REQUIRE(refreshed.credentials);
        CHECK(refreshed.credentials->expiration == utc("2026-12-04T04:10:00Z"));
        CHECK(imds.state.role_requests == 2);
        CHECK(imds.state.token_requests == 2);
        // And the new ones are cached in turn.
        run_get(io, provider, expiration);
        CHECK(imds.state.role_requests == 2);
    }
    SECTION("invalidate drops the cache") {
        provider.invalidate();
        const auto again = run_get(io, provider, early);
        CHECK(again.credentials);
        CHECK(imds.state.role_requests == 2);
    }
    SECTION("a failed refresh keeps still valid credentials and reports the failure") {
        imds.state.role_status = 500;
        const auto near = run_get(io, provider, expiration - 1min);
        REQUIRE(near.credentials);
        CHECK(near.credentials->session_token == session_token);
        CHECK(failure_text(near) ==
              "IMDS credentials request for role " + role_name + " answered HTTP 500");
        SECTION("but not once they have expired") {
            const auto late = run_get(io, provider, expiration + 1s);
            CHECK_FALSE(late.credentials);
            CHECK(late.failure);
        }
        SECTION("nor after invalidate") {
            provider.invalidate();
            const auto dropped = run_get(io, provider, expiration - 1min);
            CHECK_FALSE(dropped.credentials);
            CHECK(dropped.failure);
        }
    }
    imds.stop();
}

TEST_CASE("IMDS answers that give no credentials are failures that say why",
          "[imds][credentials]") {
    asio::io_context io;
    fake_imds imds(io);
    imds_credentials_provider provider(imds.url(), 2s);
    const auto now = utc("2026-12-03T12:00:00Z");

    SECTION("no instance profile: 404 for the role list") {
        imds.state.role_list_status = 404;
        const auto result = run_get(io, provider, now);
        CHECK_FALSE(result.credentials);
        CHECK_THAT(failure_text(result), Catch::StartsWith("no instance profile attached"));
        CHECK(result.failure->phase == probe_phase::http);
        CHECK(result.failure->reason == failure_reason::http_error);
        CHECK(imds.state.role_requests == 0);
    }
    SECTION("IMDS turned off: 403 for the token") {
        imds.state.token_status = 403;
        const auto result = run_get(io, provider, now);
        CHECK_FALSE(result.credentials);
        CHECK_THAT(failure_text(result), Catch::Contains("turned off"));
        CHECK(imds.state.role_list_requests == 0);
    }
    SECTION("a role list that is not a role name") {
        imds.state.role_list = "../../dynamic/instance-identity/document\n";
        const auto result = run_get(io, provider, now);
        CHECK(failure_text(result) == "IMDS role name request: the answer is not an IAM role name");
        CHECK(imds.state.role_requests == 0);
    }
    SECTION("an empty role list") {
        imds.state.role_list = "";
        CHECK_THAT(failure_text(run_get(io, provider, now)),
                   Catch::Contains("not an IAM role name"));
    }
    SECTION("garbage instead of JSON") {
        imds.state.document = "<html>Service Unavailable</html>";
        const auto result = run_get(io, provider, now);
        CHECK_FALSE(result.credentials);
        CHECK(failure_text(result) == "IMDS credentials for role " + role_name +
                                          ": role credentials are not valid JSON (syntax error "
                                          "at byte 1)");
    }
    SECTION("a Code other than Success") {
        imds.state.document = role_document("2026-12-03T22:10:00Z", "AssumeRoleUnauthorizedAccess");
        const auto result = run_get(io, provider, now);
        CHECK_FALSE(result.credentials);
        CHECK_THAT(failure_text(result), Catch::Contains("Code \"AssumeRoleUnauthorizedAccess\""));
        check_no_secret(failure_text(result));
    }
    SECTION("an endpoint that is not a URL") {
        imds_credentials_provider broken("169.254.169.254", 1s);
        const auto result = run_get(io, broken, now);
        CHECK_THAT(failure_text(result), Catch::StartsWith("IMDS endpoint is not usable"));
    }
    imds.stop();
}

TEST_CASE("An IMDS that is down ends the fetch within the timeout", "[imds][credentials]") {
    asio::io_context io;
    const auto now = utc("2026-12-03T12:00:00Z");

    SECTION("a server that never answers: timeout") {
        fake_imds imds(io);
        imds.state.silent = true;
        imds_credentials_provider provider(imds.url(), 300ms);
        const auto start = std::chrono::steady_clock::now();
        const auto result = run_get(io, provider, now);
        const auto elapsed = std::chrono::steady_clock::now() - start;
        CHECK_FALSE(result.credentials);
        REQUIRE(result.failure);
        CHECK(result.failure->reason == failure_reason::timeout);
        CHECK_THAT(result.failure->detail, Catch::StartsWith("IMDS token request: "));
        CHECK(elapsed >= 250ms);
        CHECK(elapsed < 2s);
        imds.stop();
    }
    SECTION("nothing listening: refused") {
        std::string url;
        {
            tcp::acceptor closed(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
            url = "http://127.0.0.1:" + std::to_string(closed.local_endpoint().port());
        }
        imds_credentials_provider provider(url, 1s);
        const auto result = run_get(io, provider, now);
        REQUIRE(result.failure);
        CHECK(result.failure->reason == failure_reason::refused);
    }
}

TEST_CASE("No token, key id or secret appears in failure text, whatever IMDS echoes",
          "[imds][credentials]") {
    asio::io_context io;
    fake_imds imds(io);
    imds_credentials_provider provider(imds.url(), 2s);
    const auto now = utc("2026-12-03T12:00:00Z");
    const std::string echo = imds_token + " " + key_id + " " + secret + " " + session_token;

    SECTION("the IMDS token sent back as the role name") {
        imds.state.role_list = imds_token + "\n";
        const auto result = run_get(io, provider, now);
        CHECK(imds.state.role_requests == 1);  // asked for the "role", got 404 with an echo
        CHECK_THAT(failure_text(result), Catch::Contains("<imds-token>"));
        check_no_secret(failure_text(result));
    }
    SECTION("an error status whose reason phrase and body echo everything") {
        imds.state.raw_role_answer = http_answer(500, echo, {}, echo);
        const auto result = run_get(io, provider, now);
        CHECK(failure_text(result) ==
              "IMDS credentials request for role " + role_name + " answered HTTP 500");
        check_no_secret(failure_text(result));
    }
    SECTION("a malformed answer made of secrets") {
        imds.state.raw_role_answer = echo + "\r\n\r\n";
        const auto result = run_get(io, provider, now);
        CHECK_THAT(failure_text(result), Catch::Contains("not valid HTTP"));
        check_no_secret(failure_text(result));
    }
    SECTION("a document with every secret but no Expiration") {
        auto document = nlohmann::json::parse(role_document("2026-12-03T22:10:00Z"));
        document.erase("Expiration");
        imds.state.document = document.dump();
        const auto result = run_get(io, provider, now);
        CHECK_THAT(failure_text(result), Catch::EndsWith("have no \"Expiration\" field"));
        check_no_secret(failure_text(result));
    }
    SECTION("a refresh failure that echoes the cached credentials") {
        REQUIRE(run_get(io, provider, now).credentials);
        // The access key id makes a valid role name, which the failure text then names.
        imds.state.role_list = key_id + "\n";
        imds.state.raw_role_answer = http_answer(500, echo, {}, echo);
        const auto result = run_get(io, provider, utc("2026-12-03T22:09:00Z"));
        CHECK(result.credentials);  // still valid for a minute
        CHECK_THAT(failure_text(result), Catch::Contains("role <access-key-id> answered HTTP 500"));
        check_no_secret(failure_text(result));
    }
    imds.stop();
}
