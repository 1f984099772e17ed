// SPDX-License-Identifier: Apache-2.0
// Tests of the agent version parser on the agent's own output and log text.
#include <catch2/catch.hpp>

#include "probes/agent_version.hpp"

using namespace ssm_doctor;
using namespace std::literals;

namespace {

agent_version v(unsigned a, unsigned b, unsigned c, unsigned d) {
    return {{a, b, c, d}};
}

}  // namespace

TEST_CASE("a four-part version parses and prints back", "[agent]") {
    const auto parsed = parse_agent_version("3.3.1142.0");
    REQUIRE(parsed);
    CHECK(*parsed == v(3, 3, 1142, 0));
    CHECK(parsed->to_string() == "3.3.1142.0");
    CHECK(v(4294967295u, 0, 0, 1).to_string() == "4294967295.0.0.1");
}

TEST_CASE("versions compare part by part, not as text", "[agent]") {
    CHECK(v(3, 3, 40, 0) < v(3, 3, 380, 0));
    CHECK(v(3, 1, 1927, 0) < v(3, 3, 40, 0));
    CHECK(v(3, 3, 40, 0) == *parse_agent_version("3.3.40.0"));
    CHECK(v(3, 3, 39, 9) < v(3, 3, 40, 0));
    CHECK(v(10, 0, 0, 0) > v(9, 99, 99, 99));
}

TEST_CASE("anything but exactly four decimal numbers is not a version", "[agent]") {
    for (const char* text :
         {"", "3", "3.3", "3.3.1142", "3.3.1142.0.1", "3.3.1142.", ".3.3.1142", "3..1142.0",
          " 3.3.1142.0", "3.3.1142.0 ", "3.3.1142.0\n", "v3.3.1142.0", "+3.3.1142.0", "-3.3.1142.0",
          "3.3.0x10.0", "3.3.1142.0-1", "3.3.abc.0", "99999999999.0.0.0", "3,3,1142,0"}) {
        INFO("text: \"" << text << '"');
        CHECK_FALSE(parse_agent_version(text));
    }
}

TEST_CASE("the version comes out of the -version output", "[agent]") {
    SECTION("the usual line") {
        CHECK(version_from_version_output("SSM Agent version: 3.3.1142.0\n") == v(3, 3, 1142, 0));
    }
    SECTION("CRLF, tabs and other lines around it") {
        CHECK(version_from_version_output("warning: something\r\nSSM Agent version:\t3.1.1927.0"
                                          "\r\nbye\n") == v(3, 1, 1927, 0));
    }
    SECTION("a broken first mention is skipped for a good later one") {
        CHECK(version_from_version_output("SSM Agent version: unknown\nSSM Agent version: "
                                          "3.2.582.0\n") == v(3, 2, 582, 0));
    }
    SECTION("garbage and near misses give nothing") {
        CHECK_FALSE(version_from_version_output(""));
        CHECK_FALSE(version_from_version_output("Usage of amazon-ssm-agent:\n  -register\n"));
        CHECK_FALSE(version_from_version_output("SSM Agent version:"));
        CHECK_FALSE(version_from_version_output("SSM Agent version: 3.3.1142"));
        CHECK_FALSE(version_from_version_output("SSM Agent version: 3.3.1142.0.7\n"));
        CHECK_FALSE(version_from_version_output("ssm agent version: 3.3.1142.0"));
        CHECK_FALSE(version_from_version_output("SSM Agent version: 3.3\0.1142.0"sv));
    }
}

TEST_CASE("the last start line of the log gives the running version", "[agent]") {
    const std::string log =
        "2024-09-01 08:00:00.0001 INFO [amazon-ssm-agent] amazon-ssm-agent - v3.1.1927.0\n"
        "2024-09-01 08:00:00.0100 INFO [amazon-ssm-agent] OS: linux, Arch: amd64\n"
        "2024-09-06 10:00:00.1234 INFO [amazon-ssm-agent] amazon-ssm-agent - v3.3.1142.0\r\n"
        "2024-09-06 10:00:01.0000 INFO [ssm-agent-worker] ssm-agent-worker - v3.3.1142.0\n"
        "2024-09-06 10:00:01.5000 INFO [ssm-agent-worker] [MessageService] SSM Connection "
        "channel status is set to ssmmessages\n";

    SECTION("several starts: the last one wins") {
        CHECK(version_from_log(log) == v(3, 3, 1142, 0));
    }
    SECTION("a start line cut in the middle is skipped for the previous one") {
        CHECK(version_from_log(log + "2024-09-07 INFO [amazon-ssm-agent] amazon-ssm-agent - v3.3."
                                     "\n") == v(3, 3, 1142, 0));
    }
    SECTION("the line may be the last one, without a newline") {
        CHECK(version_from_log("x amazon-ssm-agent - v3.3.40.0") == v(3, 3, 40, 0));
        CHECK(version_from_log("amazon-ssm-agent - v3.3.40.0") == v(3, 3, 40, 0));
    }
    SECTION("a worker's start line alone is not the supervisor's version") {
        CHECK_FALSE(version_from_log("INFO [ssm-agent-worker] ssm-agent-worker - v3.3.1142.0\n"));
    }
    SECTION("no start line, or garbage") {
        CHECK_FALSE(version_from_log(""));
        CHECK_FALSE(version_from_log("amazon-ssm-agent - v"));
        CHECK_FALSE(version_from_log("amazon-ssm-agent - vX.Y\namazon-ssm-agent - v\n"));
        CHECK_FALSE(version_from_log(std::string(1000, '\0')));
    }
}
