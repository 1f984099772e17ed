// SPDX-License-Identifier: Apache-2.0
// Tests of the observations codec: the watch daemon's worker sends a check's observations back
// this way, so every member must survive the trip unchanged.
#include <utility>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/observations_codec.hpp"
#include "agent/render.hpp"
#include "agent/verdict.hpp"

using namespace ssm_doctor;
using namespace std::chrono_literals;
using boost::asio::ip::make_address;

namespace {

// Nanoseconds on purpose: time points must keep every digit.
const auto now = std::chrono::system_clock::time_point{} + 20'000 * 24h + 123'456'789ns;

// Every member set to something other than its default, every optional present, every list
// with an entry, IPv4 and IPv6: what the codec forgets shows in the round trip.
observations everything() {
    observations seen;
    seen.region = "eu-west-1";
    seen.region_source = "imds";
    seen.agent.installed = true;
    seen.agent.version = agent_version{{3, 3, 1142, 0}};
    seen.agent.version_source = "binary";
    seen.agent.method = install_method::snap;
    seen.agent.processes = {{812, "amazon-ssm-agent", now - 1h, "/usr/bin/amazon-ssm-agent"},
                            {840, "ssm-agent-worker", std::nullopt, "/usr/bin/ssm-agent-worker"}};
    seen.agent.proxy =
        proxy_settings{"http://proxy.internal:3128", "169.254.169.254,.internal", 812};
    seen.agent.hibernate_log_written = now - 5min;
    seen.agent.notes = {"the log says 3.3.1142.0"};
    seen.agent_config.path = "/etc/amazon/ssm/amazon-ssm-agent.json";
    seen.agent_config.present = true;
    seen.agent_config.error = "line 3: trailing comma";
    seen.agent_config.values = {"eu-west-1", "amazonaws.com", "ssm.example", "mgs.example",
                                "eu-west-2", "mds.example",   "s3.example",  "kms.example"};
    seen.imds.reachable = true;
    seen.imds.token_accepted = true;
    seen.imds.region = "eu-west-1";
    seen.imds.instance_id = "i-0123456789abcdef0";
    seen.imds.mac = "0e:1a:2b:3c:4d:5e";
    seen.imds.vpc_cidrs = {{make_address("10.99.0.0"), 16}, {make_address("2600:1f18::"), 56}};
    seen.imds.vpc_ipv4_known = true;
    seen.imds.vpc_ipv6_known = true;
    seen.imds.failure = probe_failure{probe_phase::http, failure_reason::http_error, "401"};
    seen.imds.notes = {"vpc-ipv6-cidr-blocks: 404"};
    seen.imds.elapsed = 12ms;
    seen.sockets.table_read = true;
    seen.sockets.attribution_complete = true;
    const tcp_session session{{make_address("10.99.0.10"), 40000},
                              {make_address("10.99.1.11"), 443},
                              77,
                              840,
                              "ssm-agent-worker"};
    seen.sockets.sessions = {
        session, {{make_address("fd00::10"), 40001}, {make_address("fd00::11"), 443}, 78, 0, ""}};
    seen.sockets.notes = {"1 socket without an owner"};

    endpoint_observation ep;
    ep.target = {service::ssmmessages,
                 "ssmmessages.eu-west-1.amazonaws.com",
                 8443,
                 "ssmmessages.eu-west-1.amazonaws.com",
                 true,
                 "Mgs.Endpoint",
                 "https://ssmmessages.eu-west-1.amazonaws.com:8443",
                 true};
    ep.probed = true;
    ep.via_proxy = true;
    ep.dns = {"ssmmessages.eu-west-1.amazonaws.com",
              "dns",
              {make_address("10.99.1.11"), make_address("fd00::11")},
              probe_failure{probe_phase::dns, failure_reason::servfail, "SERVFAIL"},
              {{"10.99.0.2:53", "AAAA", "servfail", 4ms}},
              6ms,
              {"options rotate ignored"}};
    address_observation a;
    a.ip = make_address("fd00::11");
    a.kind = address_kind::ula;
    a.in_vpc = false;
    a.probe.ok = true;
    a.probe.failure = probe_failure{probe_phase::tls, failure_reason::tls_verify_failed, "expired"};
    a.probe.tls = tls_details{"TLSv1.3",
                              "TLS_AES_128_GCM_SHA256",
                              "CN=ssmmessages",
                              "CN=CA",
                              {"ssmmessages.eu-west-1.amazonaws.com", "10.99.1.11"},
                              now + 90 * 24h};
    a.probe.connect_ms = 1ms;
    a.probe.proxy_ms = 2ms;
    a.probe.tls_ms = 7ms;
    ep.addresses = {a};
    ep.sessions = {session};
    ep.dns_ms = 6ms;
    seen.endpoints = {ep, endpoint_observation{}};
    seen.proxy_sessions = {session};
    seen.notes = {"resolv.conf line 4: unknown option"};
    seen.elapsed = 42ms;
    return seen;
}

}  // namespace

