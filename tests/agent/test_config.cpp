// SPDX-License-Identifier: Apache-2.0
// Tests of ssm-doctor.yaml parsing: every key, wrong types, bad values, and the file reader.
#include <cstdlib>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/config.hpp"

using namespace ssm_doctor;
using namespace std::chrono_literals;

namespace {

// The message parse_config throws for `yaml`, or "" when it accepts the text.
std::string error_of(std::string_view yaml, std::string_view source = "t.yaml") {
    try {
        parse_config(yaml, source);
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

const std::string data_dir = std::string(SSM_DOCTOR_TEST_DATA) + "/config";

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class temp_dir {
public:
    temp_dir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "ssm-doctor-config-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = pattern;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

void check_defaults(const doctor_config& c) {
    const doctor_config defaults;
    CHECK_FALSE(c.region);
    CHECK(c.agent_binary == defaults.agent_binary);
    CHECK(c.agent_config == defaults.agent_config);
    CHECK(c.agent_log_dir == defaults.agent_log_dir);
    CHECK(c.imds_endpoint == defaults.imds_endpoint);
    CHECK(c.imds_timeout == defaults.imds_timeout);
    CHECK_FALSE(c.tls_ca_file);
    CHECK(c.probe_timeout == defaults.probe_timeout);
    CHECK(c.probe_endpoints == defaults.probe_endpoints);
    CHECK(c.ec2messages_unsupported_regions == default_ec2messages_unsupported_regions());
}

}  // namespace

TEST_CASE("The default list of regions without ec2messages holds the 2024 regions", "[config]") {
    const auto regions = default_ec2messages_unsupported_regions();
    CHECK(regions == std::vector<std::string>{"ap-southeast-5", "ap-southeast-7", "mx-central-1",
                                              "ap-east-2"});
    CHECK(doctor_config{}.ec2messages_unsupported_regions == regions);
}

TEST_CASE("Every key is read when its value is valid", "[config]") {
    const doctor_config c = parse_config(
        "region: eu-west-1\n"
        "agent:\n"
        "  binary: /opt/ssm/bin/amazon-ssm-agent\n"
        "  config: /opt/ssm/etc/amazon-ssm-agent.json\n"
        "  log_dir: /var/log/ssm\n"
        "imds:\n"
        "  endpoint: http://127.0.0.1:8080\n"
        "  timeout: 2\n"
        "tls:\n"
        "  ca_file: /etc/pki/ca.pem\n"
        "probe:\n"
        "  timeout: 7.5\n"
        "  endpoints:\n"
        "    - ssmmessages\n"
        "    - ssm\n"
        "    - monitoring\n"
        "ec2messages_unsupported_regions: [xx-test-1, yy-test-2]\n",
        "t.yaml");
    CHECK(c.region == "eu-west-1");
    CHECK(c.agent_binary == "/opt/ssm/bin/amazon-ssm-agent");
    CHECK(c.agent_config == "/opt/ssm/etc/amazon-ssm-agent.json");
    CHECK(c.agent_log_dir == "/var/log/ssm");
    CHECK(c.imds_endpoint == "http://127.0.0.1:8080");
    CHECK(c.imds_timeout == 2000ms);
    REQUIRE(c.tls_ca_file);
    CHECK(*c.tls_ca_file == "/etc/pki/ca.pem");
    CHECK(c.probe_timeout == 7500ms);
    CHECK(c.probe_endpoints ==
          std::vector<service>{service::ssmmessages, service::ssm, service::monitoring});
    CHECK(c.ec2messages_unsupported_regions == std::vector<std::string>{"xx-test-1", "yy-test-2"});
}

TEST_CASE("Keys that are left out keep their defaults", "[config]") {
    const doctor_config c = parse_config("probe:\n  timeout: 5\n", "t.yaml");
    CHECK(c.probe_timeout == 5000ms);
    const doctor_config defaults;
    CHECK(c.imds_timeout == defaults.imds_timeout);
    CHECK(c.probe_endpoints == defaults.probe_endpoints);
    CHECK_FALSE(c.region);
}

TEST_CASE("Values that need care are read as meant", "[config]") {
    SECTION("an IMDS endpoint with a final slash loses it") {
        CHECK(parse_config("imds:\n  endpoint: http://127.0.0.2/\n", "t").imds_endpoint ==
              "http://127.0.0.2");
    }
    SECTION("an IMDS endpoint may be an IPv6 literal") {
        CHECK(parse_config("imds:\n  endpoint: http://[fd00:ec2::254]\n", "t").imds_endpoint ==
              "http://[fd00:ec2::254]");
    }
    SECTION("a quoted path is a path") {
        CHECK(parse_config("agent:\n  binary: \"/usr/local/bin/amazon-ssm-agent\"\n", "t")
                  .agent_binary == "/usr/local/bin/amazon-ssm-agent");
    }
    SECTION("tls.ca_file is not checked for existence here") {
        const auto c = parse_config("tls:\n  ca_file: /nonexistent/ca.pem\n", "t");
        REQUIRE(c.tls_ca_file);
        CHECK(*c.tls_ca_file == "/nonexistent/ca.pem");
    }
    SECTION("an empty region list means no region lacks ec2messages") {
        CHECK(parse_config("ec2messages_unsupported_regions: []\n", "t")
                  .ec2messages_unsupported_regions.empty());
    }
    SECTION("a section with nothing in it changes nothing") {
        check_defaults(parse_config("probe:\nimds:\n", "t"));
    }
    SECTION("flow style maps are maps") {
        const auto c = parse_config("probe: {timeout: 4, endpoints: [kms]}\n", "t");
        CHECK(c.probe_timeout == 4000ms);
        CHECK(c.probe_endpoints == std::vector<service>{service::kms});
    }
}

TEST_CASE("Durations are seconds, whole or decimal", "[config]") {
    struct row {
        const char* text;
        std::chrono::milliseconds expected;
    };
    const row rows[] = {
        {"1", 1000ms}, {"0.5", 500ms},   {"2.25", 2250ms}, {"0.001", 1ms},
        {".5", 500ms}, {"1e1", 10000ms}, {"60", 60000ms},  {"59.9999", 60000ms},
    };
    for (const row& r : rows) {
        INFO("imds.timeout: " << r.text);
        CHECK(parse_config(std::string("imds:\n  timeout: ") + r.text + "\n", "t").imds_timeout ==
              r.expected);
    }
    CHECK(parse_config("probe:\n  timeout: 300\n", "t").probe_timeout == 300000ms);
    CHECK(parse_config("probe:\n  timeout: 0.25\n", "t").probe_timeout == 250ms);
}

TEST_CASE("A wrong type or a bad value names the line, the key and the value", "[config]") {
    const std::string seconds = "expected a number of seconds greater than 0, got ";
    const std::string path = "expected an absolute path, got ";
    const std::string region =
        "expected a region name such as \"us-east-1\" (letters, digits and '-'), got ";
    const std::string imds =
        "expected an address such as \"http://169.254.169.254\" (http://host[:port], no path), "
        "got ";
    const std::string services =
        "expected one of ssm, ssmmessages, ec2messages, s3, kms, logs, monitoring, got ";
    const std::vector<std::pair<std::string, std::string>> rows = {
        // region
        {"region: [us-east-1]\n", "t.yaml:1: region: " + region + "a list"},
        {"region: us east 1\n", "t.yaml:1: region: " + region + "\"us east 1\""},
        {"region: \"\"\n", "t.yaml:1: region: " + region + "the string \"\""},
        {"region:\n", "t.yaml:1: region: " + region + "nothing"},
        {"region: us-east-1.evil.com\n", "t.yaml:1: region: " + region + "\"us-east-1.evil.com\""},
        // agent.*
        {"agent:\n  binary: {a: 1}\n", "t.yaml:2: agent.binary: " + path + "a map"},
        {"agent:\n  binary: bin/agent\n", "t.yaml:2: agent.binary: " + path + "\"bin/agent\""},
        {"agent:\n  config: [/a]\n", "t.yaml:2: agent.config: " + path + "a list"},
        {"agent:\n  config: ''\n", "t.yaml:2: agent.config: " + path + "the string \"\""},
        {"agent:\n\n  log_dir:\n", "t.yaml:3: agent.log_dir: " + path + "nothing"},
        {"agent:\n  log_dir: \"/var/log\\0x\"\n",
         "t.yaml:2: agent.log_dir: " + path + "the string \"/var/log\\x00x\""},
        // imds.*
        {"imds:\n  endpoint: {}\n", "t.yaml:2: imds.endpoint: " + imds + "a map"},
        {"imds:\n  endpoint: https://127.0.0.1\n",
         "t.yaml:2: imds.endpoint: " + imds + "\"https://127.0.0.1\""},
        {"imds:\n  endpoint: http://\n", "t.yaml:2: imds.endpoint: " + imds + "\"http://\""},
        {"imds:\n  endpoint: 127.0.0.1\n", "t.yaml:2: imds.endpoint: " + imds + "\"127.0.0.1\""},
        {"imds:\n  endpoint: http://127.0.0.1/latest\n",
         "t.yaml:2: imds.endpoint: " + imds + "\"http://127.0.0.1/latest\""},
        {"imds:\n  endpoint: http://127.0.0.1:99999\n",
         "t.yaml:2: imds.endpoint: " + imds + "\"http://127.0.0.1:99999\""},
        {"imds:\n  timeout: fast\n", "t.yaml:2: imds.timeout: " + seconds + "\"fast\""},
        {"imds:\n  timeout: \"1\"\n", "t.yaml:2: imds.timeout: " + seconds + "the string \"1\""},
        {"imds:\n  timeout: [1]\n", "t.yaml:2: imds.timeout: " + seconds + "a list"},
        {"imds:\n  timeout: 0\n", "t.yaml:2: imds.timeout: " + seconds + "\"0\""},
        {"imds:\n  timeout: -1\n", "t.yaml:2: imds.timeout: " + seconds + "\"-1\""},
        {"imds:\n  timeout: nan\n", "t.yaml:2: imds.timeout: " + seconds + "\"nan\""},
        {"imds:\n  timeout: .inf\n", "t.yaml:2: imds.timeout: " + seconds + "\".inf\""},
        {"imds:\n  timeout: 1s\n", "t.yaml:2: imds.timeout: " + seconds + "\"1s\""},
        {"imds:\n  timeout: 61\n",
         "t.yaml:2: imds.timeout: expected at most 60 seconds, got \"61\""},
        {"imds:\n  timeout: 0.0001\n",
         "t.yaml:2: imds.timeout: expected at least 0.001 seconds, got \"0.0001\""},
        // tls.ca_file
        {"tls:\n  ca_file: {}\n", "t.yaml:2: tls.ca_file: " + path + "a map"},
        {"tls:\n  ca_file: ca.pem\n", "t.yaml:2: tls.ca_file: " + path + "\"ca.pem\""},
        // probe.*
        {"probe:\n  timeout: {s: 1}\n", "t.yaml:2: probe.timeout: " + seconds + "a map"},
        {"probe:\n  timeout: 301\n",
         "t.yaml:2: probe.timeout: expected at most 300 seconds, got \"301\""},
        {"probe:\n  endpoints: ssm\n",
         "t.yaml:2: probe.endpoints: expected a non-empty list of service names, got \"ssm\""},
        {"probe:\n  endpoints: []\n",
         "t.yaml:2: probe.endpoints: expected a non-empty list of service names, got an empty "
         "list"},
        {"probe:\n  endpoints:\n    - ssm\n    - ssx\n",
         "t.yaml:4: probe.endpoints[1]: " + services + "\"ssx\""},
        {"probe:\n  endpoints: [SSM]\n", "t.yaml:2: probe.endpoints[0]: " + services + "\"SSM\""},
        {"probe:\n  endpoints: [[ssm]]\n", "t.yaml:2: probe.endpoints[0]: " + services + "a list"},
        {"probe:\n  endpoints:\n    - ssm\n    - kms\n    - ssm\n",
         "t.yaml:5: probe.endpoints[2]: \"ssm\" is listed twice"},
        // ec2messages_unsupported_regions
        {"ec2messages_unsupported_regions: ap-southeast-5\n",
         "t.yaml:1: ec2messages_unsupported_regions: expected a list of region names, got "
         "\"ap-southeast-5\""},
        {"ec2messages_unsupported_regions:\n",
         "t.yaml:1: ec2messages_unsupported_regions: expected a list of region names, got nothing"},
        {"ec2messages_unsupported_regions:\n  - ok-test-1\n  - \"bad region\"\n",
         "t.yaml:3: ec2messages_unsupported_regions[1]: " + region + "the string \"bad region\""},
        {"ec2messages_unsupported_regions: [a-1, b-2, a-1]\n",
         "t.yaml:1: ec2messages_unsupported_regions[2]: \"a-1\" is listed twice"},
        // sections that are not maps
        {"probe: 5\n", "t.yaml:1: probe: expected a map of settings, got \"5\""},
        {"agent:\n  - binary\n", "t.yaml:2: agent: expected a map of settings, got a list"},
    };
    for (const auto& [yaml, message] : rows) {
        INFO(yaml);
        CHECK(error_of(yaml) == message);
    }
}

TEST_CASE("The message has the shape file:line: key: problem", "[config]") {
    CHECK(error_of("# ssm-doctor\nregion: us-east-1\nprobe:\n  timeout: fast\n",
                   "/etc/ssm-doctor/ssm-doctor.yaml") ==
          "/etc/ssm-doctor/ssm-doctor.yaml:4: probe.timeout: expected a number of seconds greater "
          "than 0, got \"fast\"");
    SECTION("long and unprintable values are cut and escaped") {
        const std::string message = error_of("region: \"" + std::string(200, 'x') + "\\t\"\n");
        CHECK(message.find(std::string(80, 'x') + "...\"") != std::string::npos);
        CHECK(message.find(std::string(81, 'x')) == std::string::npos);
        CHECK(error_of("region: \"a\\tb\"\n").find("\"a\\x09b\"") != std::string::npos);
    }
}

TEST_CASE("Unknown keys are refused at every level, with the known ones listed", "[config]") {
    SECTION("top level") {
        CHECK(error_of("region: us-east-1\nregoin: us-east-1\n") ==
              "t.yaml:2: regoin: unknown setting; known here: agent, cloudwatch, "
              "ec2messages_unsupported_regions, events, imds, probe, region, tls, watch");
    }
    SECTION("nested") {
        CHECK(error_of("probe:\n  timeout: 3\n  timout: 3\n") ==
              "t.yaml:3: probe.timout: unknown setting; known here: endpoints, timeout");
        CHECK(error_of("agent:\n  version: 3\n") ==
              "t.yaml:2: agent.version: unknown setting; known here: binary, config, log_dir");
    }
    SECTION("below a setting that takes a single value") {
        CHECK(error_of("tls:\n  ca_file:\n    path: /x\n") ==
              "t.yaml:3: tls.ca_file: expected an absolute path, got a map");
    }
    SECTION("a dotted name is not a shortcut for a nested key") {
        CHECK(
            error_of("probe.timeout: 3\n").starts_with("t.yaml:1: probe.timeout: unknown setting"));
    }
    SECTION("an empty name") {
        CHECK(error_of("\"\": 3\n") == "t.yaml:1: expected a setting name, got \"\"");
    }
    SECTION("a key that is not a name") {
        CHECK(error_of("? [a, b]\n: 1\n") == "t.yaml:1: expected a setting name, got a list");
        CHECK(error_of("probe:\n  ? {a: 1}\n  : 1\n") ==
              "t.yaml:2: probe: expected a setting name, got a map");
    }
}

TEST_CASE("A key given twice in the same map is refused", "[config]") {
    CHECK(error_of("probe:\n  timeout: 1\n  timeout: 2\n") ==
          "t.yaml:3: probe.timeout: set twice (first on line 2)");
    CHECK(error_of("region: us-east-1\nprobe: {}\nregion: us-west-2\n") ==
          "t.yaml:3: region: set twice (first on line 1)");
    CHECK(error_of("probe:\n  timeout: 1\nimds:\n  timeout: 1\n").empty());
}

TEST_CASE("YAML syntax errors name the file and line", "[config]") {
    SECTION("an unclosed list") {
        const std::string message = error_of("region: us-east-1\nprobe:\n  endpoints: [ssm\n");
        CHECK(message.starts_with("t.yaml:"));
        CHECK(message.find("invalid YAML: ") != std::string::npos);
    }
    SECTION("a value where a key belongs") {
        CHECK(error_of("region: us-east-1\nprobe: timeout: 3\n") ==
              "t.yaml:2: invalid YAML: illegal map value");
    }
    SECTION("an unknown alias") {
        CHECK(error_of("region: *r\n") ==
              "t.yaml:1: invalid YAML: the referenced anchor is not defined");
    }
    SECTION("an unclosed quote") {
        CHECK(error_of("region: \"us-east-1\n").starts_with("t.yaml:"));
    }
    SECTION("a second document") {
        CHECK(error_of("region: us-east-1\n---\nregion: us-west-2\n") ==
              "t.yaml:3: expected one YAML document, found a second one");
        CHECK(error_of("region: us-east-1\n---\n").empty());
    }
    SECTION("deep nesting is an error, not a crash") {
        CHECK(error_of(std::string(20000, '[')).starts_with("t.yaml:"));
    }
    SECTION("a NUL byte in the text is an error or ignored, never a crash") {
        const std::string text("region: us-east-1\n\0probe: 1\n", 28);
        CHECK_NOTHROW(error_of(text));
    }
}

TEST_CASE("An empty file or one with only comments gives the defaults", "[config]") {
    SECTION("empty") {
        check_defaults(parse_config("", "t.yaml"));
    }
    SECTION("blank lines") {
        check_defaults(parse_config("\n\n  \n", "t.yaml"));
    }
    SECTION("comments") {
        check_defaults(parse_config("# a\n  # b\n", "t.yaml"));
    }
    SECTION("a bare document marker") {
        check_defaults(parse_config("---\n", "t.yaml"));
    }
    SECTION("an explicit null") {
        check_defaults(parse_config("~\n", "t.yaml"));
    }
}

TEST_CASE("A top level that is not a map is refused", "[config]") {
    CHECK(error_of("- region\n- us-east-1\n") ==
          "t.yaml:1: expected a map of settings at the top level, got a list");
    CHECK(error_of("us-east-1\n") ==
          "t.yaml:1: expected a map of settings at the top level, got \"us-east-1\"");
    CHECK(error_of("\n\n42\n") ==
          "t.yaml:3: expected a map of settings at the top level, got \"42\"");
}

TEST_CASE("load_config reads a file and names it in errors", "[config]") {
    SECTION("a file with every key") {
        const doctor_config c = load_config(data_dir + "/full.yaml", true);
        CHECK(c.region == "eu-west-1");
        CHECK(c.agent_binary == "/opt/ssm/bin/amazon-ssm-agent");
        CHECK(c.agent_config == "/opt/ssm/etc/amazon-ssm-agent.json");
        CHECK(c.agent_log_dir == "/var/log/ssm");
        CHECK(c.imds_endpoint == "http://127.0.0.1:8080");
        CHECK(c.imds_timeout == 500ms);
        CHECK(c.tls_ca_file == std::filesystem::path("/etc/pki/tls/certs/corporate-ca.pem"));
        CHECK(c.probe_timeout == 10000ms);
        CHECK(c.probe_endpoints == std::vector<service>{service::ssm, service::ssmmessages,
                                                        service::s3, service::kms, service::logs,
                                                        service::monitoring});
        CHECK(c.ec2messages_unsupported_regions ==
              std::vector<std::string>{"ap-southeast-5", "xx-test-1"});
    }
    SECTION("a file with only comments") {
        check_defaults(load_config(data_dir + "/comments_only.yaml", true));
    }
    SECTION("a bad value is reported with the file's path") {
        const std::string file = data_dir + "/bad_timeout.yaml";
        CHECK_THROWS_WITH(load_config(file, false),
                          file +
                              ":4: probe.timeout: expected a number of seconds greater than 0, "
                              "got \"fast\"");
    }

    temp_dir dir;
    const auto missing = dir.path() / "missing.yaml";
    SECTION("a missing file that is not required gives the defaults") {
        check_defaults(load_config(missing, false));
    }
    SECTION("a missing file that is required is an error") {
        CHECK_THROWS_WITH(load_config(missing, true),
                          missing.string() + ": cannot read: No such file or directory");
    }
    SECTION("a directory cannot be read, required or not") {
        CHECK_THROWS_WITH(load_config(dir.path(), false),
                          dir.path().string() + ": cannot read: Is a directory");
    }
    SECTION("a FIFO is refused without waiting for a writer") {
        const auto fifo = dir.path() / "fifo.yaml";
        REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
        CHECK_THROWS_WITH(load_config(fifo, true),
                          fifo.string() + ": cannot read: not a regular file");
    }
    SECTION("a file far too large for a configuration is refused") {
        const auto big = dir.path() / "big.yaml";
        {
            std::ofstream out(big);
            out << "# " << std::string(1100 * 1024, 'x') << "\n";
        }
        CHECK_THROWS_WITH(load_config(big, true),
                          big.string() + ": cannot read: larger than 1024 KiB");
    }
    SECTION("a path below a regular file is unreadable, not missing") {
        const auto below_file = data_dir + "/full.yaml/x.yaml";
        CHECK_THROWS_WITH(load_config(below_file, false),
                          below_file + ": cannot read: Not a directory");
    }
}

TEST_CASE("The watch, events and cloudwatch keys are read and checked", "[config]") {
    SECTION("valid values") {
        const auto c = parse_config(R"(watch:
  interval: 60
  sample: 0.5
  summary: 7200
events:
  enabled: false
  file: /tmp/ssm-doctor/events.log
  max_bytes: 1048576
  keep: 5
cloudwatch:
  log_group: /ssm-doctor/fleet_1
  log_stream: i-0123456789abcdef0
  endpoint: https://logs.lab.test:8443/
  namespace: Fleet/SSMDoctor
  spool_dir: /var/tmp/spool
  spool_max_bytes: 2097152
  flush_timeout: 2
)",
                                    "t.yaml");
        CHECK(c.watch.interval == 60s);
        CHECK(c.watch.sample == 500ms);
        CHECK(c.watch.summary == 7200s);
        CHECK_FALSE(c.events.enabled);
        CHECK(c.events.file == "/tmp/ssm-doctor/events.log");
        CHECK(c.events.max_bytes == 1048576);
        CHECK(c.events.keep == 5);
        CHECK(c.cloudwatch.log_group == "/ssm-doctor/fleet_1");
        CHECK(c.cloudwatch.log_stream == "i-0123456789abcdef0");
        CHECK(c.cloudwatch.endpoint == "https://logs.lab.test:8443");
        CHECK(c.cloudwatch.metric_namespace == "Fleet/SSMDoctor");
        CHECK(c.cloudwatch.spool_dir == "/var/tmp/spool");
        CHECK(c.cloudwatch.spool_max_bytes == 2097152);
        CHECK(c.cloudwatch.flush_timeout == 2s);
    }
    SECTION("defaults") {
        const auto c = parse_config("", "t.yaml");
        CHECK(c.watch.interval == 300s);
        CHECK(c.watch.sample == 10s);
        CHECK(c.events.enabled);
        CHECK(c.events.file == "/var/log/ssm-doctor/events.log");
        CHECK_FALSE(c.cloudwatch.log_group);
        CHECK(c.cloudwatch.metric_namespace == "SSMDoctor");
    }
    SECTION("bad values name the key") {
        const std::vector<std::pair<std::string, std::string>> rows = {
            {"watch:\n  interval: 0\n",
             "t.yaml:2: watch.interval: expected a number of seconds greater than 0, got \"0\""},
            {"events:\n  enabled: yes please\n",
             "t.yaml:2: events.enabled: expected true or false, got \"yes please\""},
            {"events:\n  enabled: \"true\"\n",
             "t.yaml:2: events.enabled: expected true or false, got the string \"true\""},
            {"events:\n  max_bytes: 10\n",
             "t.yaml:2: events.max_bytes: expected a whole number from 65536 to 1073741824, "
             "got \"10\""},
            {"events:\n  keep: 1.5\n",
             "t.yaml:2: events.keep: expected a whole number from 1 to 100, got \"1.5\""},
            {"cloudwatch:\n  log_group: \"a group\"\n",
             "t.yaml:2: cloudwatch.log_group: expected a log group name (1-512 of letters, digits "
             "and . - _ / #), got the string \"a group\""},
            {"cloudwatch:\n  log_stream: \"a:b\"\n",
             "t.yaml:2: cloudwatch.log_stream: expected a log stream name (1-512 characters, no "
             "':' or '*'), got the string \"a:b\""},
            {"cloudwatch:\n  endpoint: http://logs.lab.test\n",
             "t.yaml:2: cloudwatch.endpoint: expected https://host[:port], got "
             "\"http://logs.lab.test\""},
            {"cloudwatch:\n  endpoint: https://logs.lab.test/path\n",
             "t.yaml:2: cloudwatch.endpoint: expected https://host[:port], got "
             "\"https://logs.lab.test/path\""},
            {"cloudwatch:\n  namespace: \":x\"\n",
             "t.yaml:2: cloudwatch.namespace: expected a metric namespace (1-255 printable "
             "characters, not starting with ':'), got the string \":x\""},
            {"cloudwatch:\n  spool_dir: spool\n",
             "t.yaml:2: cloudwatch.spool_dir: expected an absolute path, got \"spool\""},
        };
        for (const auto& [yaml, message] : rows) {
            INFO(yaml);
            CHECK(error_of(yaml) == message);
        }
    }
}
