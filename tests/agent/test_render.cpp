// SPDX-License-Identifier: Apache-2.0
// Tests of the JSON and table renderings of a report.
#include <utility>

#include <catch2/catch.hpp>

#include "agent/logging.hpp"
#include "agent/render.hpp"

using namespace ssm_doctor;
using namespace std::chrono_literals;
using boost::asio::ip::make_address;

namespace {

const auto checked_at = std::chrono::system_clock::time_point{} + 20'000 * 24h;

report sample_report() {
    observations seen;
    seen.region = "us-east-1";
    seen.region_source = "imds";
    seen.imds.instance_id = "i-0123456789abcdef0";
    seen.imds.vpc_cidrs.push_back(*parse_cidr("10.99.0.0/16"));
    seen.agent.installed = true;
    seen.agent.version = agent_version{{3, 3, 380, 0}};
    seen.agent.version_source = "binary";
    seen.agent.method = install_method::rpm;
    agent_process supervisor;
    supervisor.pid = 812;
    supervisor.name = "amazon-ssm-agent";
    agent_process worker;
    worker.pid = 840;
    worker.name = "ssm-agent-worker";
    worker.started = checked_at - 1h;
    seen.agent.processes = {supervisor, worker};
    seen.agent.proxy =
        proxy_settings{"http://user:secret@proxy.internal:3128", "169.254.169.254", 812};
    seen.sockets.table_read = true;
    seen.sockets.attribution_complete = true;

    endpoint_observation ssmmessages;
    ssmmessages.target.svc = service::ssmmessages;
    ssmmessages.target.host = "ssmmessages.us-east-1.amazonaws.com";
    ssmmessages.target.default_host = ssmmessages.target.host;
    ssmmessages.probed = true;
    ssmmessages.dns.host = ssmmessages.target.host;
    ssmmessages.dns.source = "dns";
    ssmmessages.dns.addresses = {make_address("10.99.1.11")};
    ssmmessages.dns_ms = 3ms;
    address_observation a;
    a.ip = make_address("10.99.1.11");
    a.kind = address_kind::private_v4;
    a.in_vpc = true;
    a.probe.ok = true;
    a.probe.connect_ms = 1ms;
    a.probe.tls_ms = 7ms;
    a.probe.tls = tls_details{"TLSv1.3",
                              "TLS_AES_128_GCM_SHA256",
                              "CN=ssmmessages",
                              "CN=Lab CA",
                              {"ssmmessages.us-east-1.amazonaws.com"},
                              checked_at + 10 * 24h};
    ssmmessages.addresses.push_back(a);
    ssmmessages.sessions.push_back({{make_address("10.99.0.10"), 40000},
                                    {make_address("10.99.1.11"), 443},
                                    77,
                                    840,
                                    "ssm-agent-worker"});

    endpoint_observation ec2messages;
    ec2messages.target.svc = service::ec2messages;
    ec2messages.target.host = "ec2messages.us-east-1.amazonaws.com";
    ec2messages.target.default_host = ec2messages.target.host;
    ec2messages.probed = true;
    ec2messages.dns.host = ec2messages.target.host;
    ec2messages.dns.failure =
        probe_failure{probe_phase::dns, failure_reason::nxdomain, "NXDOMAIN from 10.99.0.2:53"};

    seen.endpoints = {ssmmessages, ec2messages};
    seen.elapsed = 42ms;

    report r;
    r.seen = std::move(seen);
    r.checked_at = checked_at;
    r.overall = verdict::warning;
    r.requirements = {requirement::required, requirement::not_required};
    r.findings.push_back({"certificate_expires_soon", severity::warning, service::ssmmessages,
                          "The certificate expires in 10 days.", "Renew it."});
    return r;
}

}  // namespace

