// SPDX-License-Identifier: Apache-2.0
// Tests of service names, region checks, the partition table and the endpoint host builder.
#include <catch2/catch.hpp>

#include "agent/targets.hpp"

using namespace ssm_doctor;

namespace {

const endpoint_target& target_for(const std::vector<endpoint_target>& targets, service svc) {
    for (const auto& t : targets) {
        if (t.svc == svc) {
            return t;
        }
    }
    throw std::runtime_error("no target for " + std::string(to_string(svc)));
}

std::vector<service> every_service() {
    return {all_services.begin(), all_services.end()};
}

}  // namespace

TEST_CASE("Service names round-trip and unknown names are refused", "[config]") {
    const std::vector<std::pair<service, std::string_view>> names = {
        {service::ssm, "ssm"},
        {service::ssmmessages, "ssmmessages"},
        {service::ec2messages, "ec2messages"},
        {service::s3, "s3"},
        {service::kms, "kms"},
        {service::logs, "logs"},
        {service::monitoring, "monitoring"},
    };
    REQUIRE(names.size() == all_services.size());
    for (const auto& [svc, name] : names) {
        CHECK(to_string(svc) == name);
        CHECK(parse_service(name) == svc);
    }
    for (std::string_view bad : {"", "SSM", "ssm ", "ec2", "ssm-messages", "cloudwatch"}) {
        INFO(bad);
        CHECK_FALSE(parse_service(bad));
    }
}

TEST_CASE("A region is letters, digits and hyphens only", "[config]") {
    for (std::string_view good : {"us-east-1", "cn-north-1", "us-isob-east-1", "US-EAST-1", "a",
                                  "eusc-de-east-1", "ap-southeast-7"}) {
        INFO(good);
        CHECK(valid_region(good));
    }
    for (std::string_view bad : {"us east 1", "", "../x", "us-east-1.evil.com", "us_east_1",
                                 "us-east-1\n", "us-east-1/", "r\xc3\xa9gion", "us-east-1:443"}) {
        INFO(bad);
        CHECK_FALSE(valid_region(bad));
    }
}

TEST_CASE("The domain follows the partition table", "[config]") {
    const std::vector<std::pair<std::string, std::string>> rows = {
        {"us-east-1", "amazonaws.com"},
        {"cn-north-1", "amazonaws.com.cn"},
        {"cn-northwest-1", "amazonaws.com.cn"},
        {"us-iso-east-1", "c2s.ic.gov"},
        {"us-isob-east-1", "sc2s.sgov.gov"},
        {"us-isof-south-1", "csp.hci.ic.gov"},
        {"eu-isoe-west-1", "cloud.adc-e.uk"},
        {"eusc-de-east-1", "amazonaws.eu"},
        {"ap-southeast-7", "amazonaws.com"},
        {"us-gov-west-1", "amazonaws.com"},
        // The agent compares prefixes as written: these are not in a special partition.
        {"cnx-north-1", "amazonaws.com"},
        {"us-isox-east-1", "amazonaws.com"},
    };
    for (const auto& [region, domain] : rows) {
        INFO(region);
        CHECK(domain_for_region(region) == domain);
    }
}

TEST_CASE("Endpoint overrides give a host and a port", "[config]") {
    struct row {
        std::string value;
        std::string host;
        unsigned short port;
        bool plain_http;
    };
    const std::vector<row> rows = {
        {"https://ssm.example.com", "ssm.example.com", 443, false},
        {"ssm.example.com", "ssm.example.com", 443, false},
        {"ssm.example.com:8443", "ssm.example.com", 8443, false},
        {"https://[fd00::5]:443/path", "fd00::5", 443, false},
        {"https://[fd00::5]", "fd00::5", 443, false},
        {"http://ssm.example.com", "ssm.example.com", 80, true},
        {"http://ssm.example.com:8080/", "ssm.example.com", 8080, true},
        {"HTTPS://ssm.example.com", "ssm.example.com", 443, false},
        {"https://ssm-fips.us-east-1.amazonaws.com", "ssm-fips.us-east-1.amazonaws.com", 443,
         false},
        {"ssm.us-east-1.api.aws", "ssm.us-east-1.api.aws", 443, false},
        {"https://vpce-0a1b2c3d-abcdefgh.ssm.us-east-1.vpce.amazonaws.com/?x=1#f",
         "vpce-0a1b2c3d-abcdefgh.ssm.us-east-1.vpce.amazonaws.com", 443, false},
        {"10.0.0.5:65535", "10.0.0.5", 65535, false},
        {"ssm.example.com.", "ssm.example.com.", 443, false},
    };
    for (const auto& r : rows) {
        INFO(r.value);
        const auto parsed = parse_endpoint_override(r.value);
        REQUIRE(parsed);
        CHECK(parsed->host == r.host);
        CHECK(parsed->port == r.port);
        CHECK(parsed->plain_http == r.plain_http);
    }
}

