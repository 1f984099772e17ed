// SPDX-License-Identifier: Apache-2.0
// Tests of proxy URL parsing, redaction and NO_PROXY matching against Go's rules.
#include <catch2/catch.hpp>

#include "probes/proxy.hpp"

using namespace ssm_doctor;

TEST_CASE("proxy URLs split into host and port", "[proxy]") {
    SECTION("with a scheme, credentials and a path") {
        const auto proxy = parse_proxy_url("http://user:pw@proxy.internal:3128/");
        REQUIRE(proxy);
        CHECK(proxy->host == "proxy.internal");
        CHECK(proxy->port == 3128);
    }
    SECTION("default ports by scheme") {
        CHECK(parse_proxy_url("http://proxy.internal")->port == 80);
        CHECK(parse_proxy_url("HTTP://proxy.internal")->port == 80);
        CHECK(parse_proxy_url("https://proxy.internal")->port == 443);
        CHECK(parse_proxy_url("socks5://proxy.internal")->port == 1080);
        CHECK(parse_proxy_url("proxy.internal")->port == 80);
        CHECK(parse_proxy_url("http://proxy.internal:")->port == 80);
    }
    SECTION("without a scheme, as Go accepts it") {
        const auto proxy = parse_proxy_url("10.0.0.5:8080");
        REQUIRE(proxy);
        CHECK(proxy->host == "10.0.0.5");
        CHECK(proxy->port == 8080);
        CHECK(parse_proxy_url("  proxy:3128\n")->host == "proxy");
    }
    SECTION("IPv6 literals in brackets") {
        const auto proxy = parse_proxy_url("http://[fd00::1]:3128");
        REQUIRE(proxy);
        CHECK(proxy->host == "fd00::1");
        CHECK(proxy->port == 3128);
        CHECK(parse_proxy_url("http://[fd00::1]")->port == 80);
    }
    SECTION("a password holding '@' and ':'") {
        const auto proxy = parse_proxy_url("http://u:p@ss:w@rd@proxy.internal:3128");
        REQUIRE(proxy);
        CHECK(proxy->host == "proxy.internal");
        CHECK(proxy->port == 3128);
    }
    SECTION("text that names no usable proxy") {
        for (const char* text :
             {"", "   ", "http://", "http://:3128", "http://user:pw@", "http://proxy:99999",
              "http://proxy:0", "http://proxy:31a8", "http://proxy:-1", "ftp://proxy:21",
              "http://[fd00::1:3128", "http://[fd00::1]x:3128", "http://pro xy:3128"}) {
            INFO("url: \"" << text << '"');
            CHECK_FALSE(parse_proxy_url(text));
        }
    }
}

TEST_CASE("credentials never survive redaction", "[proxy]") {
    CHECK(redact_proxy_url("http://user:secret@proxy.internal:3128") ==
          "http://proxy.internal:3128");
    CHECK(redact_proxy_url("http://user:s@cr@t@proxy.internal:3128/x") ==
          "http://proxy.internal:3128/x");
    CHECK(redact_proxy_url("user:secret@proxy:3128") == "proxy:3128");
    CHECK(redact_proxy_url("http://proxy.internal:3128") == "http://proxy.internal:3128");
    CHECK(redact_proxy_url("garbage without a host") == "garbage without a host");
    CHECK(redact_proxy_url("ftp://a:secret@") == "ftp://");
    CHECK(redact_proxy_url("") == "");
}

TEST_CASE("NO_PROXY matches hosts the way the agent's Go HTTP stack does", "[proxy]") {
    const std::string_view list =
        "169.254.169.254, .internal,amazonaws.com.cn ,*.example.org,10.1.0.0/16,"
        "fd00:ec2::/32,vpce.local:8443,[fd12::7]:443,,192.0.2.9";

    SECTION("plain domains match themselves and sub-domains") {
        CHECK(proxy_excluded("amazonaws.com.cn", list));
        CHECK(proxy_excluded("ssm.cn-north-1.amazonaws.com.cn", list));
        CHECK_FALSE(proxy_excluded("xamazonaws.com.cn", list));
        CHECK_FALSE(proxy_excluded("ssm.us-east-1.amazonaws.com", list));
    }
    SECTION("a leading dot or '*.' matches sub-domains only") {
        CHECK(proxy_excluded("proxy.internal", list));
        CHECK(proxy_excluded("a.b.internal", list));
        CHECK_FALSE(proxy_excluded("internal", list));
        CHECK(proxy_excluded("www.example.org", list));
        CHECK_FALSE(proxy_excluded("example.org", list));
    }
    SECTION("case and surrounding blanks do not matter") {
        CHECK(proxy_excluded("SSM.CN-NORTH-1.AMAZONAWS.COM.CN", list));
        CHECK(proxy_excluded("ssm.x.amazonaws.com", " AmazonAWS.com "));
    }
    SECTION("IP literals match exactly, CIDR blocks by containment") {
        CHECK(proxy_excluded("169.254.169.254", list));
        CHECK_FALSE(proxy_excluded("169.254.169.253", list));
        CHECK(proxy_excluded("10.1.200.3", list));
        CHECK_FALSE(proxy_excluded("10.2.0.1", list));
        CHECK(proxy_excluded("fd00:ec2::254", list));
        CHECK(proxy_excluded("[fd00:ec2::254]", list));
        CHECK(proxy_excluded("[fd00:ec2::254]:443", list));
        CHECK_FALSE(proxy_excluded("fd01::1", list));
        CHECK(proxy_excluded("192.0.2.9", list));
        CHECK(proxy_excluded("::ffff:10.1.0.7", list));
    }
    SECTION("a CIDR block never matches a name") {
        CHECK_FALSE(proxy_excluded("ssm.internal.example", "10.0.0.0/8"));
    }
    SECTION("entries with a port match that port only; hosts default to 443") {
        CHECK(proxy_excluded("vpce.local:8443", list));
        CHECK_FALSE(proxy_excluded("vpce.local", list));
        CHECK_FALSE(proxy_excluded("vpce.local:443", list));
        CHECK(proxy_excluded("fd12::7", list));
        CHECK_FALSE(proxy_excluded("[fd12::7]:8443", list));
        CHECK(proxy_excluded("ssm.eu-west-1.amazonaws.com", "amazonaws.com:443"));
    }
    SECTION("'*' alone excludes everything") {
        CHECK(proxy_excluded("anything.example", "*"));
        CHECK(proxy_excluded("10.9.9.9", "foo, *"));
        CHECK_FALSE(proxy_excluded("anything.example", "*foo"));
    }
    SECTION("localhost and loopback addresses are never proxied") {
        CHECK(proxy_excluded("localhost", ""));
        CHECK(proxy_excluded("127.0.0.1", ""));
        CHECK(proxy_excluded("127.8.0.1", ""));
        CHECK(proxy_excluded("::1", ""));
        CHECK(proxy_excluded("[::1]:443", ""));
    }
    SECTION("empty lists, empty entries and garbage exclude nothing") {
        CHECK_FALSE(proxy_excluded("ssm.us-east-1.amazonaws.com", ""));
        CHECK_FALSE(proxy_excluded("ssm.us-east-1.amazonaws.com", ", ,,"));
        CHECK_FALSE(proxy_excluded("ssm.us-east-1.amazonaws.com", "/,:443,[,.,*.,10.0.0.0/99"));
        CHECK_FALSE(proxy_excluded("", "amazonaws.com"));
        CHECK_FALSE(proxy_excluded("[fd00::1", "fd00::1"));
    }
}
