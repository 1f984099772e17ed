// SPDX-License-Identifier: Apache-2.0
// Tests of the HTTP client, the IMDS parsers and the IMDS probe against a fake IMDS on loopback.
#include <utility>

#include <fstream>
#include <functional>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>

#include "probes/http_client.hpp"
#include "probes/imds_probe.hpp"
#include "tests/support/fake_http_server.hpp"

using namespace ssm_doctor;
using namespace ssm_doctor::testing;
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

std::string read_data(const std::string& name) {
    std::ifstream in(std::string(SSM_DOCTOR_TEST_DATA) + "/imds/" + name, std::ios::binary);
    REQUIRE(in);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string chunked_answer(int status, const std::vector<std::string>& chunks) {
    std::string text = "HTTP/1.1 " + std::to_string(status) + " " + http_reason(status) +
                       "\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (const auto& chunk : chunks) {
        std::ostringstream size;
        size << std::hex << chunk.size();
        text += size.str() + "\r\n" + chunk + "\r\n";
    }
    return text + "0\r\n\r\n";
}

const std::string secret_token = "AQAEAL-fake-imds-token-7f3c9a1e5b2d==";
const std::string instance_mac = "0e:1a:2b:3c:4d:5e";

// How the fake IMDS behaves; the defaults are a healthy IMDSv2 instance.
struct imds_behaviour {
    int token_status = 200;  // 403: IMDS off; 404/405: IMDSv1 only
    std::string document = read_data("identity-document.json");
    std::string ipv4_blocks = read_data("vpc-ipv4-cidr-blocks.txt");
    std::optional<std::string> ipv6_blocks;  // nullopt: 404, as for a VPC without IPv6
    int ipv6_status = 200;                   // another status: the IPv6 list answers it
    bool chunked = false;                    // answer GETs with chunked bodies
    bool mac_missing = false;
};

responder fake_imds(imds_behaviour behaviour) {
    return [behaviour](const received_request& request) -> reply {
        const auto answer = [&](int status, const std::string& body) {
            return behaviour.chunked && status == 200
                       ? reply{{chunked_answer(status, {body.substr(0, body.size() / 2),
                                                        body.substr(body.size() / 2)})}}
                       : reply{{http_answer(status, body)}};
        };
        if (request.target == "/latest/api/token") {
            if (request.method != "PUT") {
                return {{http_answer(405, "")}};
            }
            const auto* ttl = find_header(request.headers, "x-aws-ec2-metadata-token-ttl-seconds");
            if (ttl == nullptr) {
                return {{http_answer(400, "")}};
            }
            if (behaviour.token_status != 200) {
                return {{http_answer(behaviour.token_status, "")}};
            }
            // Real IMDS echoes the TTL; SDKs depend on it.
            return {{http_answer(200, secret_token,
                                 {"X-aws-ec2-metadata-token-ttl-seconds: " + *ttl})}};
        }
        if (request.method != "GET") {
            return {{http_answer(405, "")}};
        }
        const auto* token = find_header(request.headers, "X-aws-ec2-metadata-token");
        if (behaviour.token_status == 200 && (token == nullptr || *token != secret_token)) {
            return {{http_answer(401, "")}};
        }
        const std::string macs = "/latest/meta-data/network/interfaces/macs/" + instance_mac;
        if (request.target == "/latest/dynamic/instance-identity/document") {
            return answer(200, behaviour.document);
        }
        if (request.target == "/latest/meta-data/mac" && !behaviour.mac_missing) {
            return answer(200, instance_mac);
        }
        if (request.target == macs + "/vpc-ipv4-cidr-blocks") {
            return answer(200, behaviour.ipv4_blocks);
        }
        if (request.target == macs + "/vpc-ipv6-cidr-blocks" && behaviour.ipv6_status != 200) {
            return {{http_answer(behaviour.ipv6_status, "")}};
        }
        if (request.target == macs + "/vpc-ipv6-cidr-blocks" && behaviour.ipv6_blocks) {
            return answer(200, *behaviour.ipv6_blocks);
        }
        return {{http_answer(404, "")}};
    };
}

// Runs one coroutine to its end, then stops the server; bounded in time whatever happens.
template <typename T>
T run(asio::io_context& io, fake_http_server* server, asio::awaitable<T> task) {
    std::optional<T> result;
    asio::co_spawn(io, std::move(task), [&](std::exception_ptr error, T value) {
        if (!error) {
            result = std::move(value);
        }
        if (server != nullptr) {
            server->stop();
        }
    });
    io.run_for(10s);
    REQUIRE(result);
    return std::move(*result);
}

steady_time far_deadline() {
    return std::chrono::steady_clock::now() + 10s;
}

imds_observation probe(asio::io_context& io, fake_http_server& server,
                       std::chrono::milliseconds timeout = 3000ms) {
    imds_options options;
    options.endpoint = server.url();
    options.timeout = timeout;
    return run(io, &server, probe_imds(io.get_executor(), options, far_deadline()));
}