TEST_CASE("Endpoint overrides without a usable host give nothing", "[config]") {
    for (std::string_view bad : {"",
                                 "https://",
                                 "https:///path",
                                 "garbage value",
                                 "ftp://ssm.example.com",
                                 "wss://ssm.example.com",
                                 "ssm.example.com:",
                                 "ssm.example.com:0",
                                 "ssm.example.com:65536",
                                 "ssm.example.com:-1",
                                 "ssm.example.com:44x",
                                 "fd00::5",
                                 "https://[fd00::5",
                                 "https://[fd00::5]x",
                                 "https://[not-v6]",
                                 "https://[fd00::5%eth0]",
                                 "https://user:pw@ssm.example.com",
                                 "https://ssm..example.com",
                                 "https://-ssm.example.com",
                                 "https://ssm.example.com:443:443",
                                 " ssm.example.com",
                                 "ssm.example.com\n",
                                 "://ssm.example.com",
                                 "https://ssm.exa mple.com"}) {
        INFO('"' << bad << '"');
        CHECK_FALSE(parse_endpoint_override(bad));
    }
    CHECK_FALSE(parse_endpoint_override(std::string(64, 'a') + ".example.com"));
    CHECK(parse_endpoint_override(std::string(63, 'a') + ".example.com"));
}

TEST_CASE("Default hosts cover every partition", "[config]") {
    const std::vector<std::pair<std::string, std::string>> rows = {
        {"us-east-1", "amazonaws.com"},        {"cn-north-1", "amazonaws.com.cn"},
        {"us-iso-east-1", "c2s.ic.gov"},       {"us-isob-east-1", "sc2s.sgov.gov"},
        {"us-isof-south-1", "csp.hci.ic.gov"}, {"eu-isoe-west-1", "cloud.adc-e.uk"},
        {"eusc-de-east-1", "amazonaws.eu"},    {"ap-southeast-7", "amazonaws.com"},
    };
    for (const auto& [region, domain] : rows) {
        INFO(region);
        const auto targets = endpoint_targets(every_service(), region, agent_config{});
        REQUIRE(targets.size() == all_services.size());
        for (std::size_t i = 0; i < targets.size(); ++i) {
            const endpoint_target& t = targets[i];
            const std::string expected =
                std::string(to_string(all_services[i])) + "." + region + "." + domain;
            CHECK(t.svc == all_services[i]);
            CHECK(t.host == expected);
            CHECK(t.default_host == expected);
            CHECK(t.port == 443);
            CHECK_FALSE(t.overridden);
            CHECK(t.override_key.empty());
            CHECK_FALSE(t.plain_http);
        }
    }
    SECTION("s3 uses the regional name") {
        const auto targets = endpoint_targets({service::s3}, "us-east-1", agent_config{});
        CHECK(targets.at(0).host == "s3.us-east-1.amazonaws.com");
    }
}

TEST_CASE("An invalid or missing region gives no host", "[config]") {
    for (const std::optional<std::string>& region :
         {std::optional<std::string>("us east 1"), std::optional<std::string>(""),
          std::optional<std::string>("../x"), std::optional<std::string>("us-east-1.evil.com"),
          std::optional<std::string>()}) {
        INFO(region.value_or("(none)"));
        for (const endpoint_target& t : endpoint_targets(every_service(), region, agent_config{})) {
            CHECK(t.host.empty());
            CHECK(t.default_host.empty());
            CHECK_FALSE(t.overridden);
        }
    }
    SECTION("an override still gives a host") {
        agent_config config;
        config.ssm_endpoint = "https://ssm.example.com";
        const auto targets = endpoint_targets({service::ssm, service::kms}, "../x", config);
        CHECK(targets.at(0).host == "ssm.example.com");
        CHECK(targets.at(0).default_host.empty());
        CHECK(targets.at(1).host.empty());
    }
    SECTION("a ServiceDomain cannot make up for a missing region") {
        agent_config config;
        config.service_domain = "example.internal";
        const auto targets = endpoint_targets({service::ssm}, std::nullopt, config);
        CHECK(targets.at(0).host.empty());
    }
}

