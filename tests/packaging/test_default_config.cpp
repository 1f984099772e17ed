// SPDX-License-Identifier: Apache-2.0
// The configuration file the package installs: it means the defaults as shipped, it shows every
// key the parser knows, and each key parses to its stated default once uncommented.
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "agent/config.hpp"

using namespace ssm_doctor;
using namespace std::chrono_literals;

namespace {

const std::string shipped_path = std::string(SSM_DOCTOR_SOURCE_DIR) + "/packaging/ssm-doctor.yaml";

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot read " + path);
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// A commented-out setting is "#key:" at the top level or "#  key:" in a section; prose comments
// are "# text". Removing the "#" of the settings turns the file into one that sets every key.
const std::regex commented_setting(R"(^#( {2})?[a-z0-9_]+:)");

std::string uncomment_settings(const std::string& text) {
    std::istringstream in(text);
    std::string out;
    for (std::string line; std::getline(in, line);) {
        out += std::regex_search(line, commented_setting) ? line.substr(1) : line;
        out += '\n';
    }
    return out;
}

// The dotted key paths of the settings in `yaml` (an uncommented file: sections then keys).
std::set<std::string> keys_in(const std::string& yaml) {
    const std::regex top(R"(^([a-z0-9_]+):)");
    const std::regex nested(R"(^  ([a-z0-9_]+):)");
    std::set<std::string> keys;
    std::string section;
    std::istringstream in(yaml);
    std::smatch m;
    for (std::string line; std::getline(in, line);) {
        if (std::regex_search(line, m, top)) {
            section = m[1];
            // A section name followed by nothing is a map; a value makes it a key of its own.
            if (line.find_first_not_of(' ', m[0].length()) != std::string::npos) {
                keys.insert(section);
            }
        } else if (std::regex_search(line, m, nested)) {
            keys.insert(section + "." + std::string(m[1]));
        }
    }
    return keys;
}

// The keys the parser accepts, read from the rows of its table in agent/config.cpp, so that a
// key added there and not documented in the shipped file fails this test.
std::set<std::string> keys_the_parser_knows() {
    const std::string source = read_file(std::string(SSM_DOCTOR_SOURCE_DIR) + "/agent/config.cpp");
    const auto begin = source.find("key_rule key_rules[] = {");
    const auto end = source.find("\n};", begin);
    REQUIRE(begin != std::string::npos);
    REQUIRE(end != std::string::npos);
    const std::string table = source.substr(begin, end - begin);
    const std::regex row(R"re(\{"([a-z0-9_.]+)",)re");
    std::set<std::string> keys;
    for (auto it = std::sregex_iterator(table.begin(), table.end(), row);
         it != std::sregex_iterator(); ++it) {
        keys.insert((*it)[1]);
    }
    return keys;
}

}  // namespace

TEST_CASE("The shipped configuration file means the built-in defaults", "[config][packaging]") {
    const doctor_config shipped = parse_config(read_file(shipped_path), "ssm-doctor.yaml");
    const doctor_config defaults;
    CHECK_FALSE(shipped.region.has_value());
    CHECK(shipped.agent_binary == defaults.agent_binary);
    CHECK(shipped.probe_timeout == defaults.probe_timeout);
    CHECK(shipped.probe_endpoints == defaults.probe_endpoints);
    CHECK(shipped.ec2messages_unsupported_regions == defaults.ec2messages_unsupported_regions);
    CHECK_FALSE(shipped.tls_ca_file.has_value());
    CHECK_FALSE(shipped.cloudwatch.log_group.has_value());
    CHECK(shipped.events.enabled);
}

TEST_CASE("The shipped configuration file shows every key, each with its default",
          "[config][packaging]") {
    const std::string uncommented = uncomment_settings(read_file(shipped_path));

    SECTION("every key the parser accepts is in the file, and no other") {
        const std::set<std::string> known = keys_the_parser_knows();
        REQUIRE(known.size() >= 24);
        CHECK(keys_in(uncommented) == known);
    }

    SECTION("uncommented, it parses, and each value is the default or the example it names") {
        const doctor_config c = parse_config(uncommented, "ssm-doctor.yaml (uncommented)");
        const doctor_config d;
        CHECK(c.region == "eu-west-1");
        CHECK(c.agent_binary == d.agent_binary);
        CHECK(c.agent_config == d.agent_config);
        CHECK(c.agent_log_dir == d.agent_log_dir);
        CHECK(c.imds_endpoint == d.imds_endpoint);
        CHECK(c.imds_timeout == d.imds_timeout);
        CHECK(c.tls_ca_file == std::filesystem::path("/etc/pki/tls/certs/corporate-proxy-ca.pem"));
        CHECK(c.probe_timeout == d.probe_timeout);
        CHECK(c.probe_endpoints == d.probe_endpoints);
        CHECK(c.ec2messages_unsupported_regions == d.ec2messages_unsupported_regions);
        CHECK(c.watch.interval == d.watch.interval);
        CHECK(c.watch.sample == d.watch.sample);
        CHECK(c.watch.summary == d.watch.summary);
        CHECK(c.events.enabled == d.events.enabled);
        CHECK(c.events.file == d.events.file);
        CHECK(c.events.max_bytes == d.events.max_bytes);
        CHECK(c.events.keep == d.events.keep);
        CHECK(c.cloudwatch.log_group == "/ssm-doctor");
        CHECK(c.cloudwatch.log_stream == "i-0123456789abcdef0");
        CHECK(c.cloudwatch.endpoint == "https://logs.eu-west-1.amazonaws.com");
        CHECK(c.cloudwatch.metric_namespace == d.cloudwatch.metric_namespace);
        CHECK(c.cloudwatch.spool_dir == d.cloudwatch.spool_dir);
        CHECK(c.cloudwatch.spool_max_bytes == d.cloudwatch.spool_max_bytes);
        CHECK(c.cloudwatch.flush_timeout == d.cloudwatch.flush_timeout);
    }

    SECTION("the key finder sees a key that is missing from the file") {
        // Guards the test itself: a file without probe.timeout must not pass as complete.
        const std::string without = std::regex_replace(
            uncommented, std::regex(R"(\n  timeout: 3 [^\n]*)"), std::string("\n"));
        CHECK(keys_in(without).count("probe.timeout") == 0);
        CHECK(keys_in(without).count("imds.timeout") == 1);
    }
}
