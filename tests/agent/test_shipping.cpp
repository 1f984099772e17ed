// SPDX-License-Identifier: Apache-2.0
// Native shipping to CloudWatch Logs: batching and answers on their own, then the whole path
// against a fake CloudWatch Logs and IMDS on loopback that checks signatures with botocore.
#include <utility>

#include <algorithm>
#include <functional>
#include <future>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "agent/cloudwatch/logs_client.hpp"
#include "agent/cloudwatch/shipper.hpp"
#include "probes/tls_probe.hpp"
#include "tests/fakes/fake_cloudwatch.hpp"
#include "tests/support/test_certs.hpp"

namespace ssm_doctor {
namespace {

using namespace std::chrono_literals;
using testing::fake_cloudwatch;
using testing::fake_cloudwatch_options;
using testing::received_event;
using testing::temp_dir;

constexpr const char* test_group = "/ssm-doctor/test";
constexpr const char* test_stream = "i-0123456789abcdef0";

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

spooled_event spooled(std::uint64_t sequence, std::int64_t timestamp, std::string message) {
    return spooled_event{sequence, timestamp, std::move(message)};
}

// Every log line written while it lives, at debug level and above.
class log_capture {
public:
    log_capture() : previous_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_);
        sink->set_pattern("level=%l %v");
        auto logger = std::make_shared<spdlog::logger>("capture", sink);
        logger->set_level(spdlog::level::debug);
        spdlog::set_default_logger(logger);
    }
    ~log_capture() { spdlog::set_default_logger(previous_); }
    log_capture(const log_capture&) = delete;
    log_capture& operator=(const log_capture&) = delete;

    std::string text() const { return text_.str(); }
    bool contains(std::string_view needle) const {
        return text_.str().find(needle) != std::string::npos;
    }

private:
    std::shared_ptr<spdlog::logger> previous_;
    std::ostringstream text_;
};

template <typename T>
T run(boost::asio::awaitable<T> work) {
    boost::asio::io_context io;
    auto future = boost::asio::co_spawn(io, std::move(work), boost::asio::use_future);
    io.run();
    return future.get();
}

shipper_settings settings_for(const fake_cloudwatch& fake, const std::filesystem::path& spool) {
    shipper_settings s;
    s.log_group = test_group;
    s.log_stream = test_stream;
    s.region = "us-east-1";
    s.endpoint = logs_endpoint{"127.0.0.1", fake.logs_port()};
    s.spool_dir = spool;
    s.spool_max_bytes = 8u << 20;
    s.imds_endpoint = fake.imds_endpoint();
    s.imds_timeout = 2s;
    s.request_timeout = 5s;
    s.backoff_base = 20ms;
    s.backoff_cap = 200ms;
    s.max_attempts = 8;
    s.jitter_seed = 42;
    return s;
}

flush_result flush(shipper& ship, std::chrono::milliseconds budget = 15s) {
    boost::asio::io_context io;
    auto future = boost::asio::co_spawn(
        io, ship.flush(io.get_executor(), std::chrono::steady_clock::now() + budget),
        boost::asio::use_future);
    io.run();
    return future.get();
}

std::vector<std::string> messages(const std::vector<received_event>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) {
        out.push_back(e.message);
    }
    return out;
}

std::vector<std::string> numbered(const std::string& prefix, int count) {
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i) {
        out.push_back(prefix + std::to_string(i));
    }
    return out;
}

void publish_all(shipper& ship, const std::vector<std::string>& texts, std::int64_t start) {
    std::int64_t t = start;
    for (const auto& text : texts) {
        REQUIRE(ship.publish(t++, text));
    }
}

int count_of(const nlohmann::json& stats, const std::string& op, int status) {
    int n = 0;
    for (const auto& r : stats["requests"]) {
        n += r["op"] == op && r["status"] == status ? 1 : 0;
    }
    return n;
}

// No secret key, session token or signature may reach a log line.
void check_no_secrets(fake_cloudwatch& fake, const log_capture& logs) {
    const std::string text = logs.text();
    for (const auto& secret : fake.secrets()) {
        INFO("a secret reached the log");
        CHECK(text.find(secret) == std::string::npos);
    }
    CHECK(text.find("Signature=") == std::string::npos);
    CHECK(text.find("Authorization") == std::string::npos);
    CHECK(text.find("X-Amz-Security-Token") == std::string::npos);
    CHECK(text.find("fake-imds-token") == std::string::npos);
}

}  // namespace