TEST_CASE("Agent.ServiceDomain changes the domain of every service", "[config]") {
    agent_config config;
    SECTION("a different domain is an override") {
        config.service_domain = "example.internal";
        const auto targets = endpoint_targets(every_service(), "us-east-1", config);
        for (const endpoint_target& t : targets) {
            INFO(to_string(t.svc));
            CHECK(t.host == std::string(to_string(t.svc)) + ".us-east-1.example.internal");
            CHECK(t.default_host == std::string(to_string(t.svc)) + ".us-east-1.amazonaws.com");
            CHECK(t.overridden);
            CHECK(t.override_key == "Agent.ServiceDomain");
            CHECK(t.override_value == "example.internal");
        }
    }
    SECTION("the partition's own domain changes nothing") {
        config.service_domain = "amazonaws.com.cn";
        const auto t = endpoint_targets({service::ssm}, "cn-north-1", config).at(0);
        CHECK(t.host == "ssm.cn-north-1.amazonaws.com.cn");
        CHECK_FALSE(t.overridden);
    }
    SECTION("an empty domain counts as unset") {
        config.service_domain = "";
        const auto t = endpoint_targets({service::ssm}, "us-east-1", config).at(0);
        CHECK(t.host == "ssm.us-east-1.amazonaws.com");
        CHECK_FALSE(t.overridden);
    }
    SECTION("an unusable domain leaves no host but says why") {
        config.service_domain = "bad domain/x";
        const auto t = endpoint_targets({service::ssm}, "us-east-1", config).at(0);
        CHECK(t.host.empty());
        CHECK(t.default_host == "ssm.us-east-1.amazonaws.com");
        CHECK(t.overridden);
        CHECK(t.override_key == "Agent.ServiceDomain");
        CHECK(t.override_value == "bad domain/x");
    }
}

TEST_CASE("Each Endpoint key overrides only its own service", "[config]") {
    struct row {
        std::optional<std::string> agent_config::*field;
        service svc;
        std::string key;
    };
    const std::vector<row> rows = {
        {&agent_config::ssm_endpoint, service::ssm, "Ssm.Endpoint"},
        {&agent_config::mgs_endpoint, service::ssmmessages, "Mgs.Endpoint"},
        {&agent_config::mds_endpoint, service::ec2messages, "Mds.Endpoint"},
        {&agent_config::s3_endpoint, service::s3, "S3.Endpoint"},
        {&agent_config::kms_endpoint, service::kms, "Kms.Endpoint"},
    };
    for (const row& r : rows) {
        INFO(r.key);
        agent_config config;
        config.*r.field = "https://override.example.com:8443/prefix";
        for (const endpoint_target& t : endpoint_targets(every_service(), "eu-west-1", config)) {
            INFO(to_string(t.svc));
            const std::string default_host =
                std::string(to_string(t.svc)) + ".eu-west-1.amazonaws.com";
            CHECK(t.default_host == default_host);
            if (t.svc == r.svc) {
                CHECK(t.host == "override.example.com");
                CHECK(t.port == 8443);
                CHECK(t.overridden);
                CHECK(t.override_key == r.key);
                CHECK(t.override_value == "https://override.example.com:8443/prefix");
            } else {
                CHECK(t.host == default_host);
                CHECK(t.port == 443);
                CHECK_FALSE(t.overridden);
            }
        }
    }
}

TEST_CASE("FIPS and dual-stack hosts come only through overrides", "[config]") {
    agent_config config;
    config.ssm_endpoint = "https://ssm-fips.us-east-1.amazonaws.com";
    config.mgs_endpoint = "ssmmessages.us-east-1.api.aws";
    config.mds_endpoint = "https://ec2messages-fips.us-east-1.amazonaws.com/";
    const auto targets = endpoint_targets(every_service(), "us-east-1", config);

    const auto& ssm = target_for(targets, service::ssm);
    CHECK(ssm.host == "ssm-fips.us-east-1.amazonaws.com");
    CHECK(ssm.port == 443);
    CHECK(ssm.default_host == "ssm.us-east-1.amazonaws.com");
    CHECK(ssm.override_key == "Ssm.Endpoint");

    const auto& mgs = target_for(targets, service::ssmmessages);
    CHECK(mgs.host == "ssmmessages.us-east-1.api.aws");
    CHECK(mgs.port == 443);
    CHECK(mgs.override_key == "Mgs.Endpoint");

    const auto& mds = target_for(targets, service::ec2messages);
    CHECK(mds.host == "ec2messages-fips.us-east-1.amazonaws.com");
    CHECK(mds.override_key == "Mds.Endpoint");

    SECTION("dual-stack ssm") {
        agent_config dual;
        dual.ssm_endpoint = "ssm.us-east-1.api.aws";
        const auto t = endpoint_targets({service::ssm}, "us-east-1", dual).at(0);
        CHECK(t.host == "ssm.us-east-1.api.aws");
        CHECK(t.overridden);
    }
}