TEST_CASE("observations survive the codec unchanged", "[codec]") {
    const auto seen = everything();
    const auto text = encode_observations(seen);
    const auto back = decode_observations(text);

    // Encoding what came back gives the same text: no member is lost or changed.
    CHECK(encode_observations(back) == text);
    CHECK(text.find('\n') == std::string::npos);

    // Spot checks of the conversions the codec writes itself.
    REQUIRE(back.agent.processes.size() == 2);
    CHECK(back.agent.processes[0].started == now - 1h);
    CHECK_FALSE(back.agent.processes[1].started);
    CHECK(back.agent.hibernate_log_written == now - 5min);
    CHECK(back.imds.vpc_cidrs[1].network == make_address("2600:1f18::"));
    CHECK(back.imds.vpc_ipv6_known);
    CHECK(back.sockets.sessions[1].remote ==
          boost::asio::ip::tcp::endpoint(make_address("fd00::11"), 443));
    CHECK(back.endpoints[0].target.svc == service::ssmmessages);
    CHECK(back.endpoints[0].addresses[0].kind == address_kind::ula);
    CHECK(back.endpoints[0].addresses[0].probe.tls->not_after == now + 90 * 24h);
    CHECK(back.endpoints[0].dns.failure->reason == failure_reason::servfail);
    CHECK_FALSE(back.endpoints[1].dns_ms);
    CHECK(back.agent_config.path == "/etc/amazon/ssm/amazon-ssm-agent.json");

    // What the daemon does with them: the same verdict and the same report.
    const verdict_policy policy{{"ap-southeast-5"}};
    CHECK(report_to_json(judge(back, policy, now)) == report_to_json(judge(seen, policy, now)));
}

TEST_CASE("the observations of a default check survive the codec too", "[codec]") {
    const observations seen;
    CHECK(encode_observations(decode_observations(encode_observations(seen))) ==
          encode_observations(seen));
}

TEST_CASE("anything but encoded observations is refused with the reason", "[codec]") {
    CHECK_THROWS_WITH(decode_observations("not json"), Catch::StartsWith("observations: not JSON"));
    CHECK_THROWS_WITH(decode_observations(""), Catch::StartsWith("observations: not JSON"));
    CHECK_THROWS_WITH(decode_observations("[]"), Catch::Contains("not format 1"));
    CHECK_THROWS_WITH(decode_observations(R"({"format":2,"observations":{}})"),
                      Catch::Contains("not format 1"));

    auto doc = nlohmann::json::parse(encode_observations(everything()));
    doc["observations"].erase("imds");
    CHECK_THROWS_WITH(decode_observations(doc.dump()), Catch::Contains("imds"));

    doc = nlohmann::json::parse(encode_observations(everything()));
    doc["observations"]["elapsed"] = "soon";
    CHECK_THROWS_AS(decode_observations(doc.dump()), codec_error);

    doc = nlohmann::json::parse(encode_observations(everything()));
    doc["observations"]["endpoints"][0]["addresses"][0]["ip"] = "10.0.0.300";
    CHECK_THROWS_WITH(decode_observations(doc.dump()), Catch::Contains("10.0.0.300"));
}