TEST_CASE("Batches stay within PutLogEvents' limits and in time order", "[cloudwatch][ship]") {
    const std::int64_t t0 = 1'700'000'000'000;

    SECTION("the event count is capped by the limit and by the caller") {
        std::vector<spooled_event> pending;
        for (int i = 0; i < 25; ++i) {
            pending.push_back(spooled(static_cast<std::uint64_t>(i + 1), t0 + i, "e"));
        }
        batch_limits limits;
        limits.max_events = 10;
        auto batch = make_batch(pending, 10'000, limits);
        CHECK(batch.taken == 10);
        CHECK(batch.last_sequence == 10);
        batch = make_batch(pending, 4, limits);
        CHECK(batch.taken == 4);
        CHECK(batch.last_sequence == 4);
        CHECK(batch.bytes == 4 * (1 + 26));
    }
    SECTION("the byte limit counts 26 bytes per event, UTF-8 bytes for the message") {
        std::vector<spooled_event> pending;
        const std::string big(100'000, 'x');
        for (int i = 0; i < 20; ++i) {
            pending.push_back(spooled(static_cast<std::uint64_t>(i + 1), t0, big));
        }
        const auto batch = make_batch(pending, 10'000);
        CHECK(batch.taken == 10);  // 10 * 100,026 fits 1,048,576; 11 would not
        CHECK(batch.bytes == 10 * 100'026);
        const std::string euro = "\xE2\x82\xAC";  // three bytes, one character
        const auto small = make_batch({spooled(1, t0, euro)}, 10);
        CHECK(small.bytes == 3 + 26);
    }
    SECTION("a batch spans less than 24 hours") {
        const std::vector<spooled_event> pending = {
            spooled(1, t0, "a"), spooled(2, t0 + 3'600'000, "b"),
            spooled(3, t0 + 24 * 3'600'000, "c"), spooled(4, t0 + 25 * 3'600'000, "d")};
        const auto batch = make_batch(pending, 100);
        CHECK(batch.taken == 2);
        CHECK(batch.last_sequence == 2);
    }
    SECTION("events out of order are sorted, stable for equal times, and the batch is a prefix") {
        const std::vector<spooled_event> pending = {
            spooled(7, t0 + 50, "late"), spooled(8, t0 + 10, "early-1"),
            spooled(9, t0 + 10, "early-2"), spooled(10, t0 + 60, "last")};
        const auto batch = make_batch(pending, 3);
        REQUIRE(batch.events.size() == 3);
        CHECK(batch.events[0].message == "early-1");
        CHECK(batch.events[1].message == "early-2");
        CHECK(batch.events[2].message == "late");
        CHECK(batch.last_sequence == 9);
    }
    SECTION("one event alone always makes a batch, cut to the per-event limit") {
        const std::string huge(2'000'000, 'y');
        const auto batch = make_batch({spooled(1, t0, huge)}, 10);
        REQUIRE(batch.taken == 1);
        CHECK(batch.truncated == 1);
        CHECK(batch.events[0].message.size() <= 262'144 - 26);
        CHECK(batch.bytes <= 262'144);
    }
    SECTION("nothing pending makes an empty batch") {
        CHECK(make_batch({}, 10).taken == 0);
    }
}

TEST_CASE("Oversized or invalid messages are cut with a mark, never rejected",
          "[cloudwatch][ship]") {
    bool cut = false;
    SECTION("a message within the limit is kept as it is") {
        CHECK(fit_log_message("hello", 100, &cut) == "hello");
        CHECK_FALSE(cut);
    }
    SECTION("a long message is cut and says how long it was") {
        const std::string text(1000, 'a');
        const auto out = fit_log_message(text, 200, &cut);
        CHECK(cut);
        CHECK(out.size() <= 200);
        CHECK(out.find("[truncated by ssm-doctor: 1000 bytes]") != std::string::npos);
        CHECK(out.starts_with("aaaa"));
    }
    SECTION("the cut never splits a UTF-8 character") {
        std::string text;
        for (int i = 0; i < 300; ++i) {
            text += "\xC3\xA9";  // é
        }
        const auto out = fit_log_message(text, 101, &cut);
        CHECK(cut);
        const auto body = out.substr(0, out.find(" [truncated"));
        CHECK(body.size() % 2 == 0);
    }
    SECTION("invalid UTF-8 becomes U+FFFD so the JSON stays valid") {
        const std::string text = "ok\xFF\xC3(\xED\xA0\x80 end";
        const auto out = fit_log_message(text, 100, &cut);
        CHECK_FALSE(cut);
        CHECK(out == "ok\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD end");
    }
}

TEST_CASE("CloudWatch Logs answers are sorted into what to do next", "[cloudwatch][ship]") {
    auto answer = [](int status, std::string body) {
        http_response r;
        r.status = status;
        r.reason = "X";
        r.body = std::move(body);
        return classify_logs_response(r);
    };
    SECTION("success, with the events the service refused") {
        const auto r = answer(200, R"({"nextSequenceToken":"x","rejectedLogEventsInfo":)"
                                   R"({"tooOldLogEventEndIndex":2,"tooNewLogEventStartIndex":9}})");
        CHECK(r.outcome == logs_outcome::ok);
        CHECK(r.rejected.too_old_end == 2);
        CHECK(r.rejected.too_new_start == 9);
        CHECK(rejected_count(r.rejected, 10) == 3);
        CHECK(answer(200, "").outcome == logs_outcome::ok);
    }
    SECTION("rejected ranges are counted once and clamped to the batch") {
        rejected_events_info info;
        info.too_old_end = 3;
        info.expired_end = 5;
        CHECK(rejected_count(info, 10) == 5);
        info.too_new_start = 2;  // overlaps the prefix
        CHECK(rejected_count(info, 10) == 10);
        info = {};
        info.too_new_start = 40;
        CHECK(rejected_count(info, 10) == 0);
    }
    SECTION("error types, with or without a namespace") {
        const auto nf = answer(400, R"({"__type":"com.amazonaws.logs#ResourceNotFoundException",)"
                                    R"("message":"The specified log group does not exist."})");
        CHECK(nf.outcome == logs_outcome::resource_not_found);
        CHECK(nf.error_type == "ResourceNotFoundException");
        CHECK(nf.message == "The specified log group does not exist.");
        CHECK(answer(400, R"({"__type":"ThrottlingException"})").outcome ==
              logs_outcome::throttled);
        CHECK(answer(400, R"({"__type":"ExpiredTokenException"})").outcome ==
              logs_outcome::credentials_rejected);
        CHECK(answer(400, R"({"__type":"UnrecognizedClientException"})").outcome ==
              logs_outcome::credentials_rejected);
        CHECK(answer(400, R"({"__type":"InvalidParameterException"})").outcome ==
              logs_outcome::invalid_request);
        CHECK(answer(400, R"({"__type":"ResourceAlreadyExistsException"})").outcome ==
              logs_outcome::already_exists);
        CHECK(answer(400, R"({"__type":"DataAlreadyAcceptedException"})").outcome ==
              logs_outcome::ok);
        CHECK(answer(400, R"({"__type":"AccessDeniedException","Message":"no"})").outcome ==
              logs_outcome::denied);
    }
    SECTION("server errors and garbage bodies") {
        const auto r = answer(503, "<html>\x01 busy</html>");
        CHECK(r.outcome == logs_outcome::server_error);
        CHECK(r.message == "<html>? busy</html>");
        CHECK(answer(429, "").outcome == logs_outcome::throttled);
        CHECK(answer(500, "{}").message == "HTTP 500 X");
    }
}

TEST_CASE("The CloudWatch Logs endpoint comes from the override or the region",
          "[cloudwatch][ship]") {
    std::string error;
    SECTION("the partition's domain") {
        auto e = resolve_logs_endpoint(std::nullopt, "eu-west-1", &error);
        REQUIRE(e);
        CHECK(e->host == "logs.eu-west-1.amazonaws.com");
        CHECK(e->port == 443);
        e = resolve_logs_endpoint(std::nullopt, "cn-north-1", &error);
        REQUIRE(e);
        CHECK(e->host == "logs.cn-north-1.amazonaws.com.cn");
    }
    SECTION("an override, e.g. a VPC endpoint, with a port") {
        const auto e = resolve_logs_endpoint(
            "https://vpce-0abc.logs.us-east-1.vpce.amazonaws.com:8443/", "us-east-1", &error);
        REQUIRE(e);
        CHECK(e->host == "vpce-0abc.logs.us-east-1.vpce.amazonaws.com");
        CHECK(e->port == 8443);
    }
    SECTION("refusals say why") {
        CHECK_FALSE(resolve_logs_endpoint("http://plain.example", "us-east-1", &error));
        CHECK(error.find("is not https://host[:port]") != std::string::npos);
        CHECK_FALSE(resolve_logs_endpoint("https://h.example/path", "us-east-1", &error));
        CHECK_FALSE(resolve_logs_endpoint(std::nullopt, std::nullopt, &error));
        CHECK(error.find("no region") != std::string::npos);
        CHECK_FALSE(resolve_logs_endpoint(std::nullopt, "us east", &error));
    }
    SECTION("settings from the configuration: the stream defaults to the instance id") {
        doctor_config config;
        CHECK_FALSE(shipper_settings_from_config(config, "us-east-1", "i-1", &error));
        CHECK(error.find("log_group") != std::string::npos);
        config.cloudwatch.log_group = "/ssm-doctor";
        auto s = shipper_settings_from_config(config, "us-east-1", "i-0abc", &error);
        REQUIRE(s);
        CHECK(s->log_stream == "i-0abc");
        CHECK(s->endpoint.host == "logs.us-east-1.amazonaws.com");
        CHECK(s->spool_dir == config.cloudwatch.spool_dir);
        config.cloudwatch.log_stream = "web-1";
        s = shipper_settings_from_config(config, "us-east-1", "i-0abc", &error);
        REQUIRE(s);
        CHECK(s->log_stream == "web-1");
        config.cloudwatch.log_stream.reset();
        CHECK_FALSE(shipper_settings_from_config(config, "us-east-1", "", &error));
        CHECK_FALSE(shipper_settings_from_config(config, std::nullopt, "i-0abc", &error));
    }
}

TEST_CASE("A signed PutLogEvents request carries the JSON 1.1 headers", "[cloudwatch][ship]") {
    aws_credentials creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "TOKEN123",
                          std::nullopt};
    const auto body = put_log_events_body("g", "s", {{5, "a \"quoted\" line"}});
    CHECK(body == R"({"logEvents":[{"message":"a \"quoted\" line","timestamp":5}],)"
                  R"("logGroupName":"g","logStreamName":"s"})");
    const auto wire =
        build_logs_request(logs_endpoint{"logs.us-east-1.amazonaws.com", 443}, "us-east-1",
                           "PutLogEvents", body, creds, std::chrono::system_clock::now());
    CHECK(wire.starts_with("POST / HTTP/1.1\r\n"));
    CHECK(wire.find("Host: logs.us-east-1.amazonaws.com\r\n") != std::string::npos);
    CHECK(wire.find("X-Amz-Target: Logs_20140328.PutLogEvents\r\n") != std::string::npos);
    CHECK(wire.find("Content-Type: application/x-amz-json-1.1\r\n") != std::string::npos);
    CHECK(wire.find("Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") !=
          std::string::npos);
    CHECK(wire.find("/us-east-1/logs/aws4_request") != std::string::npos);
    CHECK(wire.find("Content-Length: " + std::to_string(body.size()) + "\r\n") !=
          std::string::npos);
    CHECK(wire.ends_with("\r\n\r\n" + body));
    const auto other_port =
        build_logs_request(logs_endpoint{"127.0.0.1", 8443}, "us-east-1", "CreateLogGroup", "{}",
                           creds, std::chrono::system_clock::now());
    CHECK(other_port.find("Host: 127.0.0.1:8443\r\n") != std::string::npos);
}

TEST_CASE("The fake CloudWatch Logs refuses requests not signed with the role's secret",
          "[cloudwatch][ship]") {
    fake_cloudwatch fake;
    logs_client client(logs_endpoint{"127.0.0.1", fake.logs_port()}, "us-east-1",
                       make_tls_client_context(fake.ca_file()));
    imds_credentials_provider provider(fake.imds_endpoint(), 2s);
    auto call = [&](std::function<void(aws_credentials&)> change, std::string group) {
        return run([&]() -> boost::asio::awaitable<logs_response> {
            auto executor = co_await boost::asio::this_coro::executor;
            auto creds = co_await provider.get(executor, std::chrono::system_clock::now());
            REQUIRE(creds.credentials);
            aws_credentials used = *creds.credentials;
            change(used);
            co_return co_await client.create_log_group(executor, group, used,
                                                       std::chrono::steady_clock::now() + 5s);
        }());
    };
    const auto good = call([](aws_credentials&) {}, "signed-right");
    CHECK(good.outcome == logs_outcome::ok);
    CHECK(good.status == 200);

    const auto wrong_secret = call([](aws_credentials& c) { c.secret_access_key += "x"; }, "g2");
    CHECK(wrong_secret.outcome == logs_outcome::credentials_rejected);
    CHECK(wrong_secret.status == 403);
    CHECK(wrong_secret.error_type == "InvalidSignatureException");

    const auto wrong_region = run([&]() -> boost::asio::awaitable<logs_response> {
        logs_client elsewhere(logs_endpoint{"127.0.0.1", fake.logs_port()}, "eu-west-1",
                              make_tls_client_context(fake.ca_file()));
        auto executor = co_await boost::asio::this_coro::executor;
        auto creds = co_await provider.get(executor, std::chrono::system_clock::now());
        co_return co_await elsewhere.create_log_group(executor, "g3", *creds.credentials,
                                                      std::chrono::steady_clock::now() + 5s);
    }());
    CHECK(wrong_region.error_type == "InvalidSignatureException");

    const auto unknown_key = call([](aws_credentials& c) { c.access_key_id = "ASIANOBODY"; }, "g4");
    CHECK(unknown_key.outcome == logs_outcome::credentials_rejected);
    CHECK(unknown_key.error_type == "UnrecognizedClientException");

    const auto groups = fake.stats()["groups"];
    CHECK(groups.size() == 1);
    CHECK(groups.contains("signed-right"));
}

TEST_CASE("Events reach a CloudWatch Logs that checks signatures with botocore",
          "[cloudwatch][ship]") {
    fake_cloudwatch fake;
    temp_dir dir;
    log_capture logs;
    auto tls = make_tls_client_context(fake.ca_file());
    auto settings = settings_for(fake, dir.path() / "spool");
    const std::int64_t t0 = now_ms() - 60'000;

    SECTION("the group and stream are created when missing, then every event arrives in order") {
        shipper ship(settings, tls);
        const auto texts = numbered("happy-", 5);
        publish_all(ship, texts, t0);
        const auto result = flush(ship);
        CHECK(result.drained);
        CHECK(result.sent == 5);
        CHECK(result.retries == 0);
        CHECK_FALSE(result.error);
        CHECK(ship.pending() == 0);
        const auto events = fake.events();
        CHECK(messages(events) == texts);
        for (const auto& e : events) {
            CHECK(e.group == test_group);
            CHECK(e.stream == test_stream);
        }
        const auto stats = fake.stats();
        CHECK(count_of(stats, "CreateLogGroup", 200) == 1);
        CHECK(count_of(stats, "CreateLogStream", 200) == 1);
        CHECK(count_of(stats, "PutLogEvents", 200) == 1);
        CHECK(logs.contains("event=ship_created what=log_group"));
        CHECK(logs.contains("event=ship_ok sent=5"));

        // A second run finds them: no more creation.
        publish_all(ship, {"again"}, t0 + 10);
        CHECK(flush(ship).sent == 1);
        CHECK(count_of(fake.stats(), "CreateLogGroup", 200) == 1);
    }
    SECTION("an existing group with a missing stream: only the stream is created") {
        fake.command({{"cmd", "create"}, {"group", test_group}});
        shipper ship(settings, tls);
        publish_all(ship, {"one"}, t0);
        CHECK(flush(ship).sent == 1);
        const auto stats = fake.stats();
        CHECK(count_of(stats, "CreateLogGroup", 400) == 1);  // already exists
        CHECK(count_of(stats, "CreateLogStream", 200) == 1);
    }
    SECTION("a host name is checked against the certificate (SNI and name verification)") {
        settings.endpoint.host = "localhost";
        shipper ship(settings, tls);
        publish_all(ship, {"by-name"}, t0);
        const auto result = flush(ship);
        CHECK(result.sent == 1);
    }
    SECTION("a certificate the trust store does not know is refused and the events wait") {
        temp_dir other;
        const auto stranger = testing::make_ca("stranger");
        auto untrusting = make_tls_client_context(other.write("ca.pem", stranger.cert_pem()));
        settings.max_attempts = 2;
        {
            shipper ship(settings, untrusting);
            publish_all(ship, {"kept"}, t0);
            const auto result = flush(ship);
            CHECK_FALSE(result.drained);
            REQUIRE(result.error);
            CHECK(result.error->find("network") != std::string::npos);
            CHECK(result.remaining == 1);
            CHECK(logs.contains("event=ship_failed reason=network"));
        }
        CHECK(fake.events().empty());
        shipper ship(settings, tls);
        CHECK(flush(ship).sent == 1);
    }
    check_no_secrets(fake, logs);
}

TEST_CASE("Shipping survives outages, throttling and server errors without loss or duplicates",
          "[cloudwatch][ship]") {
    fake_cloudwatch fake;
    temp_dir dir;
    log_capture logs;
    auto tls = make_tls_client_context(fake.ca_file());
    auto settings = settings_for(fake, dir.path() / "spool");
    const std::int64_t t0 = now_ms() - 60'000;
    fake.command({{"cmd", "create"}, {"group", test_group}, {"stream", test_stream}});

    SECTION("the endpoint is down for a while, then back: every event arrives once") {
        settings.max_attempts = 40;
        shipper ship(settings, tls);
        const auto texts = numbered("outage-", 30);
        publish_all(ship, texts, t0);
        fake.command({{"cmd", "down_for"}, {"seconds", 0.7}});
        const auto started = std::chrono::steady_clock::now();
        const auto result = flush(ship);
        CHECK(std::chrono::steady_clock::now() - started >= 600ms);
        CHECK(result.drained);
        CHECK(result.sent == 30);
        CHECK(result.retries >= 1);
        CHECK(messages(fake.events()) == texts);
        CHECK(logs.contains("event=ship_retry reason=network attempt=1"));
    }
    SECTION("throttling answers are retried with backoff") {
        shipper ship(settings, tls);
        publish_all(ship, numbered("throttled-", 3), t0);
        fake.command({{"cmd", "throttle"}, {"count", 3}});
        const auto result = flush(ship);
        CHECK(result.drained);
        CHECK(result.sent == 3);
        CHECK(result.retries == 3);
        CHECK(count_of(fake.stats(), "PutLogEvents", 400) == 3);
        CHECK(logs.contains("event=ship_retry reason=throttled attempt=3"));
        CHECK(fake.events().size() == 3);
    }
    SECTION("a server error between batches: the failed batch is sent again, nothing twice") {
        settings.limits.max_events = 10;
        shipper ship(settings, tls);
        const auto texts = numbered("batched-", 25);
        publish_all(ship, texts, t0);
        fake.command({{"cmd", "fail_put"}, {"nth", 2}, {"status", 500}});
        const auto result = flush(ship);
        CHECK(result.drained);
        CHECK(result.sent == 25);
        CHECK(result.retries == 1);
        const auto stats = fake.stats();
        CHECK(count_of(stats, "PutLogEvents", 500) == 1);
        CHECK(count_of(stats, "PutLogEvents", 200) == 3);
        CHECK(messages(fake.events()) == texts);
        CHECK(logs.contains("event=ship_retry reason=server_error attempt=1"));
    }
    SECTION("retries end at the attempt bound and the events stay spooled") {
        settings.max_attempts = 3;
        shipper ship(settings, tls);
        publish_all(ship, {"patient"}, t0);
        fake.command({{"cmd", "throttle"}, {"count", 10}});
        auto result = flush(ship);
        CHECK_FALSE(result.drained);
        CHECK(result.remaining == 1);
        CHECK(result.retries == 3);
        CHECK(logs.contains("event=ship_failed reason=throttled attempts=3"));
        fake.command({{"cmd", "throttle"}, {"count", 0}});
        result = flush(ship);
        CHECK(result.sent == 1);
    }
    SECTION("a restart of ssm-doctor during an outage resumes the spool") {
        const auto texts = numbered("restart-", 12);
        fake.command({{"cmd", "down"}});
        {
            shipper ship(settings, tls);
            publish_all(ship, texts, t0);
            const auto result = flush(ship, 400ms);
            CHECK_FALSE(result.drained);
            CHECK(result.remaining == 12);
        }
        fake.command({{"cmd", "up"}});
        shipper again(settings, tls);
        CHECK(again.pending() == 12);
        const auto result = flush(again);
        CHECK(result.drained);
        CHECK(result.sent == 12);
        CHECK(messages(fake.events()) == texts);
    }
    SECTION("the deadline bounds a flush against a server that does not answer in time") {
        fake.command({{"cmd", "delay"}, {"seconds", 2}});
        shipper ship(settings, tls);
        publish_all(ship, {"slow"}, t0);
        const auto started = std::chrono::steady_clock::now();
        const auto result = flush(ship, 500ms);
        CHECK(std::chrono::steady_clock::now() - started < 1500ms);
        CHECK_FALSE(result.drained);
        CHECK(result.remaining == 1);
        fake.command({{"cmd", "delay"}, {"seconds", 0}});
    }
    check_no_secrets(fake, logs);
}

TEST_CASE("The spool's bound drops the oldest events and says so", "[cloudwatch][ship]") {
    fake_cloudwatch fake;
    temp_dir dir;
    log_capture logs;
    auto tls = make_tls_client_context(fake.ca_file());
    auto settings = settings_for(fake, dir.path() / "spool");
    settings.spool_max_bytes = 8 * 1024;
    const std::int64_t t0 = now_ms() - 60'000;

    shipper ship(settings, tls);
    std::vector<std::string> texts;
    for (int i = 0; i < 100; ++i) {
        texts.push_back("bounded-" + std::to_string(i) + "-" + std::string(200, 'p'));
    }
    publish_all(ship, texts, t0);
    const auto result = flush(ship);
    CHECK(result.drained);
    const auto arrived = messages(fake.events());
    REQUIRE_FALSE(arrived.empty());
    CHECK(arrived.size() < texts.size());
    // What arrived is the newest part, in order; the rest was dropped and counted.
    const std::vector<std::string> newest(texts.end() - static_cast<long>(arrived.size()),
                                          texts.end());
    CHECK(arrived == newest);
    CHECK(result.spool_dropped == texts.size() - arrived.size());
    CHECK(ship.totals().spool_dropped == texts.size() - arrived.size());
    CHECK(logs.contains("level=warning event=spool_dropped count="));
    check_no_secrets(fake, logs);
}

TEST_CASE("Credentials are refreshed before they expire and after the service refuses them",
          "[cloudwatch][ship]") {
    temp_dir dir;
    log_capture logs;
    const std::int64_t t0 = now_ms() - 60'000;

    SECTION("short-lived credentials are replaced during a run") {
        fake_cloudwatch_options options;
        options.credentials_lifetime_s = 4;
        options.rotate_before_s = 3;
        fake_cloudwatch fake(options);
        fake.command({{"cmd", "create"}, {"group", test_group}, {"stream", test_stream}});
        auto settings = settings_for(fake, dir.path() / "spool");
        settings.credentials_refresh_margin = 2s;
        shipper ship(settings, make_tls_client_context(fake.ca_file()));
        publish_all(ship, {"first"}, t0);
        CHECK(flush(ship).sent == 1);
        std::this_thread::sleep_for(2100ms);  // the first credentials now have < 2 s left
        publish_all(ship, {"second"}, t0 + 1);
        CHECK(flush(ship).sent == 1);
        std::set<std::string> keys;
        const auto stats = fake.stats();
        for (const auto& r : stats["requests"]) {
            CHECK(r["status"] == 200);
            keys.insert(r["key"].get<std::string>());
        }
        CHECK(keys.size() == 2);
        CHECK(messages(fake.events()) == std::vector<std::string>{"first", "second"});
        check_no_secrets(fake, logs);
    }
    SECTION("credentials the service calls expired are fetched anew and the batch sent again") {
        fake_cloudwatch fake;
        shipper ship(settings_for(fake, dir.path() / "spool"),
                     make_tls_client_context(fake.ca_file()));
        publish_all(ship, {"before"}, t0);
        CHECK(flush(ship).sent == 1);
        fake.command({{"cmd", "expire_credentials"}});
        publish_all(ship, {"after"}, t0 + 1);
        const auto result = flush(ship);
        CHECK(result.sent == 1);
        CHECK(result.retries == 1);
        CHECK(
            logs.contains("event=ship_retry reason=credentials_rejected "
                          "type=ExpiredTokenException"));
        CHECK(messages(fake.events()) == std::vector<std::string>{"before", "after"});
        CHECK(fake.stats()["keys_issued"] == 2);
        check_no_secrets(fake, logs);
    }
}

TEST_CASE("Events the service refuses are dropped, counted and logged, never retried forever",
          "[cloudwatch][ship]") {
    fake_cloudwatch fake;
    temp_dir dir;
    log_capture logs;
    auto tls = make_tls_client_context(fake.ca_file());
    auto settings = settings_for(fake, dir.path() / "spool");
    const std::int64_t now = now_ms();

    SECTION("an oversized event arrives cut with a mark") {
        shipper ship(settings, tls);
        const std::string huge = "start-" + std::string(300'000, 'z');
        publish_all(ship, {"small", huge, "after"}, now - 1000);
        const auto result = flush(ship);
        CHECK(result.sent == 3);
        CHECK(result.truncated == 1);
        const auto arrived = messages(fake.events());
        REQUIRE(arrived.size() == 3);
        CHECK(arrived[1].starts_with("start-zzz"));
        CHECK(arrived[1].ends_with("[truncated by ssm-doctor: 300006 bytes]"));
        CHECK(arrived[1].size() <= 262'144 - 26);
        CHECK(logs.contains("event=ship_truncated count=1"));
    }
    SECTION("events larger in sum than one request go in several requests") {
        shipper ship(settings, tls);
        std::vector<std::string> texts;
        for (int i = 0; i < 6; ++i) {
            texts.push_back(std::to_string(i) + std::string(250'000, 'q'));
        }
        publish_all(ship, texts, now - 1000);
        const auto result = flush(ship);
        CHECK(result.sent == 6);
        CHECK(count_of(fake.stats(), "PutLogEvents", 200) == 2);
        CHECK(fake.events().size() == 6);
    }
    SECTION("events too old for the service are counted as rejected") {
        shipper ship(settings, tls);
        const std::int64_t twenty_days = 20LL * 24 * 3600 * 1000;
        publish_all(ship, {"ancient"}, now - twenty_days);
        publish_all(ship, {"recent"}, now - 1000);
        const auto result = flush(ship);
        CHECK(result.drained);
        CHECK(result.sent == 1);
        CHECK(result.rejected == 1);
        CHECK(messages(fake.events()) == std::vector<std::string>{"recent"});
        CHECK(logs.contains("event=ship_rejected reason=out_of_range count=1"));
    }
    SECTION("a malformed event is isolated by halving the batch; only it is dropped") {
        shipper ship(settings, tls);
        publish_all(ship, {"a", "b", "", "d", "e"}, now - 1000);  // the service wants 1+ chars
        const auto result = flush(ship);
        CHECK(result.drained);
        CHECK(result.sent == 4);
        CHECK(result.rejected == 1);
        CHECK(messages(fake.events()) == std::vector<std::string>{"a", "b", "d", "e"});
        CHECK(
            logs.contains("event=ship_rejected reason=invalid_request count=1 "
                          "type=InvalidParameterException"));
    }
    check_no_secrets(fake, logs);
}

TEST_CASE("A one-shot check ships its event within the flush timeout or leaves it spooled",
          "[cloudwatch][ship]") {
    fake_cloudwatch fake;
    temp_dir dir;
    log_capture logs;
    auto tls = make_tls_client_context(fake.ca_file());
    auto settings = settings_for(fake, dir.path() / "spool");
    auto one_shot = [&](const std::string& text, std::chrono::milliseconds timeout) {
        shipper ship(settings, tls);
        boost::asio::io_context io;
        auto future = boost::asio::co_spawn(
            io, publish_and_flush(io.get_executor(), ship, now_ms(), text, timeout),
            boost::asio::use_future);
        io.run();
        return future.get();
    };

    fake.command({{"cmd", "down"}});
    const auto started = std::chrono::steady_clock::now();
    auto result = one_shot("check-1", 500ms);
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    CHECK_FALSE(result.drained);
    CHECK(result.remaining == 1);

    fake.command({{"cmd", "up"}});
    result = one_shot("check-2", 5s);
    CHECK(result.drained);
    CHECK(result.sent == 2);
    CHECK(messages(fake.events()) == std::vector<std::string>{"check-1", "check-2"});
    check_no_secrets(fake, logs);
}

}  // namespace ssm_doctor