TEST_CASE("Mgs.Region moves only ssmmessages to another region", "[config]") {
    agent_config config;
    SECTION("another region in the same partition") {
        config.mgs_region = "eu-west-1";
        const auto targets = endpoint_targets(every_service(), "us-east-1", config);
        const auto& mgs = target_for(targets, service::ssmmessages);
        CHECK(mgs.host == "ssmmessages.eu-west-1.amazonaws.com");
        CHECK(mgs.default_host == "ssmmessages.us-east-1.amazonaws.com");
        CHECK(mgs.overridden);
        CHECK(mgs.override_key == "Mgs.Region");
        CHECK(mgs.override_value == "eu-west-1");
        CHECK(target_for(targets, service::ssm).host == "ssm.us-east-1.amazonaws.com");
        CHECK_FALSE(target_for(targets, service::ssm).overridden);
    }
    SECTION("the domain follows the Mgs region") {
        config.mgs_region = "cn-northwest-1";
        const auto t = endpoint_targets({service::ssmmessages}, "us-east-1", config).at(0);
        CHECK(t.host == "ssmmessages.cn-northwest-1.amazonaws.com.cn");
    }
    SECTION("unless ServiceDomain is set") {
        config.mgs_region = "eu-west-1";
        config.service_domain = "example.internal";
        const auto t = endpoint_targets({service::ssmmessages}, "us-east-1", config).at(0);
        CHECK(t.host == "ssmmessages.eu-west-1.example.internal");
        CHECK(t.override_key == "Mgs.Region");
    }
    SECTION("the same region changes nothing") {
        config.mgs_region = "us-east-1";
        const auto t = endpoint_targets({service::ssmmessages}, "us-east-1", config).at(0);
        CHECK(t.host == "ssmmessages.us-east-1.amazonaws.com");
        CHECK_FALSE(t.overridden);
    }
    SECTION("it gives a host even when the main region is unknown") {
        config.mgs_region = "eu-west-1";
        const auto t = endpoint_targets({service::ssmmessages}, std::nullopt, config).at(0);
        CHECK(t.host == "ssmmessages.eu-west-1.amazonaws.com");
        CHECK(t.default_host.empty());
        CHECK(t.overridden);
    }
    SECTION("an invalid Mgs region leaves no host") {
        config.mgs_region = "eu-west-1.evil.com";
        const auto t = endpoint_targets({service::ssmmessages}, "us-east-1", config).at(0);
        CHECK(t.host.empty());
        CHECK(t.overridden);
        CHECK(t.override_key == "Mgs.Region");
    }
    SECTION("Mgs.Endpoint wins over Mgs.Region") {
        config.mgs_region = "eu-west-1";
        config.mgs_endpoint = "https://mgs.example.com";
        const auto t = endpoint_targets({service::ssmmessages}, "us-east-1", config).at(0);
        CHECK(t.host == "mgs.example.com");
        CHECK(t.override_key == "Mgs.Endpoint");
    }
}

TEST_CASE("Overrides that cannot be used are reported, not replaced by the default", "[config]") {
    agent_config config;
    SECTION("an Endpoint with no host in it") {
        config.kms_endpoint = "ftp://kms.example.com";
        const auto t = endpoint_targets({service::kms}, "us-east-1", config).at(0);
        CHECK(t.host.empty());
        CHECK(t.default_host == "kms.us-east-1.amazonaws.com");
        CHECK(t.overridden);
        CHECK(t.override_key == "Kms.Endpoint");
        CHECK(t.override_value == "ftp://kms.example.com");
    }
    SECTION("an empty Endpoint counts as unset") {
        config.kms_endpoint = "";
        const auto t = endpoint_targets({service::kms}, "us-east-1", config).at(0);
        CHECK(t.host == "kms.us-east-1.amazonaws.com");
        CHECK_FALSE(t.overridden);
    }
    SECTION("an http Endpoint keeps its port and says so") {
        config.s3_endpoint = "http://s3.example.com";
        const auto t = endpoint_targets({service::s3}, "us-east-1", config).at(0);
        CHECK(t.host == "s3.example.com");
        CHECK(t.port == 80);
        CHECK(t.plain_http);
    }
}

TEST_CASE("Targets follow the order of the services asked for", "[config]") {
    const std::vector<service> order = {service::monitoring, service::ssm, service::logs};
    const auto targets = endpoint_targets(order, "us-west-2", agent_config{});
    REQUIRE(targets.size() == 3);
    CHECK(targets[0].host == "monitoring.us-west-2.amazonaws.com");
    CHECK(targets[1].host == "ssm.us-west-2.amazonaws.com");
    CHECK(targets[2].host == "logs.us-west-2.amazonaws.com");
    CHECK(endpoint_targets({}, "us-west-2", agent_config{}).empty());
}
