// SPDX-License-Identifier: Apache-2.0
// Tests of the command line: every option, and the errors a person can make.
#include <sstream>

#include <catch2/catch.hpp>

#include "agent/app.hpp"
#include "agent/cli.hpp"

using namespace ssm_doctor;
using namespace std::chrono_literals;

TEST_CASE("check takes every documented option", "[cli]") {
    const auto parsed =
        parse_command_line({"check", "--config", "/tmp/x.yaml", "--region", "eu-west-1", "--output",
                            "json", "--timeout", "1.5", "--log-level", "debug"});
    const auto& check = std::get<check_command>(parsed);
    CHECK(check.config_file == std::filesystem::path("/tmp/x.yaml"));
    CHECK(check.region == "eu-west-1");
    CHECK(check.output == output_format::json);
    CHECK(check.timeout == 1500ms);
    CHECK(check.log_level == "debug");
}

TEST_CASE("options also take the --name=value form", "[cli]") {
    const auto parsed = parse_command_line({"check", "--output=table", "--timeout=2"});
    const auto& check = std::get<check_command>(parsed);
    CHECK(check.output == output_format::table);
    CHECK(check.timeout == 2000ms);
    CHECK_FALSE(check.config_file);
}

TEST_CASE("watch takes a configuration file and a log level", "[cli][watch]") {
    const auto parsed =
        parse_command_line({"watch", "--config=/etc/ssm-doctor/x.yaml", "--log-level", "debug"});
    const auto& watch = std::get<watch_command>(parsed);
    CHECK(watch.config_file == std::filesystem::path("/etc/ssm-doctor/x.yaml"));
    CHECK(watch.log_level == "debug");

    const auto bare = std::get<watch_command>(parse_command_line({"watch"}));
    CHECK_FALSE(bare.config_file);
    CHECK_FALSE(bare.log_level);

    // Options of check that make no sense for a daemon are refused.
    CHECK_THROWS_WITH(parse_command_line({"watch", "--output", "json"}),
                      Catch::Contains("unknown option for watch: --output"));
    CHECK_THROWS_AS(parse_command_line({"watch", "--config"}), usage_error);
    CHECK_THROWS_AS(parse_command_line({"watch", "--config", ""}), usage_error);
    CHECK_THROWS_AS(parse_command_line({"watch", "--log-level", "chatty"}), usage_error);
}

TEST_CASE("help and version are commands of their own", "[cli]") {
    CHECK(std::holds_alternative<help_command>(parse_command_line({"--help"})));
    CHECK(std::holds_alternative<help_command>(parse_command_line({"-h"})));
    CHECK(std::holds_alternative<version_command>(parse_command_line({"--version"})));
}

TEST_CASE("a command line that cannot be understood is a usage error", "[cli]") {
    CHECK_THROWS_AS(parse_command_line({}), usage_error);
    CHECK_THROWS_AS(parse_command_line({"diagnose"}), usage_error);
    CHECK_THROWS_AS(parse_command_line({"check", "--output", "xml"}), usage_error);
    CHECK_THROWS_AS(parse_command_line({"check", "--timeout", "0"}), usage_error);
    CHECK_THROWS_AS(parse_command_line({"check", "--timeout", "soon"}), usage_error);
    CHECK_THROWS_AS(parse_command_line({"check", "--timeout"}), usage_error);
    CHECK_THROWS_AS(parse_command_line({"check", "--config", ""}), usage_error);
    CHECK_THROWS_AS(parse_command_line({"check", "--log-level", "loud"}), usage_error);
    CHECK_THROWS_WITH(parse_command_line({"check", "--verbose"}),
                      Catch::Contains("unknown option for check: --verbose"));
}

TEST_CASE("seconds are read as people write them", "[cli]") {
    CHECK(parse_seconds("3") == 3000ms);
    CHECK(parse_seconds("0.25") == 250ms);
    CHECK(parse_seconds("300") == 300000ms);
    CHECK_FALSE(parse_seconds("301"));
    CHECK_FALSE(parse_seconds("-1"));
    CHECK_FALSE(parse_seconds("0.0001"));
    CHECK_FALSE(parse_seconds("nan"));
    CHECK_FALSE(parse_seconds("3s"));
    CHECK_FALSE(parse_seconds(""));
}

TEST_CASE("usage and configuration errors exit 3 with a message on stderr", "[cli]") {
    std::ostringstream out;
    std::ostringstream err;
    SECTION("unknown command") {
        CHECK(run_program({"frobnicate"}, out, err) == 3);
        CHECK_THAT(err.str(), Catch::StartsWith("ssm-doctor: unknown command"));
    }
    SECTION("a named config file that does not exist") {
        CHECK(run_program({"check", "--config", "/nonexistent/ssm-doctor.yaml"}, out, err) == 3);
        CHECK_THAT(err.str(), Catch::Contains("/nonexistent/ssm-doctor.yaml"));
    }
    SECTION("watch with a named config file that does not exist") {
        CHECK(run_program({"watch", "--config", "/nonexistent/watch.yaml", "--log-level", "off"},
                          out, err) == 3);
        CHECK_THAT(err.str(), Catch::Contains("/nonexistent/watch.yaml"));
    }
    SECTION("a region that is not a region name") {
        CHECK(run_program({"check", "--region", "us east 1"}, out, err) == 3);
        CHECK_THAT(err.str(), Catch::Contains("--region"));
    }
    CHECK(out.str().empty());
}

TEST_CASE("help and version print to stdout and exit 0", "[cli]") {
    std::ostringstream out;
    std::ostringstream err;
    CHECK(run_program({"--version"}, out, err) == 0);
    CHECK_THAT(out.str(), Catch::StartsWith("ssm-doctor "));
    out.str("");
    CHECK(run_program({"--help"}, out, err) == 0);
    CHECK_THAT(out.str(), Catch::Contains("ssm-doctor check"));
    CHECK_THAT(out.str(), Catch::Contains("ssm-doctor watch [--config FILE]"));
    CHECK(err.str().empty());
}