// The token is a credential: it must not be in anything the probe reports.
void check_token_not_reported(const imds_observation& observation) {
    for (const auto& note : observation.notes) {
        CHECK(note.find(secret_token) == std::string::npos);
    }
    if (observation.failure) {
        CHECK(observation.failure->detail.find(secret_token) == std::string::npos);
    }
}

std::string all_notes(const imds_observation& observation) {
    std::string text;
    for (const auto& note : observation.notes) {
        text += note + "\n";
    }
    return text;
}

}  // namespace

// ---- Identity document and CIDR lists ----------------------------------------------------------

TEST_CASE("the identity document gives region and instance id", "[imds]") {
    SECTION("a captured document with every field") {
        const auto document = parse_identity_document(read_data("identity-document.json"));
        CHECK(document.region == "eu-central-1");
        CHECK(document.instance_id == "i-0123456789abcdef0");
    }
    SECTION("a compact document with only the two fields and a BOM-free UTF-8 extra") {
        const auto document = parse_identity_document(
            R"({"instanceId":"i-0abc","region":"us-gov-west-1","note":"\u00e9t\u00e9"})");
        CHECK(document.region == "us-gov-west-1");
        CHECK(document.instance_id == "i-0abc");
    }
}

TEST_CASE("a bad identity document is an error naming the field or the place", "[imds]") {
    const auto message_of = [](std::string_view text) {
        try {
            parse_identity_document(text);
        } catch (const std::runtime_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    SECTION("missing region") {
        const auto message = message_of(R"({"instanceId": "i-0123456789abcdef0"})");
        CHECK(message.find("no \"region\"") != std::string::npos);
    }
    SECTION("missing instance id") {
        CHECK(message_of(R"({"region": "eu-west-1"})").find("\"instanceId\"") != std::string::npos);
    }
    SECTION("region of the wrong type") {
        const auto message = message_of(R"({"region": 42, "instanceId": "i-1"})");
        CHECK(message.find("\"region\" is number") != std::string::npos);
        CHECK(message.find("expected a string") != std::string::npos);
    }
    SECTION("instance id null") {
        CHECK(message_of(R"({"region": "eu-west-1", "instanceId": null})")
                  .find("\"instanceId\" is null") != std::string::npos);
    }
    SECTION("region empty or not a region name") {
        CHECK(message_of(R"({"region": "", "instanceId": "i-1"})").find("empty") !=
              std::string::npos);
        CHECK(message_of(R"({"region": "eu-west-1.evil.example", "instanceId": "i-1"})")
                  .find("not a region name") != std::string::npos);
    }
    SECTION("not an object") {
        CHECK(message_of(R"(["eu-west-1"])").find("is array") != std::string::npos);
        CHECK(message_of("\"eu-west-1\"").find("is string") != std::string::npos);
    }
    SECTION("broken JSON says where") {
        const auto truncated = message_of(R"({"region": "eu-west-1", "instanceId": )");
        CHECK(truncated.find("not valid JSON (byte ") != std::string::npos);
        CHECK(truncated.find("json.exception") == std::string::npos);
        CHECK(message_of("").find("not valid JSON") != std::string::npos);
        CHECK(message_of("<html>Service Unavailable</html>").find("byte 1") != std::string::npos);
    }
}

TEST_CASE("CIDR lists skip blank lines and report garbage by line number", "[imds]") {
    std::vector<int> bad;
    SECTION("a captured list") {
        const auto blocks = parse_cidr_lines(read_data("vpc-ipv4-cidr-blocks.txt"), &bad);
        REQUIRE(blocks.size() == 2);
        CHECK(blocks[0].to_string() == "172.31.0.0/16");
        CHECK(blocks[1].to_string() == "10.77.0.0/20");
        CHECK(bad.empty());
    }
    SECTION("IPv6, CRLF, blank lines and no final newline") {
        const auto blocks =
            parse_cidr_lines("\r\n2a05:d014:1f:8c00::/56\r\n\r\n  10.0.0.0/8  ", &bad);
        REQUIRE(blocks.size() == 2);
        CHECK(blocks[0].to_string() == "2a05:d014:1f:8c00::/56");
        CHECK(blocks[1].to_string() == "10.0.0.0/8");
        CHECK(bad.empty());
    }
    SECTION("garbage lines are numbered from 1 and skipped") {
        const auto blocks =
            parse_cidr_lines("10.1.0.0/16\nnot a block\n10.2.0.0/33\n\n10.3.0.0/16\n<html>", &bad);
        REQUIRE(blocks.size() == 2);
        CHECK(blocks[1].to_string() == "10.3.0.0/16");
        CHECK(bad == std::vector<int>{2, 3, 6});
    }
    SECTION("bad lines may be ignored by the caller") {
        CHECK(parse_cidr_lines("x\n10.0.0.0/8", nullptr).size() == 1);
        CHECK(parse_cidr_lines("", nullptr).empty());
    }
}

// ---- HTTP: endpoints, requests, the response parser ---------------------------------------------

TEST_CASE("endpoint URLs are http://host[:port]", "[imds]") {
    SECTION("accepted forms") {
        auto endpoint = parse_http_endpoint("http://169.254.169.254");
        REQUIRE(endpoint);
        CHECK(endpoint->host == "169.254.169.254");
        CHECK(endpoint->port == 80);
        CHECK(endpoint->authority() == "169.254.169.254");

        endpoint = parse_http_endpoint("HTTP://[fd00:ec2::254]:8080/");
        REQUIRE(endpoint);
        CHECK(endpoint->host == "fd00:ec2::254");
        CHECK(endpoint->port == 8080);
        CHECK(endpoint->authority() == "[fd00:ec2::254]:8080");

        endpoint = parse_http_endpoint("http://imds.local:1338");
        REQUIRE(endpoint);
        CHECK(endpoint->host == "imds.local");
        CHECK(endpoint->port == 1338);
    }
    SECTION("rejected forms say why") {
        std::string error;
        CHECK_FALSE(parse_http_endpoint("https://169.254.169.254", &error));
        CHECK(error.find("not an http:// URL") != std::string::npos);
        CHECK_FALSE(parse_http_endpoint("http://169.254.169.254/latest", &error));
        CHECK(error.find("path") != std::string::npos);
        CHECK_FALSE(parse_http_endpoint("http://fd00:ec2::254", &error));
        CHECK(error.find("brackets") != std::string::npos);
        CHECK_FALSE(parse_http_endpoint("http://[fd00:ec2::254", &error));
        CHECK_FALSE(parse_http_endpoint("http://[not-v6]", &error));
        CHECK_FALSE(parse_http_endpoint("http://host:0", &error));
        CHECK_FALSE(parse_http_endpoint("http://host:65536", &error));
        CHECK_FALSE(parse_http_endpoint("http://host:+80", &error));
        CHECK_FALSE(parse_http_endpoint("http://host:", &error));
        CHECK_FALSE(parse_http_endpoint("http://", &error));
        CHECK(error.find("no host") != std::string::npos);
        CHECK_FALSE(parse_http_endpoint("http://user@host", &error));
        CHECK_FALSE(parse_http_endpoint("http://ho st", &error));
        CHECK_FALSE(parse_http_endpoint("169.254.169.254", &error));
    }
}

TEST_CASE("requests are framed with Host, Connection: close and Content-Length", "[imds]") {
    const http_endpoint endpoint{"127.0.0.1", 8080};
    SECTION("a PUT without body still says its length") {
        http_request request{"PUT", "/latest/api/token", {{"X-Ttl", "60"}}, ""};
        const auto wire = serialize_http_request(request, endpoint);
        REQUIRE(wire);
        CHECK(*wire ==
              "PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Ttl: 60\r\n"
              "Connection: close\r\nContent-Length: 0\r\n\r\n");
    }
    SECTION("a GET has no Content-Length, a body has one") {
        const auto get = serialize_http_request(http_request{}, http_endpoint{"::1", 80});
        REQUIRE(get);
        CHECK(*get == "GET / HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n");
        const auto post = serialize_http_request({"POST", "/x?a=1", {}, "hello"}, endpoint);
        REQUIRE(post);
        CHECK(post->find("Content-Length: 5\r\n\r\nhello") != std::string::npos);
    }
    SECTION("line breaks cannot be smuggled, and values are not quoted back") {
        std::string error;
        CHECK_FALSE(serialize_http_request(
            {"GET", "/", {{"X-aws-ec2-metadata-token", "abc\r\nX-Evil: 1"}}, ""}, endpoint,
            &error));
        CHECK(error.find("control character") != std::string::npos);
        CHECK(error.find("abc") == std::string::npos);
        CHECK_FALSE(serialize_http_request({"GET", "/a b", {}, ""}, endpoint, &error));
        CHECK_FALSE(serialize_http_request({"GET", "relative", {}, ""}, endpoint, &error));
        CHECK_FALSE(serialize_http_request({"GE T", "/", {}, ""}, endpoint, &error));
        CHECK_FALSE(
            serialize_http_request({"GET", "/", {{"Bad Name", "v"}}, ""}, endpoint, &error));
        CHECK_FALSE(
            serialize_http_request({"GET", "/", {{"content-length", "3"}}, ""}, endpoint, &error));
        CHECK(error.find("set by the client") != std::string::npos);
    }
}

TEST_CASE("the response parser frames bodies by length, chunks or end of connection", "[imds]") {
    SECTION("Content-Length, with header names in any case") {
        const std::string text =
            "HTTP/1.1 200 OK\r\ncontent-LENGTH: 5\r\nX-Aws-Ec2-Metadata-Token-Ttl-Seconds: 60\r\n"
            "\r\nhelloEXTRA";
        const auto parsed = parse_http_response(text, false);
        REQUIRE(parsed.status == http_parse_status::complete);
        CHECK(parsed.response.status == 200);
        CHECK(parsed.response.reason == "OK");
        CHECK(parsed.response.body == "hello");
        CHECK(parsed.consumed == text.size() - 5);
        REQUIRE(find_header(parsed.response.headers, "x-aws-ec2-metadata-token-ttl-seconds"));
        CHECK(*find_header(parsed.response.headers, "x-aws-ec2-metadata-token-ttl-seconds") ==
              "60");
        CHECK(find_header(parsed.response.headers, "Content-Type") == nullptr);
    }
    SECTION("every prefix of a chunked answer is incomplete, the whole is complete") {
        const std::string text =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            "4;name=value\r\nWiki\r\n0005\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n"
            "Expires: never\r\n\r\n";
        for (std::size_t n = 0; n < text.size(); ++n) {
            INFO("prefix of " << n << " bytes");
            REQUIRE(parse_http_response(text.substr(0, n), false).status ==
                    http_parse_status::incomplete);
            REQUIRE(parse_http_response(text.substr(0, n), true).status ==
                    http_parse_status::error);
        }
        const auto parsed = parse_http_response(text, false);
        REQUIRE(parsed.status == http_parse_status::complete);
        CHECK(parsed.response.body == "Wikipedia in\r\n\r\nchunks.");
        CHECK(parsed.consumed == text.size());
    }
    SECTION("without a length the body ends with the connection") {
        const std::string text = "HTTP/1.0 200 OK\nServer: old\n\nall of it";
        CHECK(parse_http_response(text, false).status == http_parse_status::incomplete);
        const auto parsed = parse_http_response(text, true);
        REQUIRE(parsed.status == http_parse_status::complete);
        CHECK(parsed.response.body == "all of it");
        CHECK(*find_header(parsed.response.headers, "server") == "old");
    }
    SECTION("interim answers are skipped, 204 and HEAD have no body") {
        auto parsed = parse_http_response(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
            false);
        REQUIRE(parsed.status == http_parse_status::complete);
        CHECK(parsed.response.status == 404);
        CHECK(parsed.response.body == "no");
        parsed = parse_http_response("HTTP/1.1 204 No Content\r\n\r\n", false);
        REQUIRE(parsed.status == http_parse_status::complete);
        CHECK(parsed.response.body.empty());
        http_parse_options head;
        head.head_request = true;
        parsed = parse_http_response("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", false, head);
        REQUIRE(parsed.status == http_parse_status::complete);
        CHECK(parsed.response.body.empty());
        parsed = parse_http_response("HTTP/1.1 200\r\nContent-Length: 1, 1\r\n\r\nx", false);
        REQUIRE(parsed.status == http_parse_status::complete);
        CHECK(parsed.response.reason.empty());
    }
}

TEST_CASE("the response parser rejects malformed and oversized answers", "[imds]") {
    const auto error_of = [](std::string_view text, bool at_eof = false,
                             http_parse_options options = {}) {
        const auto parsed = parse_http_response(text, at_eof, options);
        return parsed.status == http_parse_status::error ? parsed.error : std::string("no error");
    };
    SECTION("truncated answers, once the connection is closed") {
        CHECK(error_of("", true) == "connection closed without an answer");
        CHECK(error_of("HTTP/1.1 200 OK\r\nContent-Le", true).find("inside the header block") !=
              std::string::npos);
        CHECK(error_of("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true) ==
              "body truncated: 3 of 10 bytes before the connection closed");
        CHECK(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", true)
                  .find("inside the chunked body") != std::string::npos);
    }
    SECTION("garbage status lines, recognised from the first bytes") {
        CHECK(error_of("SSH-2.0-OpenSSH_9.2").find("does not start with an HTTP status line") !=
              std::string::npos);
        CHECK(error_of("\x16\x03\x01\x02").find("\\x16\\x03") != std::string::npos);
        CHECK(error_of("HTTP/1.1 OK\r\n\r\n").find("malformed status line") != std::string::npos);
        CHECK(error_of("HTTP/1.1 2000 OK\r\n\r\n").find("malformed status code") !=
              std::string::npos);
        CHECK(error_of("HTTP/1.1 099 Low\r\n\r\n").find("out of range") != std::string::npos);
        CHECK(error_of("HTTP/2.0 200 OK\r\n\r\n").find("unsupported HTTP version") !=
              std::string::npos);
        CHECK(error_of("HTTP/1.1 101 Switching Protocols\r\n\r\n").find("101") !=
              std::string::npos);
    }
    SECTION("malformed header lines") {
        CHECK(error_of("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n").find("without a colon") !=
              std::string::npos);
        CHECK(error_of("HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n").find("folded") !=
              std::string::npos);
        CHECK(error_of("HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n").find("invalid header name") !=
              std::string::npos);
        CHECK(error_of("HTTP/1.1 200 OK\r\nA: x\x01y\r\n\r\n").find("control character") !=
              std::string::npos);
    }
    SECTION("oversized header blocks, complete or not") {
        const std::string big(17 * 1024, 'a');
        CHECK(error_of("HTTP/1.1 200 OK\r\nX-Big: " + big).find("header block is larger") !=
              std::string::npos);
        CHECK(error_of("HTTP/1.1 200 OK\r\nX-Big: " + big + "\r\n\r\n")
                  .find("header block is larger") != std::string::npos);
        std::string interim;
        for (int i = 0; i < 800; ++i) {
            interim += "HTTP/1.1 100 Continue\r\n\r\n";
        }
        CHECK(error_of(interim).find("header block is larger") != std::string::npos);
    }
    SECTION("bad Content-Length values") {
        const auto with_length = [&](const std::string& value) {
            return error_of("HTTP/1.1 200 OK\r\nContent-Length: " + value + "\r\n\r\nabc");
        };
        CHECK(with_length("abc").find("invalid Content-Length 'abc'") != std::string::npos);
        CHECK(with_length("-1").find("invalid Content-Length") != std::string::npos);
        CHECK(with_length("+3").find("invalid Content-Length") != std::string::npos);
        CHECK(with_length("").find("invalid Content-Length") != std::string::npos);
        CHECK(with_length("99999999999999999999999").find("invalid Content-Length") !=
              std::string::npos);
        CHECK(with_length("3, 4") == "conflicting Content-Length values");
        CHECK(error_of("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabc") ==
              "conflicting Content-Length values");
        CHECK(with_length("1048577") == "body of 1048577 bytes is larger than 1048576 bytes");
    }
    SECTION("bad chunk sizes and framing") {
        const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        CHECK(error_of(head + "zz\r\n").find("invalid chunk size 'zz'") != std::string::npos);
        CHECK(error_of(head + "\r\n").find("invalid chunk size") != std::string::npos);
        CHECK(error_of(head + "-5\r\n").find("invalid chunk size") != std::string::npos);
        CHECK(error_of(head + "0x5\r\n").find("invalid chunk size") != std::string::npos);
        CHECK(error_of(head + "10000000000000000\r\n").find("invalid chunk size") !=
              std::string::npos);
        CHECK(error_of(head + "100001\r\n").find("chunked body is larger") != std::string::npos);
        CHECK(error_of(head + "3\r\nabcXY").find("not followed by CRLF") != std::string::npos);
        CHECK(error_of(head + "1" + std::string(5000, ' ')).find("chunk size line is longer") !=
              std::string::npos);
    }
    SECTION("bodies over the limit, whatever the framing") {
        http_parse_options small;
        small.limits.max_body_bytes = 10;
        small.limits.max_header_bytes = 200;
        CHECK(error_of("HTTP/1.1 200 OK\r\n\r\n" + std::string(11, 'x'), false, small) ==
              "body is larger than 10 bytes");
        const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        CHECK(error_of(chunked + "6\r\nabcdef\r\n6\r\n", false, small) ==
              "chunked body is larger than 10 bytes");
        std::string chatty = chunked;
        for (int i = 0; i < 10; ++i) {
            chatty += "0000000000001;ext=" + std::string(20, 'e') + "\r\nx\r\n";
        }
        CHECK(error_of(chatty, false, small).find("chunk framing exceeds") != std::string::npos);
        CHECK(error_of(chunked + "1\r\nx\r\n0\r\nX-T: " + std::string(300, 't'), false, small)
                  .find("trailer is larger") != std::string::npos);
    }
}

// ---- HTTP client over loopback
// -------------------------------------------------------------------

TEST_CASE("the HTTP client reads answers in pieces, chunked or closed", "[imds]") {
    asio::io_context io;
    SECTION("a chunked answer written in several pieces") {
        fake_http_server server(io, [](const received_request&) {
            const auto text = chunked_answer(200, {"first,", std::string(3000, 'm'), ",last"});
            return reply{{text.substr(0, 20), text.substr(20, 70), text.substr(90)}};
        });
        const auto exchange = run(io, &server,
                                  send_http_request(io.get_executor(), server.endpoint(),
                                                    http_request{}, far_deadline()));
        REQUIRE(exchange.response);
        CHECK_FALSE(exchange.failure);
        CHECK(exchange.response->body == "first," + std::string(3000, 'm') + ",last");
        REQUIRE(server.requests().size() == 1);
        CHECK(*find_header(server.requests()[0].headers, "connection") == "close");
        CHECK(*find_header(server.requests()[0].headers, "host") == server.endpoint().authority());
    }
    SECTION("a body that ends with the connection") {
        fake_http_server server(io, [](const received_request&) {
            return reply{{"HTTP/1.1 200 OK\r\n\r\n", "until ", "the end"}};
        });
        const auto exchange = run(io, &server,
                                  send_http_request(io.get_executor(), server.endpoint(),
                                                    http_request{}, far_deadline()));
        REQUIRE(exchange.response);
        CHECK(exchange.response->body == "until the end");
    }
    SECTION("a body over the caller's limit is an error, not memory") {
        fake_http_server server(io, [](const received_request&) {
            return reply{{"HTTP/1.1 200 OK\r\n\r\n", std::string(5000, 'x')}, true};
        });
        http_limits limits;
        limits.max_body_bytes = 4096;
        const auto exchange = run(io, &server,
                                  send_http_request(io.get_executor(), server.endpoint(),
                                                    http_request{}, far_deadline(), limits));
        REQUIRE(exchange.failure);
        CHECK(exchange.failure->phase == probe_phase::http);
        CHECK(exchange.failure->reason == failure_reason::http_error);
        CHECK(exchange.failure->detail.find("larger than 4096 bytes") != std::string::npos);
    }
    SECTION("a closed port is refused in the connect phase") {
        http_endpoint closed{"127.0.0.1", 0};
        {
            tcp::acceptor probe_port(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
            closed.port = probe_port.local_endpoint().port();
        }
        const auto exchange =
            run(io, nullptr,
                send_http_request(io.get_executor(), closed, http_request{}, far_deadline()));
        REQUIRE(exchange.failure);
        CHECK(exchange.failure->phase == probe_phase::connect);
        CHECK(exchange.failure->reason == failure_reason::refused);
        CHECK(exchange.failure->detail.find("127.0.0.1:" + std::to_string(closed.port)) !=
              std::string::npos);
    }
    SECTION("a silent server ends at the deadline with timeout") {
        fake_http_server server(io, [](const received_request&) {
            return reply{{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"}, true};
        });
        const auto exchange =
            run(io, &server,
                send_http_request(io.get_executor(), server.endpoint(), http_request{},
                                  std::chrono::steady_clock::now() + 200ms));
        REQUIRE(exchange.failure);
        CHECK(exchange.failure->phase == probe_phase::http);
        CHECK(exchange.failure->reason == failure_reason::timeout);
        CHECK(exchange.failure->detail.find("42 bytes received") != std::string::npos);
        CHECK(exchange.elapsed >= 150ms);
        CHECK(exchange.elapsed < 2000ms);
    }
    SECTION("a deadline already passed sends nothing") {
        fake_http_server server(io, fake_imds({}));
        const auto exchange =
            run(io, &server,
                send_http_request(io.get_executor(), server.endpoint(), http_request{},
                                  std::chrono::steady_clock::now() - 1ms));
        REQUIRE(exchange.failure);
        CHECK(exchange.failure->reason == failure_reason::timeout);
        CHECK(server.requests().empty());
    }
}

// ---- The IMDS probe against a fake IMDS ---------------------------------------------------------

TEST_CASE("a healthy IMDSv2 gives region, instance, MAC and VPC blocks in five requests",
          "[imds]") {
    asio::io_context io;
    imds_behaviour behaviour;
    SECTION("plain bodies, no IPv6 in the VPC") {}
    SECTION("chunked bodies and IPv6 blocks") {
        behaviour.chunked = true;
        behaviour.ipv6_blocks = read_data("vpc-ipv6-cidr-blocks.txt");
    }
    fake_http_server server(io, fake_imds(behaviour));
    const auto observation = probe(io, server);

    CHECK_FALSE(observation.failure);
    CHECK(observation.notes.empty());
    CHECK(observation.reachable);
    CHECK(observation.token_accepted);
    CHECK(observation.region == "eu-central-1");
    CHECK(observation.instance_id == "i-0123456789abcdef0");
    CHECK(observation.mac == instance_mac);
    REQUIRE(observation.vpc_cidrs.size() >= 2);
    CHECK(observation.vpc_cidrs[0].to_string() == "172.31.0.0/16");
    CHECK(observation.vpc_cidrs[1].to_string() == "10.77.0.0/20");
    if (behaviour.ipv6_blocks) {
        REQUIRE(observation.vpc_cidrs.size() == 3);
        CHECK(observation.vpc_cidrs[2].to_string() == "2a05:d014:1f:8c00::/56");
    } else {
        CHECK(observation.vpc_cidrs.size() == 2);
    }
    // Both lists are known: a 404 for IPv6 says the VPC has no IPv6 blocks.
    CHECK(observation.vpc_ipv4_known);
    CHECK(observation.vpc_ipv6_known);

    const auto& requests = server.requests();
    REQUIRE(requests.size() == 5);
    CHECK(requests[0].method == "PUT");
    CHECK(requests[0].target == "/latest/api/token");
    REQUIRE(find_header(requests[0].headers, "X-aws-ec2-metadata-token-ttl-seconds"));
    CHECK(*find_header(requests[0].headers, "X-aws-ec2-metadata-token-ttl-seconds") == "60");
    CHECK(find_header(requests[0].headers, "X-aws-ec2-metadata-token") == nullptr);
    for (std::size_t i = 1; i < requests.size(); ++i) {
        CHECK(requests[i].method == "GET");
        REQUIRE(find_header(requests[i].headers, "X-aws-ec2-metadata-token"));
        CHECK(*find_header(requests[i].headers, "X-aws-ec2-metadata-token") == secret_token);
    }
    CHECK(requests[1].target == "/latest/dynamic/instance-identity/document");
    CHECK(requests[2].target == "/latest/meta-data/mac");
    check_token_not_reported(observation);
}

TEST_CASE("an IMDS without IMDSv2 is read with IMDSv1 and says so", "[imds]") {
    asio::io_context io;
    imds_behaviour behaviour;
    int status = 0;
    SECTION("the token PUT answers 404") {
        status = 404;
    }
    SECTION("the token PUT answers 405") {
        status = 405;
    }
    behaviour.token_status = status;
    fake_http_server server(io, fake_imds(behaviour));
    const auto observation = probe(io, server);

    CHECK_FALSE(observation.failure);
    CHECK(observation.reachable);
    CHECK_FALSE(observation.token_accepted);
    CHECK(observation.region == "eu-central-1");
    CHECK(observation.vpc_cidrs.size() == 2);
    REQUIRE(observation.notes.size() == 1);
    CHECK(observation.notes[0] ==
          "IMDSv2 token request answered " + std::to_string(status) + "; using IMDSv1");
    for (std::size_t i = 1; i < server.requests().size(); ++i) {
        CHECK(find_header(server.requests()[i].headers, "X-aws-ec2-metadata-token") == nullptr);
    }
}

TEST_CASE("an IMDS answering 403 is turned off and the probe stops", "[imds]") {
    asio::io_context io;
    imds_behaviour behaviour;
    behaviour.token_status = 403;
    fake_http_server server(io, fake_imds(behaviour));
    const auto observation = probe(io, server);

    REQUIRE(observation.failure);
    CHECK(observation.failure->phase == probe_phase::http);
    CHECK(observation.failure->reason == failure_reason::http_error);
    CHECK(observation.failure->detail ==
          "IMDS answered 403: the metadata service is turned off for this instance");
    CHECK(observation.reachable);
    CHECK_FALSE(observation.region);
    CHECK(server.requests().size() == 1);
}

TEST_CASE("an IMDS that accepts and never answers ends the probe at its timeout", "[imds]") {
    asio::io_context io;
    fake_http_server server(io, [](const received_request&) { return reply{{}, true}; });
    const auto timeout = 300ms;
    const auto started = std::chrono::steady_clock::now();
    const auto observation = probe(io, server, timeout);
    const auto took = std::chrono::steady_clock::now() - started;

    REQUIRE(observation.failure);
    CHECK(observation.failure->reason == failure_reason::timeout);
    CHECK(observation.failure->phase == probe_phase::http);
    CHECK(observation.failure->detail.find("token request") != std::string::npos);
    CHECK_FALSE(observation.reachable);
    CHECK(observation.elapsed >= 250ms);
    CHECK(took < timeout + 1500ms);
    CHECK(server.requests().size() == 1);
}

TEST_CASE("the caller's deadline wins over a longer probe timeout", "[imds]") {
    asio::io_context io;
    fake_http_server server(io, [](const received_request&) { return reply{{}, true}; });
    imds_options options;
    options.endpoint = server.url();
    options.timeout = 5000ms;
    const auto observation =
        run(io, &server,
            probe_imds(io.get_executor(), options, std::chrono::steady_clock::now() + 200ms));
    REQUIRE(observation.failure);
    CHECK(observation.failure->reason == failure_reason::timeout);
    CHECK(observation.elapsed < 1500ms);
}

TEST_CASE("network failures before any answer leave IMDS unreachable", "[imds]") {
    asio::io_context io;
    SECTION("a closed port") {
        std::uint16_t port = 0;
        {
            tcp::acceptor closed(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
            port = closed.local_endpoint().port();
        }
        imds_options options;
        options.endpoint = "http://127.0.0.1:" + std::to_string(port);
        const auto observation =
            run(io, nullptr, probe_imds(io.get_executor(), options, far_deadline()));
        REQUIRE(observation.failure);
        CHECK(observation.failure->phase == probe_phase::connect);
        CHECK(observation.failure->reason == failure_reason::refused);
        CHECK_FALSE(observation.reachable);
    }
    SECTION("an unusable endpoint setting") {
        imds_options options;
        options.endpoint = "https://169.254.169.254";
        const auto observation =
            run(io, nullptr, probe_imds(io.get_executor(), options, far_deadline()));
        REQUIRE(observation.failure);
        CHECK(observation.failure->reason == failure_reason::other);
        CHECK(observation.failure->detail.find("not an http:// URL") != std::string::npos);
    }
}

TEST_CASE("garbage from IMDS is an http_error, never a crash", "[imds]") {
    asio::io_context io;
    SECTION("garbage instead of a status line") {
        fake_http_server server(io, [](const received_request&) {
            return reply{{"220 smtp.example ESMTP ready\r\n"}, true};
        });
        const auto observation = probe(io, server);
        REQUIRE(observation.failure);
        CHECK(observation.failure->phase == probe_phase::http);
        CHECK(observation.failure->reason == failure_reason::http_error);
        CHECK(observation.failure->detail.find("does not start with an HTTP status line") !=
              std::string::npos);
        CHECK_FALSE(observation.reachable);
    }
    SECTION("a token, then garbage that echoes it") {
        fake_http_server server(io, [](const received_request& request) {
            if (request.method == "PUT") {
                return reply{{http_answer(200, secret_token)}};
            }
            return reply{{"OOPS " + secret_token + "\r\n"}};
        });
        const auto observation = probe(io, server);
        REQUIRE(observation.failure);
        CHECK(observation.failure->reason == failure_reason::http_error);
        CHECK(observation.failure->detail.find("'OOPS <token>'") != std::string::npos);
        CHECK(server.requests().size() == 2);  // a broken IMDS is not asked again
        CHECK(observation.token_accepted);
        check_token_not_reported(observation);
    }
    SECTION("an identity document that echoes the token inside broken JSON") {
        imds_behaviour behaviour;
        behaviour.document = "{\"region\": \"eu-west-1\", \"instanceId\": \"" + secret_token;
        fake_http_server server(io, fake_imds(behaviour));
        const auto observation = probe(io, server);
        REQUIRE(observation.failure);
        CHECK(observation.failure->detail.find("not valid JSON") != std::string::npos);
        CHECK(all_notes(observation).find("<token>") != std::string::npos);
        check_token_not_reported(observation);
    }
}

TEST_CASE("an identity document without region is a failure, the VPC blocks still come", "[imds]") {
    asio::io_context io;
    imds_behaviour behaviour;
    behaviour.document = R"({"instanceId": "i-0123456789abcdef0", "accountId": "111122223333"})";
    fake_http_server server(io, fake_imds(behaviour));
    const auto observation = probe(io, server);

    REQUIRE(observation.failure);
    CHECK(observation.failure->phase == probe_phase::http);
    CHECK(observation.failure->reason == failure_reason::http_error);
    CHECK(observation.failure->detail == "identity document has no \"region\" field");
    CHECK(all_notes(observation).find("no \"region\" field") != std::string::npos);
    CHECK_FALSE(observation.region);
    CHECK(observation.reachable);
    CHECK(observation.vpc_cidrs.size() == 2);
}

TEST_CASE("missing or odd metadata items are notes, not failures", "[imds]") {
    asio::io_context io;
    imds_behaviour behaviour;
    std::string expected;
    // Which block lists the probe may place addresses with; a partly read list is not one.
    bool ipv4_known = false;
    bool ipv6_known = false;
    SECTION("no MAC") {
        behaviour.mac_missing = true;
        expected = "meta-data/mac: HTTP 404 Not Found\n";
    }
    SECTION("garbage in the block list") {
        behaviour.ipv4_blocks = "172.31.0.0/16\n\nnonsense\n";
        expected = "vpc-ipv4-cidr-blocks: line 3 is not a CIDR block\n";
        ipv6_known = true;
    }
    SECTION("an empty block list") {
        behaviour.ipv4_blocks = "";
        expected = "vpc-ipv4-cidr-blocks: empty list\n";
        ipv6_known = true;
    }
    SECTION("the IPv6 block list fails") {
        behaviour.ipv6_status = 403;
        expected = "vpc-ipv6-cidr-blocks: HTTP 403 Forbidden\n";
        ipv4_known = true;
    }
    fake_http_server server(io, fake_imds(behaviour));
    const auto observation = probe(io, server);

    CHECK_FALSE(observation.failure);
    CHECK(observation.region == "eu-central-1");
    CHECK(all_notes(observation) == expected);
    CHECK(observation.vpc_ipv4_known == ipv4_known);
    CHECK(observation.vpc_ipv6_known == ipv6_known);
    check_token_not_reported(observation);
}

TEST_CASE("a token the IMDS rejects shows as 401 on the identity document", "[imds]") {
    asio::io_context io;
    fake_http_server server(io, [](const received_request& request) {
        if (request.method == "PUT") {
            return reply{{http_answer(200, "expired-" + secret_token)}};
        }
        return reply{{http_answer(401, "")}};
    });
    const auto observation = probe(io, server);
    REQUIRE(observation.failure);
    CHECK(observation.failure->detail ==
          "identity document: IMDS answered 401 Unauthorized (the token was not accepted)");
    CHECK(observation.notes == std::vector<std::string>{"meta-data/mac: HTTP 401 Unauthorized"});
    CHECK(server.requests().size() == 3);
}