TEST_CASE("the JSON report has the documented shape", "[render]") {
    const auto j = report_to_json(sample_report());
    CHECK(j["schema_version"] == 1);
    CHECK(j["verdict"] == "warning");
    CHECK(j["region"] == "us-east-1");
    CHECK(j["instance_id"] == "i-0123456789abcdef0");
    CHECK(j["agent"]["installed"] == true);
    CHECK(j["agent"]["version"] == "3.3.380.0");
    CHECK(j["agent"]["running"] == true);
    CHECK(j["agent"]["processes"][1]["name"] == "ssm-agent-worker");
    CHECK(j["agent"]["processes"][1]["pid"] == 840);

    const auto& ep = j["endpoints"][0];
    CHECK(ep["service"] == "ssmmessages");
    CHECK(ep["required"] == "required");
    CHECK(ep["reachable"] == true);
    CHECK(ep["overridden"] == false);
    CHECK(ep["failure"].is_null());
    CHECK(ep["addresses"][0]["ip"] == "10.99.1.11");
    CHECK(ep["addresses"][0]["kind"] == "private");
    CHECK(ep["addresses"][0]["in_vpc"] == true);
    CHECK(ep["tls"]["version"] == "TLSv1.3");
    CHECK(ep["tls"]["days_to_expiry"] == 10);
    CHECK(ep["timings_ms"]["dns"] == 3);
    CHECK(ep["timings_ms"]["connect"] == 1);
    CHECK(ep["timings_ms"]["tls"] == 7);
    CHECK(ep["sessions"][0]["pid"] == 840);
    CHECK(ep["sessions"][0]["remote"] == "10.99.1.11:443");

    const auto& failed = j["endpoints"][1];
    CHECK(failed["required"] == "not_required");
    CHECK(failed["reachable"] == false);
    CHECK(failed["failure"]["phase"] == "dns");
    CHECK(failed["failure"]["reason"] == "nxdomain");
    CHECK(failed["tls"].is_null());

    CHECK(j["findings"][0]["id"] == "certificate_expires_soon");
    CHECK(j["findings"][0]["severity"] == "warning");
    CHECK(j["findings"][0]["service"] == "ssmmessages");
}

TEST_CASE("no rendering shows the proxy's password", "[render]") {
    const auto r = sample_report();
    const auto json_text = report_to_json(r).dump();
    CHECK(json_text.find("secret") == std::string::npos);
    CHECK(json_text.find("proxy.internal:3128") != std::string::npos);
    const auto table = render_table(r, false);
    CHECK(table.find("secret") == std::string::npos);
}

TEST_CASE("the table shows every address, the findings and the verdict last", "[render]") {
    const auto table = render_table(sample_report(), false);
    CHECK_THAT(table, Catch::Contains("ssmmessages.us-east-1.amazonaws.com"));
    CHECK_THAT(table, Catch::Contains("10.99.1.11"));
    CHECK_THAT(table, Catch::Contains("ssm-agent-worker 840"));
    CHECK_THAT(table, Catch::Contains("dns nxdomain"));
    CHECK_THAT(table, Catch::Contains("not required"));
    CHECK_THAT(table, Catch::Contains("Fix: Renew it."));
    CHECK_THAT(table, Catch::EndsWith("Verdict: WARNING\n"));
    CHECK(table.find("\x1b[") == std::string::npos);
    CHECK(render_table(sample_report(), true).find("\x1b[") != std::string::npos);
}

TEST_CASE("long findings are wrapped to the width of a terminal", "[render]") {
    auto r = sample_report();
    r.findings[0].message = std::string(40, 'a') + " " + std::string(40, 'b') + " " +
                            std::string(40, 'c') + " https://docs.aws.amazon.com/" +
                            std::string(120, 'x');
    const auto table = render_table(r, false);
    const auto findings = table.substr(table.find("Findings"));
    std::size_t start = 0;
    int long_lines = 0;
    while (start < findings.size()) {
        const auto end = findings.find('\n', start);
        const auto line = findings.substr(start, end - start);
        if (line.size() > 100) {
            ++long_lines;
            CHECK(line.find(' ', 12) == std::string::npos);  // only an unbreakable word
        }
        start = end + 1;
    }
    CHECK(long_lines == 1);
    CHECK_THAT(findings, Catch::Contains("            " + std::string(40, 'c')));
}

TEST_CASE("log values are quoted when they need it", "[logging]") {
    CHECK(kv("event", "verdict") == "event=verdict");
    CHECK(kv("message", "two words") == "message=\"two words\"");
    CHECK(kv("detail", "say \"hi\"\\") == "detail=\"say \\\"hi\\\"\\\\\"");
    CHECK(kv("empty", "") == "empty=\"\"");
    CHECK(kv("line", "a\nb") == "line=\"a\\nb\"");
}

TEST_CASE("timestamps are ISO 8601 in UTC", "[render]") {
    CHECK(format_utc(std::chrono::system_clock::time_point{}) == "1970-01-01T00:00:00Z");
    CHECK(format_utc(std::chrono::system_clock::time_point{} + 86400s + 3661s) ==
          "1970-01-02T01:01:01Z");
}
