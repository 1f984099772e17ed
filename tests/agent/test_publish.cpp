// SPDX-License-Identifier: Apache-2.0
// End to end on loopback: a one-shot `ssm-doctor check` writes its events to the event log and
// delivers them to CloudWatch Logs (the botocore-checked fake) before it exits.
#include <utility>

#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/app.hpp"
#include "agent/publisher.hpp"
#include "probes/tls_probe.hpp"
#include "tests/fakes/fake_cloudwatch.hpp"
#include "tests/support/loopback_servers.hpp"
#include "tests/support/test_certs.hpp"

using namespace ssm_doctor;
using namespace ssm_doctor::testing;
namespace asio = boost::asio;

namespace {

std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
    std::vector<nlohmann::json> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(nlohmann::json::parse(line));
    }
    return lines;
}

// Three endpoints on 127.0.0.1, named by address in the agent's overrides, so that nothing is
// resolved and nothing leaves the loopback.
class loopback_endpoints : public endpoint_server_set {
public:
    loopback_endpoints() : endpoint_server_set(servers()) {}

    std::string url(int i) const {
        return "https://127.0.0.1:" + std::to_string(endpoint(i).port());
    }

private:
    static std::vector<server> servers() {
        auto spec = server_spec("localhost");
        spec.ip_addresses = {"127.0.0.1"};
        return {{spec, server_behaviour::tls},
                {spec, server_behaviour::tls},
                {spec, server_behaviour::tls}};
    }
};

}  // namespace

TEST_CASE("a one-shot check logs its events and ships them before it exits", "[publish]") {
    loopback_endpoints endpoints;
    fake_cloudwatch cloudwatch;
    temp_dir dir;

    const auto agent_config = dir.write(
        "amazon-ssm-agent.json", R"({"Ssm": {"Endpoint": ")" + endpoints.url(0) +
                                     R"("}, "Mgs": {"Endpoint": ")" + endpoints.url(1) +
                                     R"("}, "Mds": {"Endpoint": ")" + endpoints.url(2) + R"("}})");
    const auto ca_file =
        dir.write("trust.pem", endpoints.ca_pem() + read_text(cloudwatch.ca_file()));
    const auto events_file = dir.path() / "events" / "events.log";
    const auto config = dir.write(
        "ssm-doctor.yaml",
        "agent:\n  binary: " + (dir.path() / "none").string() + "\n  config: " +
            agent_config.string() + "\n  log_dir: " + (dir.path() / "log").string() +
            "\nimds:\n  endpoint: " + cloudwatch.imds_endpoint() +
            "\n  timeout: 1\ntls:\n  ca_file: " + ca_file.string() +
            "\nprobe:\n  timeout: 2\nevents:\n  file: " + events_file.string() +
            "\ncloudwatch:\n  log_group: /ssm-doctor/test\n  log_stream: test-stream\n"
            "  endpoint: https://127.0.0.1:" +
            std::to_string(cloudwatch.logs_port()) +
            "\n  spool_dir: " + (dir.path() / "spool").string() + "\n  flush_timeout: 10\n");

    std::ostringstream out;
    std::ostringstream err;
    const int code = run_program({"check", "--config", config.string(), "--region", "us-east-1",
                                  "--output", "json", "--log-level", "off"},
                                 out, err);
    INFO(err.str());
    const auto report = nlohmann::json::parse(out.str());
    const std::vector<std::string> verdicts{"ok", "warning", "critical", "unknown"};
    REQUIRE(code >= 0);
    REQUIRE(code <= 3);
    CHECK(report["verdict"] == verdicts[code]);
    for (const auto& ep : report["endpoints"]) {
        CHECK(ep["reachable"] == true);
    }

    // The event log: the check, then one metric event per endpoint.
    const auto logged = json_lines(read_text(events_file));
    REQUIRE(logged.size() == 4);
    CHECK(logged[0]["event"] == "check");
    CHECK(logged[0]["verdict"] == report["verdict"]);
    CHECK(logged[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SSMDoctor");
    CHECK(logged[1]["event"] == "endpoint");

    // CloudWatch Logs got the same four events, in the configured group and stream, at once.
    const auto shipped = cloudwatch.events();
    REQUIRE(shipped.size() == 4);
    for (std::size_t i = 0; i < shipped.size(); ++i) {
        CHECK(shipped[i].group == "/ssm-doctor/test");
        CHECK(shipped[i].stream == "test-stream");
        CHECK(nlohmann::json::parse(shipped[i].message) == logged[i]);
    }
}

TEST_CASE("the watch daemon's observer publishes checks and sessions and ships them",
          "[publish][watch]") {
    fake_cloudwatch cloudwatch;
    temp_dir dir;
    doctor_config config;
    config.events.file = dir.path() / "events.log";
    config.imds_endpoint = cloudwatch.imds_endpoint();
    config.tls_ca_file = cloudwatch.ca_file();
    config.cloudwatch.log_group = "/ssm-doctor/watch";
    config.cloudwatch.endpoint = "https://127.0.0.1:" + std::to_string(cloudwatch.logs_port());
    config.cloudwatch.spool_dir = dir.path() / "spool";

    report r;
    r.seen.region = "us-east-1";
    r.seen.imds.instance_id = "i-0123456789abcdef0";
    r.overall = verdict::ok;
    r.checked_at = std::chrono::system_clock::now();
    session_change opened;
    opened.service = "ssmmessages";
    opened.pid = 840;
    opened.process = "ssm-agent-worker";
    opened.local = "10.0.0.5:40000";
    opened.remote = "10.0.1.12:443";
    opened.at = r.checked_at;
    {
        publishing_observer observer(config, make_tls_client_context(config.tls_ca_file));
        observer.on_check(r);
        observer.on_session_change(opened);
        // The shipping thread sends on its own; wait for both events, boundedly.
        for (int i = 0; i < 100 && cloudwatch.events().size() < 2; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    const auto logged = json_lines(read_text(config.events.file));
    REQUIRE(logged.size() == 2);
    CHECK(logged[0]["event"] == "check");
    CHECK(logged[1]["event"] == "session_opened");
    CHECK(logged[1]["pid"] == 840);

    const auto shipped = cloudwatch.events();
    REQUIRE(shipped.size() == 2);
    CHECK(shipped[0].stream == "i-0123456789abcdef0");  // the instance id by default
    CHECK(nlohmann::json::parse(shipped[1].message) == logged[1]);
}
