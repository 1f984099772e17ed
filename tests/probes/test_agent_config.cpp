// SPDX-License-Identifier: Apache-2.0
// Tests of amazon-ssm-agent.json parsing and reading, including broken and hostile files.
#include <fstream>

#include <catch2/catch.hpp>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probes/agent_config.hpp"

using namespace ssm_doctor;

namespace {

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class temp_dir {
public:
    temp_dir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "ssmcfg-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

void write(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

std::string error_of(std::string_view json) {
    try {
        parse_agent_config(json);
    } catch (const agent_config_error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("the connectivity keys are read and everything else is ignored", "[config]") {
    // Shaped like the packaged amazon-ssm-agent.json.template, with overrides filled in.
    const auto config = parse_agent_config(R"({
        "Profile": {"ShareCreds": true, "ShareProfile": "", "ForceUpdateCreds": false},
        "Mds": {"CommandWorkersLimit": 5, "StopTimeoutMillis": 20000,
                "Endpoint": "https://ec2messages.eu-west-1.amazonaws.com", "CommandRetryLimit": 15},
        "Ssm": {"Endpoint": "https://ssm-fips.us-east-1.amazonaws.com", "HealthFrequencyMinutes": 5,
                "CustomInventoryDefaultLocation": "", "AssociationLogsRetentionDurationHours": 24,
                "RunCommandLogsRetentionDurationHours": 336, "SessionLogsRetentionDurationHours": 336,
                "PluginLocalOutputCleanup": "", "OrchestrationDirectoryCleanup": ""},
        "Mgs": {"Region": "us-east-1", "Endpoint": "ssmmessages.us-east-1.api.aws",
                "StopTimeoutMillis": 20000, "SessionWorkersLimit": 1000, "DeniedPortForwardingRemoteIPs": ["169.254.169.254"]},
        "Agent": {"Region": "us-east-1", "OrchestrationRootDir": "", "SelfUpdate": false,
                  "TelemetryMetricsToCloudWatch": false, "AuditExpirationDay": 7,
                  "ForceFileIPC": false, "ServiceDomain": "amazonaws.com",
                  "ContainerMode": false, "GoMaxProcForAgentWorker": 0},
        "Os": {"Lang": "en-US", "Name": "", "Version": "1"},
        "S3": {"Endpoint": "s3.us-east-1.amazonaws.com", "Region": "", "LogBucket": "", "LogKey": ""},
        "Kms": {"Endpoint": "kms-fips.us-east-1.amazonaws.com"},
        "Birdwatcher": {"ForceEnable": false},
        "Identity": {"ConsumptionOrder": ["OnPrem", "EC2", "ECS"]}
    })");
    CHECK(config.region == "us-east-1");
    CHECK(config.service_domain == "amazonaws.com");
    CHECK(config.ssm_endpoint == "https://ssm-fips.us-east-1.amazonaws.com");
    CHECK(config.mgs_endpoint == "ssmmessages.us-east-1.api.aws");
    CHECK(config.mgs_region == "us-east-1");
    CHECK(config.mds_endpoint == "https://ec2messages.eu-west-1.amazonaws.com");
    CHECK(config.s3_endpoint == "s3.us-east-1.amazonaws.com");
    CHECK(config.kms_endpoint == "kms-fips.us-east-1.amazonaws.com");
}

TEST_CASE("empty strings, nulls and missing sections leave keys unset", "[config]") {
    SECTION("the template's empty values") {
        const auto config = parse_agent_config(
            R"({"Agent": {"Region": "", "ServiceDomain": ""}, "Ssm": {"Endpoint": ""},
                "Mgs": {"Region": "", "Endpoint": ""}, "Mds": {"Endpoint": ""},
                "S3": {"Endpoint": ""}, "Kms": {"Endpoint": ""}})");
        CHECK_FALSE(config.region);
        CHECK_FALSE(config.service_domain);
        CHECK_FALSE(config.ssm_endpoint);
        CHECK_FALSE(config.mgs_endpoint);
        CHECK_FALSE(config.mgs_region);
        CHECK_FALSE(config.mds_endpoint);
        CHECK_FALSE(config.s3_endpoint);
        CHECK_FALSE(config.kms_endpoint);
    }
    SECTION("an empty object") {
        const auto config = parse_agent_config("{}");
        CHECK_FALSE(config.region);
        CHECK_FALSE(config.mgs_endpoint);
    }
    SECTION("null sections and null values") {
        const auto config = parse_agent_config(
            R"({"Agent": null, "Mgs": {"Endpoint": null, "Region": "eu-west-1"}})");
        CHECK_FALSE(config.region);
        CHECK_FALSE(config.mgs_endpoint);
        CHECK(config.mgs_region == "eu-west-1");
    }
    SECTION("a blank value is kept as written, since the agent does not trim it either") {
        CHECK(parse_agent_config(R"({"Agent": {"Region": " "}})").region == " ");
    }
    SECTION("unicode escapes are decoded") {
        CHECK(parse_agent_config(R"({"Agent": {"ServiceDomain": "amazonaws.com\u002ecn"}})")
                  .service_domain == "amazonaws.com.cn");
    }
}

TEST_CASE("broken JSON is reported with line and column", "[config]") {
    SECTION("a missing comma on line 3") {
        const auto message =
            error_of("{\n  \"Agent\": {\"Region\": \"us-east-1\"}\n  \"Ssm\": {}\n}");
        CHECK_THAT(message, Catch::Contains("line 3, column 7"));
        CHECK_THAT(message, Catch::Contains("invalid JSON"));
    }
    SECTION("a trailing comma") {
        CHECK_THAT(error_of("{\"Agent\": {\"Region\": \"x\",}}"),
                   Catch::Contains("line 1, column 26"));
    }
    SECTION("a file cut short") {
        CHECK_THAT(error_of("{\"Agent\": {\"Region\": \"us-"), Catch::Contains("line 1"));
    }
    SECTION("comments are not JSON") {
        CHECK_THAT(error_of("{\n// the region\n\"Agent\": {}}"),
                   Catch::Contains("line 2, column 1"));
    }
    SECTION("empty text, a lone value and invalid UTF-8") {
        CHECK_THAT(error_of(""), Catch::Contains("invalid JSON"));
        CHECK_THAT(error_of("{\"Agent\": {\"Region\": \"\xff\"}}"),
                   Catch::Contains("invalid JSON"));
        CHECK_THAT(error_of("{} {}"), Catch::Contains("invalid JSON"));
    }
}

TEST_CASE("a wrong type for one of our keys names the key path", "[config]") {
    CHECK_THAT(error_of(R"({"Agent": {"Region": 5}})"),
               Catch::Contains("Agent.Region must be a string, found number"));
    CHECK_THAT(error_of(R"({"Mgs": {"Endpoint": ["a"]}})"),
               Catch::Contains("Mgs.Endpoint must be a string, found array"));
    CHECK_THAT(error_of(R"({"Kms": {"Endpoint": true}})"),
               Catch::Contains("Kms.Endpoint must be a string, found boolean"));
    CHECK_THAT(error_of(R"({"Agent": "us-east-1"})"),
               Catch::Contains("Agent must be an object, found string"));
    CHECK_THAT(error_of(R"({"S3": []})"), Catch::Contains("S3 must be an object, found array"));
    CHECK_THAT(error_of(R"([{"Agent": {}}])"), Catch::Contains("top level must be an object"));
    SECTION("other keys of any type are none of our business") {
        CHECK_NOTHROW(parse_agent_config(R"({"Agent": {"SelfUpdate": "yes", "Region": "x"},
                                              "Os": 7, "Ssm": {"HealthFrequencyMinutes": "5"}})"));
    }
}

TEST_CASE("deeply nested JSON is an error or a value, never a crash", "[config]") {
    const std::string deep =
        "{\"Os\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
    CHECK_NOTHROW(parse_agent_config(deep));
    const std::string unbalanced = std::string(100000, '[');
    CHECK_THAT(error_of(unbalanced), Catch::Contains("invalid JSON"));
}

TEST_CASE("reading the file: absent, good, broken, unreadable", "[config]") {
    temp_dir dir;
    const auto path = dir.path() / "amazon-ssm-agent.json";

    SECTION("an absent file is the usual case and no error") {
        const auto seen = read_agent_config(path);
        CHECK(seen.path == path);
        CHECK_FALSE(seen.present);
        CHECK_FALSE(seen.error);
    }
    SECTION("an absent directory is the same") {
        const auto seen = read_agent_config(dir.path() / "no" / "such.json");
        CHECK_FALSE(seen.present);
        CHECK_FALSE(seen.error);
    }
    SECTION("a good file gives its values") {
        write(path, R"({"Mgs": {"Endpoint": "vpce-1.ssmmessages.eu-west-1.vpce.amazonaws.com"}})");
        const auto seen = read_agent_config(path);
        CHECK(seen.present);
        CHECK_FALSE(seen.error);
        CHECK(seen.values.mgs_endpoint == "vpce-1.ssmmessages.eu-west-1.vpce.amazonaws.com");
    }
    SECTION("a broken file is present, with an error naming the file and the line") {
        write(path, "{\n\"Agent\": {\"Region\": \"us-east-1\"\n");
        const auto seen = read_agent_config(path);
        CHECK(seen.present);
        REQUIRE(seen.error);
        CHECK_THAT(*seen.error, Catch::Contains(path.string()));
        CHECK_THAT(*seen.error, Catch::Contains("line 3"));
        CHECK_FALSE(seen.values.region);
    }
    SECTION("a wrong type leaves every value unset") {
        write(path, R"({"Agent": {"Region": "us-east-1"}, "Ssm": {"Endpoint": 1}})");
        const auto seen = read_agent_config(path);
        REQUIRE(seen.error);
        CHECK_THAT(*seen.error, Catch::Contains("Ssm.Endpoint"));
        CHECK_FALSE(seen.values.region);
    }
    SECTION("a directory in the file's place") {
        std::filesystem::create_directory(path);
        const auto seen = read_agent_config(path);
        REQUIRE(seen.error);
        CHECK_THAT(*seen.error, Catch::Contains(path.string()));
    }
    SECTION("a FIFO in the file's place does not hang the probe") {
        REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
        const auto seen = read_agent_config(path);
        REQUIRE(seen.error);
        CHECK_THAT(*seen.error, Catch::Contains("not a regular file"));
    }
    SECTION("a huge file is refused") {
        write(path, "{\"Os\": \"" + std::string(2 * 1024 * 1024, 'x') + "\"}");
        const auto seen = read_agent_config(path);
        REQUIRE(seen.error);
        CHECK_THAT(*seen.error, Catch::Contains("too large"));
    }
    SECTION("a file without read permission, when not running as root") {
        write(path, "{}");
        ::chmod(path.c_str(), 0);
        const auto seen = read_agent_config(path);
        if (::geteuid() == 0) {
            CHECK_FALSE(seen.error);  // root reads it anyway
        } else {
            CHECK(seen.present);
            REQUIRE(seen.error);
            CHECK_THAT(*seen.error, Catch::Contains("Permission denied"));
        }
    }
}
